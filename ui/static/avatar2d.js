// Built-in 2D avatar (SVG, no downloaded assets). Driven by falante avatar frames (ARKit blendshapes, derived on the
// server from the 15 Oculus visemes) on the audio clock; blinks, breathing, head motion, gaze, a listening pose and
// expressions (neutral / happy / concerned / surprised) come from here so the face lives between words.

const NS = 'http://www.w3.org/2000/svg';
const EXPRESSIONS = {
  neutral: {},
  happy: { smile: 0.55, cheek: 0.5, squint: 0.25, browUp: 0.1 },
  concerned: { browInner: 0.7, frown: 0.35, browDown: 0.15 },
  surprised: { browUp: 0.8, wide: 0.6, open: 0.15 },
};
const STATE_POSE = {
  idle: { tilt: 0, lean: 0, gazeX: 0, gazeY: 0, browUp: 0 },
  listening: { tilt: -5, lean: 4, gazeX: 0, gazeY: 0, browUp: 0.25 },
  thinking: { tilt: 3, lean: 0, gazeX: 0.55, gazeY: -0.6, browUp: 0.1, browInner: 0.2 },
  speaking: { tilt: 0, lean: 1, gazeX: 0, gazeY: 0, browUp: 0.05 },
};

function el(tag, attrs = {}, parent = null) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}
const clamp = (x, lo = 0, hi = 1) => Math.max(lo, Math.min(hi, x));
const approach = (cur, target, dt, tau) => cur + (target - cur) * (1 - Math.exp(-dt / Math.max(tau, 1e-4)));
const avg = (b, l, r) => ((b[l] || 0) + (b[r] || 0)) / 2;

export class Avatar2D {
  constructor(container, opts = {}) {
    this.opts = { skin: '#f2c3a0', skinShade: '#e0a98a', hair: '#3b2418', iris: '#6b4226', shirt: '#1f7a5c',
      accent: '#f4c542', lip: '#c2665a', ...opts };
    this.state = 'idle';
    this.expression = 'neutral';
    this.frame = null;
    this.mouth = { open: 0, stretch: 0, smile: 0, pucker: 0, funnel: 0, press: 0, shrugLower: 0, upperUp: 0, tongue: 0, frown: 0 };
    this.face = { browUp: 0, browInner: 0, browDown: 0, smile: 0, cheek: 0, squint: 0, wide: 0, frown: 0, open: 0 };
    this.pose = { tilt: 0, lean: 0, gazeX: 0, gazeY: 0, nod: 0 };
    this.blink = 0;
    this.nextBlink = 1.5;
    this.blinkT = -1;
    this.saccade = { x: 0, y: 0, next: 2 };
    this.t = 0;
    this._build(container);
    this._last = performance.now();
    const loop = (now) => {
      this._raf = requestAnimationFrame(loop);
      const dt = Math.min(0.1, (now - this._last) / 1000);
      this._last = now;
      this.update(dt);
    };
    this._raf = requestAnimationFrame(loop);
  }

  setFrame(frame) { this.frame = frame; }

  setState(state, expression) {
    if (STATE_POSE[state]) this.state = state;
    if (expression && EXPRESSIONS[expression]) this.expression = expression;
    this.svg.dataset.state = this.state;
    this.svg.dataset.expression = this.expression;
  }

  destroy() { cancelAnimationFrame(this._raf); this.svg.remove(); }

  getState() {
    const box = this.mouthInner.getBBox();
    return { state: this.state, expression: this.expression, mouthOpen: this.mouth.open, mouthInnerHeight: box.height,
      blink: this.blink, smile: this.face.smile + this.mouth.smile };
  }

