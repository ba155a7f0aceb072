// Picks the renderer: the built-in 2D face, or three.js for a user-supplied GLB/VRM (loaded only when asked for).
import { Avatar2D } from './avatar2d.js';

export async function createAvatar(container, { renderer = '2d', glb = null } = {}) {
  if (renderer === '3d') {
    const { Avatar3D } = await import('./avatar3d.js');
    const url = glb || new URL('./head.glb', import.meta.url).href;
    const avatar = new Avatar3D(container);
    await avatar.load(url);
    return avatar;
  }
  return new Avatar2D(container);
}
