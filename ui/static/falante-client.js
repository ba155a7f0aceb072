// falante browser client (ES module) shared by the kiosk and the Gradio chat.
// Speaks the OpenAI Realtime GA events over a websocket, streams the mic (AudioWorklet → pcm16 base64), plays the
// reply on the AudioContext clock and applies the avatar frame whose `sample` matches what is audible right now.
// Why the audio clock: frames are stamped with output-audio samples, so lip-sync survives network jitter.

export const PCM_RATE = 24000;
const FIRST_CHUNK_LEAD_S = 0.08; // jitter buffer before the first audio of a response
const UNDERRUN_LEAD_S = 0.02;

// ------------------------------------------------------------------------------------------ pcm16 helpers
export function base64ToInt16(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length - (bin.length % 2));
  for (let i = 0; i < bytes.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Int16Array(bytes.buffer);
}

export function floatToBase64Pcm16(samples) {
  const bytes = new Uint8Array(samples.length * 2);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i] || 0));
    view.setInt16(i * 2, s < 0 ? s * 32768 : s * 32767, true);
  }
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

function resampleLinear(input, from, to) {
  if (from === to) return input;
  const out = new Float32Array(Math.floor((input.length * to) / from));
  const step = from / to;
  for (let i = 0; i < out.length; i++) {
    const x = i * step, i0 = Math.floor(x), f = x - i0;
    out[i] = (input[i0] || 0) * (1 - f) + (input[i0 + 1] ?? input[i0] ?? 0) * f;
  }
  return out;
}

// ------------------------------------------------------------------------------------------ playback queue
// Schedules pcm16 chunks back to back on the AudioContext clock and maps "now" back to the response's sample clock
// (piecewise, so an underrun gap holds the mouth instead of letting it run ahead of the sound).
export class Player {
  constructor(ctx, rate = PCM_RATE) {
    this.ctx = ctx;
    this.rate = rate;
    this.reset();
  }

  reset() {
    this.responseId = null;
    this.itemId = null;
    this.segments = []; // {s0, t0, n}
    this.sources = new Set();
    this.nextTime = 0;
    this.queued = 0; // samples of the current response scheduled so far
  }

  enqueue(responseId, itemId, pcm) {
    if (responseId !== this.responseId) {
      this.stop();
      this.responseId = responseId;
      this.itemId = itemId;
    }
    if (!pcm.length) return;
    const buffer = this.ctx.createBuffer(1, pcm.length, this.rate);
    const data = buffer.getChannelData(0);
    for (let i = 0; i < pcm.length; i++) data[i] = pcm[i] / 32768;
    const src = this.ctx.createBufferSource();
    src.buffer = buffer;
    src.connect(this.ctx.destination);
    const now = this.ctx.currentTime;
    let when = this.nextTime;
    if (this.queued === 0) when = now + FIRST_CHUNK_LEAD_S;
    else if (this.nextTime < now + 0.005) when = now + UNDERRUN_LEAD_S; // underrun: a new segment of the clock
    src.start(when);
    this.segments.push({ s0: this.queued, t0: when, n: pcm.length });
    this.queued += pcm.length;
    this.nextTime = when + pcm.length / this.rate;
    this.sources.add(src);
    src.onended = () => this.sources.delete(src);
  }

  audibleTime() {
    return this.ctx.currentTime - (this.ctx.outputLatency || 0);
  }

  // Current sample of the active response's clock, or null when nothing has started playing.
  position() {
    if (!this.segments.length) return null;
    const t = this.audibleTime();
    if (t < this.segments[0].t0) return null;
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const seg = this.segments[i];
      if (t >= seg.t0) return seg.s0 + Math.min(seg.n, (t - seg.t0) * this.rate);
    }
    return null;
  }

  get playing() {
    return this.segments.length > 0 && this.audibleTime() < this.nextTime;
  }

  get drained() {
    return this.segments.length > 0 && this.audibleTime() >= this.nextTime;
  }

  // Stop everything now; returns {responseId, itemId, playedMs} of what was actually heard.
  stop() {
    const pos = this.position();
    const info = { responseId: this.responseId, itemId: this.itemId, playedMs: Math.round(((pos || 0) / this.rate) * 1000),
      unplayed: this.segments.length > 0 && (pos || 0) < this.queued };
    for (const src of this.sources) {
      src.onended = null;
      try { src.stop(); } catch (err) { if (!(err instanceof DOMException)) throw err; }
    }
    this.reset();
    return info;
  }
}

