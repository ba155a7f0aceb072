// three.js renderer for user-supplied GLB/VRM avatars with ARKit (jawOpen, mouthFunnel, …) or Oculus
// (viseme_aa / aa, …) morph targets. Same interface as Avatar2D: setFrame(frame), setState(state, expression),
// getState(). three.js is vendored (vendor/three-gltf.min.js, MIT) — no CDN, no downloads at run time.
import * as THREE from './vendor/three-gltf.min.js';

const VISEMES = ['sil', 'PP', 'FF', 'TH', 'DD', 'kk', 'CH', 'SS', 'nn', 'RR', 'aa', 'E', 'ih', 'oh', 'ou'];
// VRM 0.x/1.0 expression names for the five vowels
const VRM_VOWELS = { aa: 'aa', E: 'ee', ih: 'ih', oh: 'oh', ou: 'ou' };
const EXPRESSION_SHAPES = {
  neutral: {},
  happy: { mouthSmileLeft: 0.4, mouthSmileRight: 0.4, cheekSquintLeft: 0.3, cheekSquintRight: 0.3, happy: 0.6, joy: 0.6 },
  concerned: { browInnerUp: 0.6, mouthFrownLeft: 0.3, mouthFrownRight: 0.3, sad: 0.5, sorrow: 0.5 },
  surprised: { browInnerUp: 0.4, browOuterUpLeft: 0.6, browOuterUpRight: 0.6, eyeWideLeft: 0.5, eyeWideRight: 0.5, surprised: 0.6 },
};

