// Audio plumbing of the falante client: pcm16 <-> float, the playback queue on the AudioContext clock and the
// avatar frame scheduler that maps the audible sample of a response to its (interpolated) frame.

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

export function resampleLinear(input, from, to) {
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

