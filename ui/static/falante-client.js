// falante browser client (ES module) shared by the kiosk and the Gradio chat.
// Speaks the OpenAI Realtime GA events over a websocket, streams the mic (AudioWorklet → pcm16 base64), plays the
// reply on the AudioContext clock and applies the avatar frame whose `sample` matches what is audible right now.
// Why the audio clock: frames are stamped with output-audio samples, so lip-sync survives network jitter.

import { FrameScheduler, PCM_RATE, Player, base64ToInt16, floatToBase64Pcm16, resampleLinear } from './playback.js';

export { FrameScheduler, PCM_RATE, Player, base64ToInt16, floatToBase64Pcm16 };

// ------------------------------------------------------------------------------------------ the client
export class FalanteClient extends EventTarget {
  constructor(opts = {}) {
    super();
    this.opts = { url: defaultUrl(), token: null, voice: null, instructions: null, vad: true,
      turnDetection: { type: 'semantic_vad', eagerness: 'auto' }, openTimeoutMs: 15000,
      workletUrl: new URL('./mic-worklet.js', import.meta.url).href };
    for (const [k, v] of Object.entries(opts)) if (v !== undefined) this.opts[k] = v;
    this.ws = null;
    this.ctx = null;
    this.player = null;
    this.frames = new FrameScheduler();
    this.mic = null;
    this.avatar = null;
    this.state = 'idle';
    this.expression = 'neutral';
    this.afterPlayback = null; // expression the server asked for at the end of a reply still playing here
    this.responseDone = new Set();
    this.cancelled = new Set();
    this.truncated = new Set();
    this.partials = new Map(); // item_id → partial transcript
    this.replies = new Map(); // response_id → reply text
    this.session = null; // the server's view of this session (session.created / session.updated)
    this.voices = []; // voices the server offers (session.created → session.falante.voices)
    this.debug = { events: [], sent: [], framesApplied: 0, mouthOpen: 0, maxMouthOpen: 0, truncates: [] };
    this._raf = null;
  }