  // ------------------------------------------------------------------------------------------ geometry
  _build(container) {
    const o = this.opts;
    const svg = el('svg', { viewBox: '0 0 400 480', class: 'falante-avatar2d', role: 'img', 'aria-label': 'avatar' });
    this.svg = svg;
    const defs = el('defs', {}, svg);
    const grad = (id, stops, attrs = {}) => {
      const g = el('radialGradient', { id, ...attrs }, defs);
      for (const [off, color] of stops) el('stop', { offset: off, 'stop-color': color }, g);
    };
    grad('fa-skin', [['0%', '#f9d6b8'], ['70%', o.skin], ['100%', o.skinShade]], { cx: '45%', cy: '40%', r: '65%' });
    grad('fa-hair', [['0%', '#5a3826'], ['100%', o.hair]], { cx: '40%', cy: '30%', r: '70%' });
    grad('fa-blush', [['0%', 'rgba(235,110,110,0.55)'], ['100%', 'rgba(235,110,110,0)']]);
    this.mouthClip = el('clipPath', { id: 'fa-mouth-clip' }, defs);
    this.mouthClipPath = el('path', {}, this.mouthClip);
    const eyeClips = ['L', 'R'].map((s) => { const c = el('clipPath', { id: `fa-eye-${s}` }, defs); return el('ellipse', {}, c); });

    this.hairBack = el('path', { d: 'M92 230 C80 120 140 56 204 58 C276 60 324 120 310 236 C318 300 312 350 300 384 C290 398 262 400 250 380 L150 380 C138 400 110 398 100 384 C88 350 84 300 92 230 Z', fill: 'url(#fa-hair)' }, svg);
    this.body = el('g', {}, svg);
    el('rect', { x: 174, y: 320, width: 52, height: 74, rx: 20, fill: o.skinShade }, this.body);
    el('path', { d: 'M70 480 C80 404 140 384 200 384 C260 384 320 404 330 480 Z', fill: o.shirt }, this.body);
    el('path', { d: 'M166 386 L200 428 L234 386 Z', fill: o.skinShade }, this.body);
    el('path', { d: 'M150 388 C170 402 230 402 250 388 L246 382 C228 394 172 394 154 382 Z', fill: o.accent }, this.body);

    this.head = el('g', {}, svg);
    const h = this.head;
    el('ellipse', { cx: 112, cy: 250, rx: 16, ry: 26, fill: o.skinShade }, h);
    el('ellipse', { cx: 288, cy: 250, rx: 16, ry: 26, fill: o.skinShade }, h);
    this.faceShape = el('path', { fill: 'url(#fa-skin)' }, h);
    this.cheeks = ['L', 'R'].map((s, i) => el('ellipse', { cx: i ? 264 : 136, cy: 288, rx: 28, ry: 18, fill: 'url(#fa-blush)', opacity: 0.35 }, h));
    // eyes
    this.eyes = [{ cx: 160, s: 'L' }, { cx: 240, s: 'R' }].map(({ cx, s }, i) => {
      const g = el('g', {}, h);
      const clip = eyeClips[i];
      clip.setAttribute('cx', cx); clip.setAttribute('cy', 232); clip.setAttribute('rx', 24); clip.setAttribute('ry', 15);
      const inner = el('g', { 'clip-path': `url(#fa-eye-${s})` }, g);
      el('ellipse', { cx, cy: 232, rx: 24, ry: 15, fill: '#fbfbfb' }, inner);
      const iris = el('g', {}, inner);
      el('circle', { cx, cy: 232, r: 11, fill: o.iris }, iris);
      el('circle', { cx, cy: 232, r: 5.5, fill: '#1b1210' }, iris);
      el('circle', { cx: cx + 4, cy: 228, r: 2.6, fill: '#fff', opacity: 0.9 }, iris);
      const lid = el('path', { fill: o.skin }, inner);
      const lower = el('path', { fill: o.skin }, inner);
      const lash = el('path', { fill: 'none', stroke: '#2a1a14', 'stroke-width': 3, 'stroke-linecap': 'round' }, g);
      return { cx, cy: 232, iris, lid, lower, lash };
    });
    this.brows = [160, 240].map((cx) => el('path', { fill: 'none', stroke: '#3a2419', 'stroke-width': 6, 'stroke-linecap': 'round', 'data-cx': cx }, h));
    el('path', { d: 'M198 248 C194 270 188 284 192 292 C196 296 206 296 210 292', fill: 'none', stroke: o.skinShade, 'stroke-width': 3, 'stroke-linecap': 'round' }, h);
    // mouth
    this.mouthG = el('g', {}, h);
    this.mouthInner = el('path', { fill: '#5a1f24' }, this.mouthG);
    const teethG = el('g', { 'clip-path': 'url(#fa-mouth-clip)' }, this.mouthG);
    this.upperTeeth = el('rect', { fill: '#fbf7f2', rx: 4 }, teethG);
    this.lowerTeeth = el('rect', { fill: '#efe9e2', rx: 4 }, teethG);
    this.tongue = el('ellipse', { fill: '#d0646b' }, teethG);
    this.upperLip = el('path', { fill: o.lip }, this.mouthG);
    this.lowerLip = el('path', { fill: '#cf7466' }, this.mouthG);
    // fringe over the forehead
    el('path', { d: 'M112 200 C120 120 180 92 236 104 C270 112 296 150 296 196 C270 150 230 136 196 150 C168 160 136 170 112 200 Z', fill: 'url(#fa-hair)' }, h);
    container.appendChild(svg);
    this.setState('idle', 'neutral');
    this._draw();
  }

