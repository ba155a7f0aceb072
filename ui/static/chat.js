// Gradio web chat front end: mounted by ui/chat.py inside a gr.HTML block. A pure protocol client: mic streaming,
// typed messages, live transcript (partials and finals), reply text, the avatar, voice/persona settings, reset.
import { FalanteClient, pageParams } from './falante-client.js';
import { createAvatar } from './avatars.js';

const TEMPLATE = `
<div class="fa-chat">
  <div class="fa-panel"><div class="fa-avatar"></div>
    <div class="status" data-state="idle"><span class="dot"></span><span class="fa-status-text">conectando…</span></div></div>
  <div class="fa-side">
    <div class="fa-log" aria-live="polite"></div>
    <div class="fa-controls">
      <input type="text" class="fa-text" placeholder="Escreva uma mensagem…" aria-label="mensagem">
      <button class="fa-send">Enviar</button>
      <button class="fa-mic secondary" aria-pressed="false">Microfone</button>
      <button class="fa-stop secondary">Parar</button>
      <button class="fa-reset secondary">Nova conversa</button>
    </div>
    <details class="fa-settings"><summary>Voz e persona</summary>
      <div class="fa-controls"><label>Voz <select class="fa-voice"></select></label>
        <label><input type="checkbox" class="fa-vad" checked> detecção automática de fala</label></div>
      <textarea class="fa-persona" rows="3" placeholder="Instruções da persona (opcional)"></textarea>
      <div class="fa-controls"><button class="fa-apply secondary">Aplicar</button></div>
    </details>
  </div>
</div>`;

export async function mount(root, options = {}) {
  const p = pageParams({ voice: '', renderer: '2d' });
  root.innerHTML = TEMPLATE;
  const q = (sel) => root.querySelector(sel);
  const log = q('.fa-log');
  const voice = q('.fa-voice');
  // the server lists its voices in session.created; the select shows them with the session's current voice
  const showVoices = (voices, current) => {
    voice.textContent = '';
    for (const v of voices) voice.add(new Option(v, v, v === current, v === current));
  };
  if (p.persona) q('.fa-persona').value = p.persona;
  const avatar = await createAvatar(q('.fa-avatar'), { renderer: p.renderer, glb: p.glb });
  const dbg = { avatar, client: null, transcripts: [], replies: [], resets: 0 };
  window.falanteDebug = dbg;
  Object.defineProperties(dbg, {
    state: { get: () => (dbg.client ? dbg.client.state : 'idle') },
    mouthOpen: { get: () => avatar.getState().mouthOpen },
    mouthInnerHeight: { get: () => avatar.getState().mouthInnerHeight },
    connected: { get: () => !!dbg.client && dbg.client.connected },
  });
  const status = (text, conn = 'up') => { q('.fa-status-text').textContent = text; q('.status').dataset.conn = conn; };
  const bubbles = new Map(); // key → element, so partials update in place
  const bubble = (key, cls, text) => {
    let node = bubbles.get(key);
    if (!node) { node = document.createElement('div'); bubbles.set(key, node); log.appendChild(node); }
    node.className = `msg ${cls}`;
    node.textContent = text;
    log.scrollTop = log.scrollHeight;
    return node;
  };

  async function connect() {
    const client = new FalanteClient({ url: options.wsUrl || p.ws || undefined, token: p.token || null,
      voice: voice.value || p.voice || null, instructions: q('.fa-persona').value.trim() || null, vad: q('.fa-vad').checked });
    dbg.client = client;
    client.addEventListener('state', (e) => { q('.status').dataset.state = e.detail.state; status(labels[e.detail.state] || e.detail.state); });
    client.addEventListener('transcript', (e) => {
      const d = e.detail;
      bubble(d.itemId ? `u-${d.itemId}` : `typed-${log.childElementCount}`, d.final ? 'user' : 'user partial', d.text);
      if (d.final) dbg.transcripts.push(d.text);
    });
    client.addEventListener('reply', (e) => {
      bubble(`b-${e.detail.responseId}`, 'bot', e.detail.text);
      if (e.detail.final) dbg.replies.push(e.detail.text);
    });
    client.addEventListener('server-error', (e) => bubble(`err-${Date.now()}`, 'bot', `⚠ ${e.detail.message || 'erro'}`));
    client.addEventListener('warning', (e) => bubble(`warn-${Date.now()}`, 'bot', `⚠ ${e.detail.message}`));
    client.addEventListener('session', (e) => showVoices(e.detail.voices, client.voice));
    client.addEventListener('close', () => { if (dbg.client === client) { status('desconectado', 'down'); setMic(false); } });
    await client.connect();
    client.attachAvatar(avatar);
    status('pronta');
    return client;
  }
  const labels = { idle: 'pronta', listening: 'ouvindo…', thinking: 'pensando…', speaking: 'falando' };

  const micBtn = q('.fa-mic');
  function setMic(on) { micBtn.setAttribute('aria-pressed', on ? 'true' : 'false'); }
  micBtn.onclick = async () => {
    const c = dbg.client;
    if (!c) return;
    if (c.mic) { c.stopMic(); setMic(false); return; }
    try { await c.startMic(); setMic(true); } catch (err) { status('sem microfone: ' + err.message, 'down'); }
  };
  const send = () => {
    const input = q('.fa-text');
    if (dbg.client && dbg.client.sendText(input.value)) input.value = '';
  };
  q('.fa-send').onclick = send;
  q('.fa-text').addEventListener('keydown', (e) => { if (e.key === 'Enter') send(); });
  q('.fa-stop').onclick = () => dbg.client && dbg.client.interrupt();
  q('.fa-apply').onclick = () => dbg.client && dbg.client.updateSession({ voice: voice.value,
    instructions: q('.fa-persona').value.trim() || null, vad: q('.fa-vad').checked });
  q('.fa-reset').onclick = async () => {
    dbg.resets += 1;
    const old = dbg.client;
    dbg.client = null;
    if (old) { old.stopMic(); old.close(); }
    setMic(false);
    log.textContent = '';
    bubbles.clear();
    await connect();
  };
  try { await connect(); } catch (err) { status('servidor indisponível: ' + err.message, 'down'); }
  return dbg;
}