export class Avatar3D {
  constructor(container) {
    this.container = container;
    this.state = 'idle';
    this.expression = 'neutral';
    this.frame = null;
    this.meshes = [];
    this.t = 0;
    this.blink = 0;
    this.nextBlink = 2;
    this.blinkT = -1;
    this.applied = {};
    this.scene = new THREE.Scene();
    this.camera = new THREE.PerspectiveCamera(28, 1, 0.01, 100);
    this.renderer = new THREE.WebGLRenderer({ antialias: true, alpha: true, preserveDrawingBuffer: true });
    this.renderer.outputColorSpace = THREE.SRGBColorSpace;
    this.renderer.toneMapping = THREE.ACESFilmicToneMapping;
    this.renderer.setPixelRatio(Math.min(2, window.devicePixelRatio || 1));
    container.appendChild(this.renderer.domElement);
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x405060, 1.6));
    const key = new THREE.DirectionalLight(0xffffff, 2.2);
    key.position.set(1, 1.5, 2);
    this.scene.add(key);
    this.clock = new THREE.Clock();
    this._resize = () => {
      const w = container.clientWidth || 400, h = container.clientHeight || 400;
      this.renderer.setSize(w, h, false);
      this.camera.aspect = w / h;
      this.camera.updateProjectionMatrix();
    };
    window.addEventListener('resize', this._resize);
    this._resize();
  }

  async load(url) {
    const gltf = await new THREE.GLTFLoader().loadAsync(url);
    const root = gltf.scene;
    const vrm = gltf.userData && gltf.userData.vrm; // set when a VRM plugin is registered; plain GLB otherwise
    this.root = vrm ? vrm.scene : root;
    this.scene.add(this.root);
    this.root.traverse((o) => { if (o.isMesh && o.morphTargetDictionary) this.meshes.push(o); });
    if (!this.meshes.length) throw new Error(`${url}: no morph targets found (need ARKit or Oculus viseme shapes)`);
    // frame the head: the top ~35% of the model's bounding box (whole model when it is only a head)
    const box = new THREE.Box3().setFromObject(this.root);
    const size = box.getSize(new THREE.Vector3()), center = box.getCenter(new THREE.Vector3());
    const headOnly = size.y < size.x * 2;
    const focusY = headOnly ? center.y : box.max.y - size.y * 0.1;
    const span = headOnly ? size.y : size.y * 0.22;
    const dist = (span * 0.62) / Math.tan(THREE.MathUtils.degToRad(this.camera.fov / 2));
    this.camera.position.set(center.x, focusY, box.max.z + dist);
    this.camera.lookAt(center.x, focusY, center.z);
    this.baseRotation = this.root.rotation.clone();
    this.names = new Set(this.meshes.flatMap((m) => Object.keys(m.morphTargetDictionary)));
    const loop = () => { this._raf = requestAnimationFrame(loop); this.update(Math.min(0.1, this.clock.getDelta())); };
    this._raf = requestAnimationFrame(loop);
    return this;
  }

  setFrame(frame) { this.frame = frame; }

  setState(state, expression) {
    this.state = state || this.state;
    if (expression && EXPRESSION_SHAPES[expression]) this.expression = expression;
    this.container.dataset.state = this.state;
  }

  getState() {
    const open = this.applied.jawOpen ?? this.applied.viseme_aa ?? this.applied.aa ?? 0;
    return { state: this.state, expression: this.expression, mouthOpen: open, mouthInnerHeight: open * 50, blink: this.blink,
      morphTargets: [...(this.names || [])] };
  }

  destroy() { cancelAnimationFrame(this._raf); window.removeEventListener('resize', this._resize); this.renderer.dispose(); }

  _targets() {
    const out = {};
    const f = this.frame;
    const add = (name, v) => { out[name] = Math.max(out[name] || 0, v); };
    if (f) {
      for (const [name, v] of Object.entries(f.blendshapes || {})) add(name, v);
      (f.visemes || []).forEach((v, i) => {
        add(`viseme_${VISEMES[i]}`, v); // Ready Player Me / Oculus naming
        add(VISEMES[i], v);
        if (VRM_VOWELS[VISEMES[i]]) add(VRM_VOWELS[VISEMES[i]], v);
      });
    }
    for (const [name, v] of Object.entries(EXPRESSION_SHAPES[this.expression] || {})) add(name, v);
    add('eyeBlinkLeft', this.blink); add('eyeBlinkRight', this.blink); add('blink', this.blink);
    if (this.state === 'listening') add('browInnerUp', 0.2);
    return out;
  }

  update(dt) {
    this.t += dt;
    this.nextBlink -= dt;
    if (this.nextBlink <= 0 && this.blinkT < 0) { this.blinkT = 0; this.nextBlink = 2 + Math.random() * 4; }
    if (this.blinkT >= 0) {
      this.blinkT += dt;
      const k = this.blinkT / 0.15;
      this.blink = k < 0.5 ? k * 2 : Math.max(0, 2 - k * 2);
      if (k >= 1) { this.blinkT = -1; this.blink = 0; }
    }
    const targets = this._targets();
    const speaking = !!this.frame;
    for (const name of this.names) {
      const goal = Math.min(1, targets[name] || 0);
      const cur = this.applied[name] || 0;
      // lip-sync follows the audio-clock frame directly; everything else eases
      const v = speaking && name in targets ? goal : cur + (goal - cur) * (1 - Math.exp(-dt / 0.08));
      this.applied[name] = v;
      for (const m of this.meshes) {
        const i = m.morphTargetDictionary[name];
        if (i !== undefined) m.morphTargetInfluences[i] = v;
      }
    }
    // breathing, slow sway, listening tilt, small nods while speaking
    const r = this.baseRotation;
    const tilt = this.state === 'listening' ? 0.08 : 0;
    const nod = speaking ? (targets.jawOpen || 0) * 0.05 : 0;
    this.root.rotation.set(r.x + Math.sin(this.t * 0.9) * 0.02 + nod, r.y + Math.sin(this.t * 0.5) * 0.05, r.z + tilt + Math.sin(this.t * 0.7) * 0.015);
    this.root.position.y = Math.sin(this.t * (2 * Math.PI / 4.2)) * 0.004;
    this.renderer.render(this.scene, this.camera);
  }
}