  // ------------------------------------------------------------------------------------------ animation
  update(dt) {
    this.t += dt;
    const b = (this.frame && this.frame.blendshapes) || {};
    const speaking = !!this.frame;
    // lip-sync channels follow the frame directly (already smooth, on the audio clock); relax to rest when none
    const target = {
      open: clamp((b.jawOpen || 0) * 1.15 + avg(b, 'mouthLowerDownLeft', 'mouthLowerDownRight') * 0.35),
      stretch: avg(b, 'mouthStretchLeft', 'mouthStretchRight') + avg(b, 'mouthDimpleLeft', 'mouthDimpleRight') * 0.5,
      smile: avg(b, 'mouthSmileLeft', 'mouthSmileRight'),
      frown: avg(b, 'mouthFrownLeft', 'mouthFrownRight'),
      pucker: b.mouthPucker || 0, funnel: b.mouthFunnel || 0,
      press: avg(b, 'mouthPressLeft', 'mouthPressRight') + avg(b, 'mouthRollLower', 'mouthRollUpper') * 0.5,
      shrugLower: b.mouthShrugLower || 0, upperUp: avg(b, 'mouthUpperUpLeft', 'mouthUpperUpRight'), tongue: b.tongueOut || 0,
    };
    for (const k of Object.keys(this.mouth)) this.mouth[k] = speaking ? target[k] : approach(this.mouth[k], 0, dt, 0.08);

    const ex = EXPRESSIONS[this.expression] || {};
    const pose = STATE_POSE[this.state] || STATE_POSE.idle;
    const f = this.face;
    f.smile = approach(f.smile, ex.smile || 0, dt, 0.25);
    f.frown = approach(f.frown, ex.frown || 0, dt, 0.25);
    f.cheek = approach(f.cheek, Math.max(ex.cheek || 0, b.cheekSquintLeft || 0), dt, 0.3);
    f.squint = approach(f.squint, Math.max(ex.squint || 0, b.eyeSquintLeft || 0), dt, 0.25);
    f.wide = approach(f.wide, Math.max(ex.wide || 0, b.eyeWideLeft || 0), dt, 0.15);
    f.browUp = approach(f.browUp, Math.max(ex.browUp || 0, pose.browUp || 0, b.browOuterUpLeft || 0), dt, 0.15);
    f.browInner = approach(f.browInner, Math.max(ex.browInner || 0, pose.browInner || 0, b.browInnerUp || 0), dt, 0.15);
    f.browDown = approach(f.browDown, Math.max(ex.browDown || 0, b.browDownLeft || 0), dt, 0.2);
    f.open = approach(f.open, speaking ? 0 : ex.open || 0, dt, 0.2);

    // head: breathing, slow sway, listening tilt, small nods while speaking
    const p = this.pose;
    p.tilt = approach(p.tilt, pose.tilt + Math.sin(this.t * 0.7) * 1.2, dt, 0.4);
    p.lean = approach(p.lean, pose.lean, dt, 0.4);
    p.nod = approach(p.nod, speaking ? this.mouth.open * 3 : 0, dt, 0.12);
    if ((this.saccade.next -= dt) <= 0) {
      this.saccade = { x: (Math.random() - 0.5) * 0.5, y: (Math.random() - 0.5) * 0.3, next: 1.2 + Math.random() * 2.5 };
    }
    const idleGaze = this.state === 'idle' ? 1 : 0.3;
    p.gazeX = approach(p.gazeX, pose.gazeX + this.saccade.x * idleGaze, dt, 0.06);
    p.gazeY = approach(p.gazeY, pose.gazeY + this.saccade.y * idleGaze, dt, 0.06);

    // blinks every 2–6 s (150 ms), plus an occasional double blink
    this.nextBlink -= dt;
    if (this.nextBlink <= 0 && this.blinkT < 0) { this.blinkT = 0; this.nextBlink = 2 + Math.random() * 4; if (Math.random() < 0.15) this.nextBlink = 0.3; }
    if (this.blinkT >= 0) {
      this.blinkT += dt;
      const k = this.blinkT / 0.15;
      this.blink = k < 0.5 ? k * 2 : Math.max(0, 2 - k * 2);
      if (k >= 1) { this.blinkT = -1; this.blink = 0; }
    }
    this._draw();
  }

