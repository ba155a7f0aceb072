// Entry for the vendored build: the parts of three.js falante's avatar3d.js uses + GLTFLoader.
export {
  AmbientLight, Box3, Clock, Color, DirectionalLight, HemisphereLight, MathUtils, PerspectiveCamera, Scene,
  SRGBColorSpace, Vector3, WebGLRenderer, ACESFilmicToneMapping, REVISION,
} from 'three';
export { GLTFLoader } from 'three/examples/jsm/loaders/GLTFLoader.js';
