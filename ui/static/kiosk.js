// Kiosk page: fullscreen avatar, hands-free (server VAD, echo cancellation), greeting, idle loop, privacy reset
// after inactivity (a brand-new websocket session), reconnect with back-off after network loss.
import { FalanteClient, pageParams } from './falante-client.js';
import { createAvatar } from './avatars.js';

const $ = (id) => document.getElementById(id);
const LABELS = { idle: 'pronta', listening: 'ouvindo…', thinking: 'pensando…', speaking: 'falando' };

export async function main() {
  const p = pageParams({ voice: '', renderer: '2d', reset: '90', greeting: 'Olá! Eu sou a Falante. Como posso ajudar?' });
  const resetMs = Math.max(10, Number(p.reset) || 90) * 1000;
  const avatar = await createAvatar($('avatar'), { renderer: p.renderer, glb: p.glb });
  const dbg = { avatar, resets: 0, reconnects: 0, transcripts: [], replies: [], client: null, greeted: 0 };
  window.falanteDebug = dbg;
  Object.defineProperties(dbg, {
    state: { get: () => (dbg.client ? dbg.client.state : 'idle') },
    mouthOpen: { get: () => avatar.getState().mouthOpen },
    mouthInnerHeight: { get: () => avatar.getState().mouthInnerHeight },
    connected: { get: () => !!dbg.client && dbg.client.connected },
  });

  let lastActivity = Date.now();
  let wantOpen = true;
  let backoff = 1000;
  let fadeTimer = null;
  const touch = () => { lastActivity = Date.now(); document.body.dataset.attract = 'off'; };

  const status = (text, conn = 'up') => { $('status-text').textContent = text; $('status').dataset.conn = conn; };
  const caption = (id, text, final) => {
    const line = $(id);
    line.textContent = text;
    line.classList.toggle('final', !!final);
    line.classList.remove('faded');
    clearTimeout(fadeTimer);
    fadeTimer = setTimeout(() => { for (const l of document.querySelectorAll('.captions p')) l.classList.add('faded'); }, 12000);
  };

  async function open(greet) {
    const client = new FalanteClient({ url: p.ws || undefined, token: p.token || null, voice: p.voice,
      instructions: p.persona || null, vad: p.vad !== 'off',
      // ?vad=server: fixed-silence server_vad; default semantic_vad, ?eagerness=low|medium|high|auto
      turnDetection: p.vad === 'server' ? { type: 'server_vad' } : { type: 'semantic_vad', eagerness: p.eagerness || 'auto' } });
    dbg.client = client;
    client.addEventListener('state', (e) => {
      $('status').dataset.state = e.detail.state;
      $('status-text').textContent = LABELS[e.detail.state] || e.detail.state;
      if (e.detail.state !== 'idle') touch();
    });
    client.addEventListener('transcript', (e) => {
      touch();
      caption('user-line', e.detail.text, e.detail.final);
      if (e.detail.final) dbg.transcripts.push(e.detail.text);
    });
    client.addEventListener('reply', (e) => {
      touch();
      caption('reply-line', e.detail.text, e.detail.final);
      if (e.detail.final) dbg.replies.push(e.detail.text);
    });
    client.addEventListener('server-error', (e) => console.warn('falante error', e.detail));
    client.addEventListener('warning', (e) => console.warn('falante', e.detail.message));
    client.addEventListener('close', () => {
      if (!wantOpen || dbg.client !== client) return;
      status('reconectando…', 'down');
      setTimeout(() => reconnect(), backoff);
      backoff = Math.min(backoff * 2, 15000);
    });
    await client.connect();
    backoff = 1000;
    client.attachAvatar(avatar);
    status('pronta');
    $('status').dataset.state = 'idle';
    try {
      await client.startMic();
    } catch (err) {
      status('sem microfone: ' + err.message, 'down');
    }
    if (client.audioBlocked) showStartButton(client);
    if (greet && p.greeting) {
      dbg.greeted += 1;
      client.requestResponse(`Cumprimente o visitante dizendo exatamente: "${p.greeting}"`);
    }
    return client;
  }

  async function reconnect() {
    if (!wantOpen) return;
    dbg.reconnects += 1;
    try { await open(false); } catch (err) {
      status('reconectando…', 'down');
      setTimeout(() => reconnect(), backoff);
      backoff = Math.min(backoff * 2, 15000);
    }
  }

  function showStartButton(client) {
    const btn = $('start');
    btn.hidden = false;
    btn.onclick = async () => { btn.hidden = true; client.ensureAudio(); await client.startMic(); };
  }

  // privacy: after `reset` seconds without activity start a new session (history gone on the server)
  setInterval(() => {
    const c = dbg.client;
    if (!c || c.state === 'speaking' || c.state === 'listening') return;
    if (Date.now() - lastActivity < resetMs) return;
    lastActivity = Date.now();
    dbg.resets += 1;
    $('user-line').textContent = '';
    $('reply-line').textContent = '';
    document.body.dataset.attract = 'on';
    c.stopMic();
    dbg.client = null;
    c.close();
    open(false).catch(() => reconnect());
  }, 1000);

  document.body.dataset.attract = 'off';
  try { await open(true); } catch (err) {
    status('servidor indisponível — tentando de novo', 'down');
    setTimeout(() => reconnect(), backoff);
  }
  window.addEventListener('beforeunload', () => { wantOpen = false; if (dbg.client) dbg.client.close(); });
}