  _draw() {
    const m = this.mouth, f = this.face, p = this.pose;
    const breathe = Math.sin(this.t * (2 * Math.PI / 4.2));
    this.body.setAttribute('transform', `translate(0 ${breathe * 1.6}) scale(1 ${1 + breathe * 0.004})`);
    const headT = `translate(${p.lean} ${breathe * 2.2 + p.nod}) rotate(${p.tilt} 200 330)`;
    this.head.setAttribute('transform', headT);
    this.hairBack.setAttribute('transform', headT);
    this.svg.dataset.mouthOpen = m.open.toFixed(3);

    // face outline: the chin drops with the jaw
    const open = clamp(m.open + f.open);
    const chin = 370 + open * 10;
    this.faceShape.setAttribute('d', `M116 220 C112 140 156 110 200 110 C244 110 288 140 284 220 C283 282 262 ${chin - 30} 226 ${chin - 6} C212 ${chin + 1} 188 ${chin + 1} 174 ${chin - 6} C138 ${chin - 30} 117 282 116 220 Z`);
    for (const c of this.cheeks) c.setAttribute('opacity', (0.3 + f.cheek * 0.6).toFixed(3));

    // eyes: lids close for blinks and squints, open wider when surprised
    const blink = clamp(this.blink + f.squint * 0.3 - f.wide * 0.3 + 0.1);
    for (const e of this.eyes) {
      const up = 14 * clamp(1 - blink), lo = 14 * clamp(1 - f.squint * 0.45 - f.smile * 0.2 - this.blink * 0.2);
      const x0 = e.cx - 24, x1 = e.cx + 24, y = e.cy;
      e.lid.setAttribute('d', `M${x0 - 6} ${y - 30} L${x1 + 6} ${y - 30} L${x1 + 6} ${y} L${x1} ${y} Q${e.cx} ${y - 2 * up} ${x0} ${y} L${x0 - 6} ${y} Z`);
      e.lower.setAttribute('d', `M${x0 - 6} ${y + 30} L${x1 + 6} ${y + 30} L${x1 + 6} ${y} L${x1} ${y} Q${e.cx} ${y + 2 * lo} ${x0} ${y} L${x0 - 6} ${y} Z`);
      e.lash.setAttribute('d', `M${x0 - 2} ${y + 1} Q${e.cx} ${y - 2 * up - 1} ${x1 + 3} ${y - 2}`);
      e.iris.setAttribute('transform', `translate(${p.gazeX * 7} ${p.gazeY * 5})`);
    }
    // brows: inner ends rise when concerned, whole brow when surprised/listening
    this.brows.forEach((br, i) => {
      const cx = +br.getAttribute('data-cx'), dir = i === 0 ? 1 : -1;
      const base = 200 - f.browUp * 12 + f.browDown * 6;
      const inner = base - f.browInner * 12 + f.browDown * 4, outer = base + f.browInner * 4 - f.browUp * 2;
      br.setAttribute('d', `M${cx - 24 * dir} ${outer + 4} Q${cx} ${base - 8} ${cx + 22 * dir} ${inner}`);
    });

    // mouth
    const cx = 200, cy = 318;
    const smile = clamp(m.smile + f.smile, 0, 1.2), frown = clamp(m.frown + f.frown);
    const round = clamp(m.pucker * 0.8 + m.funnel * 0.6);
    const halfW = 34 * (1 + 0.28 * m.stretch + 0.18 * smile - 0.42 * round);
    const cornerY = cy - smile * 9 + frown * 7;
    const gap = open * 44 * (1 - 0.3 * m.press);
    const topY = cy - 0.8 - gap * 0.22 - m.upperUp * 4 - round * gap * 0.15;
    const botY = cy + 0.8 + gap * 0.78 - m.shrugLower * 6 + round * 2;
    const roundK = 0.55 + round * 0.35; // rounder opening when funnelled
    const L = cx - halfW, R = cx + halfW;
    const inner = `M${L} ${cornerY} C${cx - halfW * roundK} ${topY} ${cx + halfW * roundK} ${topY} ${R} ${cornerY} `
      + `C${cx + halfW * roundK} ${botY} ${cx - halfW * roundK} ${botY} ${L} ${cornerY} Z`;
    this.mouthInner.setAttribute('d', inner);
    this.mouthClipPath.setAttribute('d', inner);
    const upT = 9 * (1 - 0.45 * m.press) + round * 3, loT = 11 * (1 - 0.4 * m.press) + round * 3;
    const bow = 4 + round * 2;
    this.upperLip.setAttribute('d', `M${L - 3} ${cornerY} C${cx - halfW * 0.7} ${topY - upT * 0.4} ${cx - 14} ${topY - upT - 2} ${cx - 6} ${topY - upT} `
      + `Q${cx} ${topY - upT + bow * 0.5} ${cx + 6} ${topY - upT} C${cx + 14} ${topY - upT - 2} ${cx + halfW * 0.7} ${topY - upT * 0.4} ${R + 3} ${cornerY} `
      + `C${cx + halfW * roundK} ${topY} ${cx - halfW * roundK} ${topY} ${L - 3} ${cornerY} Z`);
    this.lowerLip.setAttribute('d', `M${R + 3} ${cornerY} C${cx + halfW * 0.75} ${botY + loT} ${cx - halfW * 0.75} ${botY + loT} ${L - 3} ${cornerY} `
      + `C${cx - halfW * roundK} ${botY} ${cx + halfW * roundK} ${botY} ${R + 3} ${cornerY} Z`);
    this.upperTeeth.setAttribute('x', cx - halfW * 0.8); this.upperTeeth.setAttribute('width', halfW * 1.6);
    this.upperTeeth.setAttribute('y', topY - 6); this.upperTeeth.setAttribute('height', 6 + Math.min(9, gap * 0.3));
    this.upperTeeth.setAttribute('opacity', clamp(gap / 6).toFixed(2)); this.lowerTeeth.setAttribute('opacity', clamp(gap / 10).toFixed(2));
    this.lowerTeeth.setAttribute('x', cx - halfW * 0.7); this.lowerTeeth.setAttribute('width', halfW * 1.4);
    this.lowerTeeth.setAttribute('y', botY - Math.min(6, gap * 0.15)); this.lowerTeeth.setAttribute('height', 8);
    this.tongue.setAttribute('cx', cx); this.tongue.setAttribute('cy', botY - 2 - m.tongue * 8);
    this.tongue.setAttribute('rx', halfW * 0.55); this.tongue.setAttribute('ry', 6 + gap * 0.12);
  }
}