// ------------------------------------------------------------------------------------------ frame scheduler
// Holds the avatar frames of the current response and returns the (interpolated) pose for a playback sample.
export class FrameScheduler {
  constructor() { this.clear(); }

  clear() { this.responseId = null; this.frames = []; }

  push(responseId, frames) {
    if (responseId !== this.responseId) { this.responseId = responseId; this.frames = []; }
    for (const f of frames) {
      const last = this.frames[this.frames.length - 1];
      if (!last || f.sample > last.sample) this.frames.push(f);
      else this.frames.splice(this.frames.findIndex((g) => g.sample >= f.sample), 0, f);
    }
  }

  frameAt(responseId, sample) {
    if (responseId !== this.responseId || !this.frames.length || sample == null) return null;
    const fr = this.frames;
    let lo = 0, hi = fr.length - 1;
    if (sample <= fr[0].sample) return fr[0];
    if (sample >= fr[hi].sample) return fr[hi];
    while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (fr[mid].sample <= sample) lo = mid; else hi = mid; }
    const a = fr[lo], b = fr[hi], k = (sample - a.sample) / (b.sample - a.sample);
    const visemes = a.visemes.map((v, i) => v + (b.visemes[i] - v) * k);
    const blendshapes = {};
    for (const name of new Set([...Object.keys(a.blendshapes || {}), ...Object.keys(b.blendshapes || {})])) {
      const va = a.blendshapes[name] || 0, vb = b.blendshapes[name] || 0;
      blendshapes[name] = va + (vb - va) * k;
    }
    // drop frames well behind the playhead so a long reply does not grow the array forever
    if (lo > 600) { this.frames = fr.slice(lo - 10); }
    return { sample, visemes, blendshapes, expression: k < 0.5 ? a.expression : b.expression };
  }
}

// ------------------------------------------------------------------------------------------ the client
export class FalanteClient extends EventTarget {
  constructor(opts = {}) {
    super();
    this.opts = { url: defaultUrl(), token: null, voice: 'jf_alpha', instructions: null, vad: true,
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
    this.responseDone = new Set();
    this.cancelled = new Set();
    this.truncated = new Set();
    this.partials = new Map(); // item_id → partial transcript
    this.replies = new Map(); // response_id → reply text
    this.debug = { events: [], sent: [], framesApplied: 0, mouthOpen: 0, maxMouthOpen: 0, truncates: [] };
    this._raf = null;
  }

  // ---------------------------------------------------------------------------------------- connection
  async connect() {
    this.ensureAudio();
    const url = new URL(this.opts.url, location.href);
    if (this.opts.token) url.searchParams.set('token', this.opts.token);
    const ws = new WebSocket(url.href);
    this.ws = ws;
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => { if (this.ws === ws) this.ws = null; reject(new Error(`cannot connect to ${url.origin}${url.pathname}`)); };
    });
    ws.onmessage = (msg) => this._onMessage(msg.data);
    ws.onclose = (ev) => {
      if (this.ws === ws) { this.ws = null; this._stopPlayback(false); this._emit('close', { code: ev.code, reason: ev.reason }); }
    };
    ws.onerror = null;
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
        input: { format: { type: 'audio/pcm', rate: PCM_RATE }, turn_detection: this.opts.vad ? { type: 'server_vad' } : null },
        output: { format: { type: 'audio/pcm', rate: PCM_RATE }, voice: this.opts.voice },
      },
    };
    if (this.opts.instructions) session.instructions = this.opts.instructions;
    return this.send({ type: 'session.update', session });
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
        this._setState('idle');
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
    let ev;
    try { ev = JSON.parse(data); } catch (err) { if (err instanceof SyntaxError) return; throw err; }
    this.debug.events.push(ev.type);
    if (this.debug.events.length > 400) this.debug.events.splice(0, 200);
    const rid = ev.response_id || (ev.response && ev.response.id);
    switch (ev.type) {
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
        this._setState(ev.state || this.state, ev.expression);
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