  // ---------------------------------------------------------------------------------------- connection
  // Resolves once the server's `session.created` arrived (its voices decide what session.update may ask for);
  // rejects with the server's message when it refuses the session (bad token, server full).
  async connect() {
    this.ensureAudio();
    const url = new URL(this.opts.url, location.href);
    // The token travels as OpenAI's browser subprotocol (what the openai SDK sends), not in the URL, so no
    // access log or proxy log records it; a token that is not a valid subprotocol name falls back to ?token=.
    const protocols = ['realtime'];
    const token = this.opts.token;
    if (token && SUBPROTOCOL_SAFE.test(token)) protocols.push(INSECURE_KEY_PREFIX + token);
    else if (token) url.searchParams.set('token', token);
    url.searchParams.set('extensions', 'falante'); // opt in to falante.* events (avatar frames, metrics)
    const ws = new WebSocket(url.href, protocols);
    this.ws = ws;
    const drop = (err) => {
      ws.onmessage = ws.onerror = ws.onclose = null;
      if (this.ws === ws) this.ws = null;
      ws.close();
      throw err;
    };
    let first;
    let timer = null;
    try {
      first = await new Promise((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no session from ${url.origin}${url.pathname}`)), this.opts.openTimeoutMs);
        ws.onmessage = (msg) => resolve(msg.data);
        ws.onerror = () => reject(new Error(`cannot connect to ${url.origin}${url.pathname}`));
        ws.onclose = (ev) => reject(new Error(`connection closed (${ev.code}) ${ev.reason || ''}`.trim()));
      });
    } catch (err) { drop(err); } finally { clearTimeout(timer); }
    const created = parseEvent(first);
    if (!created || created.type !== 'session.created') {
      if (created && created.type === 'error') this._emit('server-error', created.error || {});
      drop(new Error((created && created.error && created.error.message) || 'the server did not open a session'));
    }
    ws.onmessage = (msg) => this._onMessage(msg.data);
    ws.onclose = (ev) => {
      if (this.ws === ws) { this.ws = null; this._stopPlayback(false); this._emit('close', { code: ev.code, reason: ev.reason }); }
    };
    ws.onerror = null;
    this._onMessage(first);
    this.updateSession();
    this._emit('open', {});
    this._startLoop();
    return this;
  }

  get connected() { return !!this.ws && this.ws.readyState === WebSocket.OPEN; }

  close() {
    const ws = this.ws;
    this.ws = null;
    this._stopPlayback(false);
    if (ws) ws.close(1000, 'client reset');
  }

  send(event) {
    if (!this.connected) return false;
    this.ws.send(JSON.stringify(event));
    this.debug.sent.push(event.type);
    if (this.debug.sent.length > 200) this.debug.sent.splice(0, 100);
    return true;
  }

  updateSession(changes = {}) {
    Object.assign(this.opts, changes);
    const session = {
      type: 'realtime',
      audio: {
        input: { format: { type: 'audio/pcm', rate: PCM_RATE }, turn_detection: this.opts.vad ? this.opts.turnDetection : null },
        output: { format: { type: 'audio/pcm', rate: PCM_RATE } },
      },
    };
    const voice = this._voiceFor(this.opts.voice);
    if (voice) session.audio.output.voice = voice;
    if (this.opts.instructions) session.instructions = this.opts.instructions;
    return this.send({ type: 'session.update', session });
  }

  // A voice the server does not have would refuse the whole session.update: fall back to the server's default.
  _voiceFor(voice) {
    if (!voice) return null;
    if (this.voices.length && !this.voices.includes(voice)) {
      this._emit('warning', { message: `voice ${voice} is not on this server; using ${this.voice || 'its default'}` });
      return null;
    }
    return voice;
  }

  get voice() {
    const out = this.session && this.session.audio && this.session.audio.output;
    return (out && out.voice) || null;
  }

  // ---------------------------------------------------------------------------------------- audio
  ensureAudio() {
    if (!this.ctx) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      try { this.ctx = new Ctx({ sampleRate: PCM_RATE, latencyHint: 'interactive' }); }
      catch (err) { if (!(err instanceof DOMException || err instanceof TypeError)) throw err; this.ctx = new Ctx(); }
      this.player = new Player(this.ctx, PCM_RATE);
    }
    if (this.ctx.state === 'suspended') this.ctx.resume();
    return this.ctx;
  }

  get audioBlocked() { return !!this.ctx && this.ctx.state !== 'running'; }

  async startMic() {
    if (this.mic) return;
    const ctx = this.ensureAudio();
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    await ctx.audioWorklet.addModule(this.opts.workletUrl);
    const source = ctx.createMediaStreamSource(stream);
    const node = new AudioWorkletNode(ctx, 'falante-mic');
    const sink = ctx.createGain();
    sink.gain.value = 0; // keep the worklet pulled by the graph without hearing yourself
    node.port.onmessage = (ev) => {
      const pcm = resampleLinear(ev.data, ctx.sampleRate, PCM_RATE);
      this.debug.micBlocks = (this.debug.micBlocks || 0) + 1;
      let peak = 0;
      for (let i = 0; i < pcm.length; i++) peak = Math.max(peak, Math.abs(pcm[i]));
      this.debug.micPeak = peak;
      this._emit('mic-level', { peak });
      this.send({ type: 'input_audio_buffer.append', audio: floatToBase64Pcm16(pcm) });
    };
    source.connect(node).connect(sink).connect(ctx.destination);
    this.mic = { stream, source, node, sink };
    this._emit('mic', { on: true });
  }

  stopMic() {
    if (!this.mic) return;
    this.mic.node.port.onmessage = null;
    this.mic.source.disconnect();
    this.mic.node.disconnect();
    for (const track of this.mic.stream.getTracks()) track.stop();
    this.mic = null;
    if (!this.opts.vad) this.send({ type: 'input_audio_buffer.commit' });
    this._emit('mic', { on: false });
  }

  // ---------------------------------------------------------------------------------------- conversation
  sendText(text) {
    const clean = (text || '').trim();
    if (!clean) return false;
    this.interrupt();
    this.send({ type: 'conversation.item.create',
      item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: clean }] } });
    this._emit('transcript', { itemId: null, text: clean, final: true, typed: true });
    return this.send({ type: 'response.create' });
  }

  // Ask for a reply without user input (kiosk greeting).
  requestResponse(instructions) {
    return this.send({ type: 'response.create', response: instructions ? { instructions } : undefined });
  }

  // Stop the current reply now (button or typed message while speaking): cancel on the server, clear locally.
  interrupt() {
    const rid = this.player && this.player.responseId;
    if (rid && !this.responseDone.has(rid)) this.send({ type: 'response.cancel', response_id: rid });
    this._stopPlayback(true);
  }

  // ---------------------------------------------------------------------------------------- avatar
  attachAvatar(avatar) {
    this.avatar = avatar;
    avatar.setState(this.state, this.expression);
    this._startLoop();
  }

  _setState(state, expression) {
    if (expression) this.expression = expression;
    if (state === this.state && !expression) return;
    this.state = state;
    if (this.avatar) this.avatar.setState(state, this.expression);
    this._emit('state', { state, expression: this.expression });
  }

  _startLoop() {
    if (this._raf) return;
    const tick = () => {
      this._raf = requestAnimationFrame(tick);
      this._applyFrame();
    };
    this._raf = requestAnimationFrame(tick);
  }

  _applyFrame() {
    const player = this.player;
    let frame = null;
    if (player && player.responseId) {
      const pos = player.position();
      frame = this.frames.frameAt(player.responseId, pos);
      if (pos != null && this.state !== 'speaking' && player.playing) this._setState('speaking');
      if (player.drained && this.responseDone.has(player.responseId)) {
        this.player.reset();
        this.frames.clear();
        frame = null;
        this._setState('idle', this.afterPlayback);
        this.afterPlayback = null;
        this._emit('playback-done', {});
      }
    }
    const open = frame ? (frame.blendshapes.jawOpen || 0) : 0;
    this.debug.mouthOpen = open;
    if (frame) {
      this.debug.framesApplied += 1;
      this.debug.maxMouthOpen = Math.max(this.debug.maxMouthOpen, open);
    }
    if (this.avatar) this.avatar.setFrame(frame);
  }

  _audible() {
    const p = this.player;
    return !!(p && p.responseId && !this.cancelled.has(p.responseId) && !p.drained);
  }

  // Clear the playback queue; tell the server what was actually heard (history = what was heard).
  _stopPlayback(report) {
    if (!this.player) return;
    const info = this.player.stop();
    this.frames.clear();
    if (report && info.itemId && info.unplayed && !this.truncated.has(info.itemId)) {
      this.truncated.add(info.itemId);
      this.send({ type: 'conversation.item.truncate', item_id: info.itemId, content_index: 0, audio_end_ms: info.playedMs });
      this.debug.truncates.push({ item_id: info.itemId, audio_end_ms: info.playedMs });
    }
    if (info.responseId) this.cancelled.add(info.responseId);
    if (this.avatar) this.avatar.setFrame(null);
  }

  // ---------------------------------------------------------------------------------------- server events
  _emit(name, detail) { this.dispatchEvent(new CustomEvent(name, { detail })); }

  _onMessage(data) {
    const ev = parseEvent(data);
    if (!ev) return;
    this.debug.events.push(ev.type);
    if (this.debug.events.length > 400) this.debug.events.splice(0, 200);
    const rid = ev.response_id || (ev.response && ev.response.id);
    switch (ev.type) {
      case 'session.created':
      case 'session.updated':
        this.session = ev.session || null;
        if (ev.session && ev.session.falante && Array.isArray(ev.session.falante.voices) && ev.session.falante.voices.length) {
          this.voices = ev.session.falante.voices;
        }
        this._emit('session', { session: this.session, voices: this.voices });
        break;
      case 'input_audio_buffer.speech_started':
        if (this.player && this.player.responseId) this._stopPlayback(true); // barge-in: silence at once
        this._setState('listening');
        break;
      case 'input_audio_buffer.speech_stopped':
        this._setState('thinking');
        break;
      case 'conversation.item.input_audio_transcription.delta': {
        const text = (this.partials.get(ev.item_id) || '') + (ev.delta || '');
        this.partials.set(ev.item_id, text);
        this._emit('transcript', { itemId: ev.item_id, text, final: false });
        break;
      }
      case 'conversation.item.input_audio_transcription.completed':
        this.partials.delete(ev.item_id);
        this._emit('transcript', { itemId: ev.item_id, text: ev.transcript || '', final: true });
        break;
      case 'response.created':
        this.replies.set(rid, '');
        if (this.state !== 'speaking') this._setState('thinking');
        this._emit('response', { responseId: rid, status: 'created' });
        break;
      case 'response.output_audio.delta':
        if (!this.cancelled.has(rid) && this.player) {
          this.player.enqueue(rid, ev.item_id, base64ToInt16(ev.delta || ''));
          if (this.frames.responseId !== rid) this.frames.push(rid, []);
        }
        break;
      case 'falante.avatar.frames':
        if (!this.cancelled.has(rid)) this.frames.push(rid, ev.frames || []);
        break;
      case 'falante.avatar.state':
        // Server states follow the server's clock: it says 'idle' once it has *sent* a reply, seconds before the
        // visitor has heard it. While reply audio is audible here the audio clock decides (see _applyFrame).
        if (this._audible() && ev.state !== 'listening') {
          if (ev.state === 'speaking') this._setState('speaking', ev.expression);
          else this.afterPlayback = ev.expression || null;
        } else {
          this._setState(ev.state || this.state, ev.expression);
        }
        break;
      case 'response.output_audio_transcript.delta':
      case 'response.output_text.delta': {
        if (this.cancelled.has(rid)) break;
        const text = (this.replies.get(rid) || '') + (ev.delta || '');
        this.replies.set(rid, text);
        this._emit('reply', { responseId: rid, text, final: false });
        break;
      }
      case 'response.output_audio_transcript.done':
      case 'response.output_text.done':
        if (!this.cancelled.has(rid)) this._emit('reply', { responseId: rid, text: ev.transcript ?? ev.text ?? this.replies.get(rid) ?? '', final: true });
        break;
      case 'response.done': {
        const status = ev.response && ev.response.status;
        this.responseDone.add(rid);
        if (status === 'cancelled') {
          if (this.player && this.player.responseId === rid) this._stopPlayback(true);
          this.cancelled.add(rid);
          if (this.state === 'speaking' || this.state === 'thinking') this._setState('idle');
        } else if (!this.player || this.player.responseId !== rid) {
          if (this.state !== 'listening') this._setState('idle'); // text-only reply: nothing to play
        }
        this._emit('response', { responseId: rid, status });
        break;
      }
      case 'error':
        this._emit('server-error', ev.error || {});
        break;
      default:
        break;
    }
    this._emit('event', ev);
  }
}

function parseEvent(data) {
  if (typeof data !== 'string') return null;
  try { return JSON.parse(data); } catch (err) { if (err instanceof SyntaxError) return null; throw err; }
}

const INSECURE_KEY_PREFIX = 'openai-insecure-api-key.';
const SUBPROTOCOL_SAFE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;  // RFC 7230 token characters

function defaultUrl() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/v1/realtime`;
}

// Read `?name=` settings shared by both pages (token, voice, persona, renderer, glb, reset, ws, greeting).
export function pageParams(defaults = {}) {
  const q = new URLSearchParams(location.search);
  const out = { ...defaults };
  for (const [k, v] of q.entries()) out[k] = v;
  return out;
}
