"""Writes a small stylised head as GLB with ARKit-named morph targets — the project's own 3D test/demo avatar.

Why generate it: no redistributable GLB/VRM avatar is installable here (openfacefx's facecap.glb states no license),
and the three.js renderer needs a real file with morph targets to be tested. Pure numpy + a hand-written glTF 2.0
writer (JSON chunk + BIN chunk); `python -m ui.headglb [out.glb]` rewrites `ui/static/head.glb`.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np

from . import STATIC_DIR

MOUTH_TARGETS = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmileLeft", "mouthSmileRight",
                 "mouthStretchLeft", "mouthStretchRight", "mouthPressLeft", "mouthPressRight", "mouthFrownLeft",
                 "mouthFrownRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
                 "mouthUpperUpRight", "mouthRollLower", "mouthShrugLower")
EYE_TARGETS = ("eyeBlinkLeft", "eyeBlinkRight", "eyeWideLeft", "eyeWideRight")
BROW_TARGETS = ("browInnerUp", "browOuterUpLeft", "browOuterUpRight", "browDownLeft", "browDownRight")


def _sphere(rx: float, ry: float, rz: float, center=(0.0, 0.0, 0.0), n_lat: int = 24, n_lon: int = 32):
    lat = np.linspace(0, np.pi, n_lat + 1)
    lon = np.linspace(0, 2 * np.pi, n_lon + 1)
    th, ph = np.meshgrid(lat, lon, indexing="ij")
    unit = np.stack([np.sin(th) * np.sin(ph), np.cos(th), np.sin(th) * np.cos(ph)], axis=-1).reshape(-1, 3)
    pos = unit * np.array([rx, ry, rz]) + np.array(center)
    normals = unit / np.array([rx, ry, rz])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    idx = []
    for i in range(n_lat):
        for j in range(n_lon):
            a, b = i * (n_lon + 1) + j, (i + 1) * (n_lon + 1) + j
            idx += [a, b, a + 1, a + 1, b, b + 1]
    return pos.astype(np.float32), normals.astype(np.float32), np.array(idx, dtype=np.uint16)


def _head():
    pos, nor, idx = _sphere(0.50, 0.62, 0.52)
    targets = {}
    for side, sx in (("Left", 1), ("Right", -1)):  # cheeks lift a little with a smile (ARKit left = avatar's left)
        d = np.zeros_like(pos)
        w = np.exp(-(((pos[:, 0] - 0.22 * sx) / 0.12) ** 2 + ((pos[:, 1] + 0.12) / 0.1) ** 2)) * (pos[:, 2] > 0)
        d[:, 1] = 0.03 * w
        targets[f"mouthSmile{side}"] = d
    jaw = np.zeros_like(pos)
    below = np.clip((-0.2 - pos[:, 1]) / 0.3, 0, 1) * (pos[:, 2] > -0.1)
    jaw[:, 1] = -0.08 * below  # the chin drops with the jaw
    targets["jawOpen"] = jaw
    return pos, nor, idx, targets


def _mouth():
    """A dark lens-shaped opening on the face; its morphs open, round, widen and lift the corners."""
    pos, nor, idx = _sphere(0.15, 0.012, 0.03, center=(0.0, -0.25, 0.47), n_lat=8, n_lon=24)
    x, y = pos[:, 0], pos[:, 1] + 0.25
    corner = np.clip(np.abs(x) / 0.15, 0, 1)
    t = {name: np.zeros_like(pos) for name in MOUTH_TARGETS}
    t["jawOpen"][:, 1] = np.sign(y) * 0.085 * (1 - corner ** 2) - 0.03 * (1 - corner ** 2)
    t["mouthLowerDownLeft"][:, 1] = -0.03 * (y < 0) * (x > 0) * (1 - corner ** 2)
    t["mouthLowerDownRight"][:, 1] = -0.03 * (y < 0) * (x < 0) * (1 - corner ** 2)
    t["mouthUpperUpLeft"][:, 1] = 0.02 * (y > 0) * (x > 0) * (1 - corner ** 2)
    t["mouthUpperUpRight"][:, 1] = 0.02 * (y > 0) * (x < 0) * (1 - corner ** 2)
    t["mouthClose"][:, 1] = -y * 0.9
    for name in ("mouthPressLeft", "mouthPressRight"):
        t[name][:, 1] = -y * 0.45
    t["mouthFunnel"][:, 0] = -x * 0.45
    t["mouthFunnel"][:, 1] = np.sign(y) * 0.03 * (1 - corner ** 2)
    t["mouthPucker"][:, 0] = -x * 0.55
    t["mouthPucker"][:, 2] = 0.04
    t["mouthRollLower"][:, 1] = -y * 0.4 * (y < 0)
    t["mouthShrugLower"][:, 1] = 0.01 * (y < 0)
    for side, sx in (("Left", 1), ("Right", -1)):
        on = (np.sign(x) == sx) * corner
        t[f"mouthSmile{side}"][:, 1] = 0.05 * on ** 2
        t[f"mouthSmile{side}"][:, 0] = 0.02 * sx * on
        t[f"mouthFrown{side}"][:, 1] = -0.04 * on ** 2
        t[f"mouthStretch{side}"][:, 0] = 0.04 * sx * on
    return pos, nor, idx, t


def _eyes():
    parts = [_sphere(0.085, 0.06, 0.04, center=(sx * 0.18, 0.08, 0.44), n_lat=10, n_lon=16) for sx in (1, -1)]
    pos = np.concatenate([p for p, _, _ in parts])
    nor = np.concatenate([n for _, n, _ in parts])
    idx = np.concatenate([parts[0][2], parts[1][2] + len(parts[0][0])]).astype(np.uint16)
    half = len(parts[0][0])
    t = {name: np.zeros_like(pos) for name in EYE_TARGETS}
    for k, side in enumerate(("Left", "Right")):
        sl = slice(k * half, (k + 1) * half)
        t[f"eyeBlink{side}"][sl, 1] = -(pos[sl, 1] - 0.08) * 0.92
        t[f"eyeWide{side}"][sl, 1] = (pos[sl, 1] - 0.08) * 0.35
    return pos, nor, idx, t


def _brows():
    parts = [_sphere(0.09, 0.014, 0.02, center=(sx * 0.18, 0.21, 0.47), n_lat=6, n_lon=12) for sx in (1, -1)]
    pos = np.concatenate([p for p, _, _ in parts])
    nor = np.concatenate([n for _, n, _ in parts])
    idx = np.concatenate([parts[0][2], parts[1][2] + len(parts[0][0])]).astype(np.uint16)
    t = {name: np.zeros_like(pos) for name in BROW_TARGETS}
    inner = np.clip(1 - np.abs(pos[:, 0]) / 0.27, 0, 1)
    t["browInnerUp"][:, 1] = 0.05 * inner
    for side, sx in (("Left", 1), ("Right", -1)):
        on = np.sign(pos[:, 0]) == sx
        t[f"browOuterUp{side}"][:, 1] = 0.05 * on
        t[f"browDown{side}"][:, 1] = -0.03 * on
    return pos, nor, idx, t


class _Writer:
    def __init__(self) -> None:
        self.bin = bytearray()
        self.gltf: dict = {"asset": {"version": "2.0", "generator": "falante ui.headglb"}, "scene": 0,
                           "scenes": [{"nodes": [0]}], "nodes": [{"name": "FalanteHead", "children": []}],
                           "meshes": [], "materials": [], "accessors": [], "bufferViews": [], "buffers": []}

    def _view(self, data: bytes, target: int | None) -> int:
        while len(self.bin) % 4:
            self.bin.append(0)
        view = {"buffer": 0, "byteOffset": len(self.bin), "byteLength": len(data)}
        if target:
            view["target"] = target
        self.bin += data
        self.gltf["bufferViews"].append(view)
        return len(self.gltf["bufferViews"]) - 1

    def _accessor(self, array: np.ndarray, kind: str, target: int | None, minmax: bool = False) -> int:
        comp = 5126 if array.dtype == np.float32 else 5123
        acc = {"bufferView": self._view(array.tobytes(), target), "componentType": comp, "count": len(array),
               "type": kind}
        if minmax:
            acc["min"], acc["max"] = array.min(axis=0).tolist(), array.max(axis=0).tolist()
        self.gltf["accessors"].append(acc)
        return len(self.gltf["accessors"]) - 1

    def mesh(self, name: str, pos, nor, idx, targets: dict, color, roughness: float = 0.6) -> None:
        self.gltf["materials"].append({"name": name, "pbrMetallicRoughness": {
            "baseColorFactor": [*color, 1.0], "metallicFactor": 0.0, "roughnessFactor": roughness}})
        names = list(targets)
        prim = {
            "attributes": {"POSITION": self._accessor(pos, "VEC3", 34962, True),
                           "NORMAL": self._accessor(nor, "VEC3", 34962)},
            "indices": self._accessor(idx, "SCALAR", 34963),
            "material": len(self.gltf["materials"]) - 1,
            "targets": [{"POSITION": self._accessor(targets[n].astype(np.float32), "VEC3", 34962, True)}
                        for n in names],
        }
        self.gltf["meshes"].append({"name": name, "primitives": [prim], "weights": [0.0] * len(names),
                                    "extras": {"targetNames": names}})
        self.gltf["nodes"].append({"name": name, "mesh": len(self.gltf["meshes"]) - 1})
        self.gltf["nodes"][0]["children"].append(len(self.gltf["nodes"]) - 1)

    def glb(self) -> bytes:
        self.gltf["buffers"] = [{"byteLength": len(self.bin)}]
        js = json.dumps(self.gltf, separators=(",", ":")).encode()
        js += b" " * (-len(js) % 4)
        bin_ = bytes(self.bin) + b"\0" * (-len(self.bin) % 4)
        total = 12 + 8 + len(js) + 8 + len(bin_)
        return (struct.pack("<III", 0x46546C67, 2, total) + struct.pack("<II", len(js), 0x4E4F534A) + js
                + struct.pack("<II", len(bin_), 0x004E4942) + bin_)


def build_head_glb() -> bytes:
    """The GLB bytes (deterministic)."""
    w = _Writer()
    w.mesh("Head", *_head(), color=(0.93, 0.72, 0.58))
    w.mesh("Mouth", *_mouth(), color=(0.45, 0.12, 0.14), roughness=0.4)
    w.mesh("Eyes", *_eyes(), color=(0.12, 0.08, 0.07), roughness=0.2)
    w.mesh("Brows", *_brows(), color=(0.23, 0.14, 0.09))
    return w.glb()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else STATIC_DIR / "head.glb"
    out.write_bytes(build_head_glb())
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
