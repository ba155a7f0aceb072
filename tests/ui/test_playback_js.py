"""Unit tests of ui/static/playback.js under Node (no browser): pcm16 codec, frame interpolation, the response
clock of the playback queue across an underrun, and stop() reporting only what was audible."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from ui import STATIC_DIR

SCRIPT = r"""
const m = await import(process.argv[1]);
const out = {};
// pcm16 round trip
const b64 = m.floatToBase64Pcm16(new Float32Array([0, 0.5, -1, 2]));
out.pcm = Array.from(m.base64ToInt16(b64));
// frame interpolation on the sample clock
const fs = new m.FrameScheduler();
fs.push('r1', [{sample: 0, visemes: [1, 0], blendshapes: {}, expression: 'neutral'},
               {sample: 800, visemes: [0, 1], blendshapes: {jawOpen: 0.6}, expression: 'happy'}]);
const mid = fs.frameAt('r1', 400);
out.mid = {v: mid.visemes, jaw: mid.blendshapes.jawOpen, other: fs.frameAt('r2', 400)};
out.after = fs.frameAt('r1', 5000).blendshapes.jawOpen;
// playback queue with a fake AudioContext clock
const ctx = {currentTime: 10, outputLatency: 0, destination: {},
  createBuffer: (ch, n, rate) => ({getChannelData: () => new Float32Array(n)}),
  createBufferSource: () => ({connect() {}, start(t) { this.t = t; }, stop() { this.stopped = true; }})};
const p = new m.Player(ctx, 24000);
p.enqueue('r1', 'item1', new Int16Array(2400));       // 100 ms, starts after the 80 ms jitter lead
p.enqueue('r1', 'item1', new Int16Array(2400));       // back to back
out.first = p.segments.map(s => [s.s0, +s.t0.toFixed(3)]);
ctx.currentTime = 10.13;                               // 50 ms into the response
out.pos50 = Math.round(p.position());
ctx.currentTime = 10.5;                                // past the end: an underrun
p.enqueue('r1', 'item1', new Int16Array(2400));
out.afterUnderrun = Math.round(p.position());          // held at the last sample queued before the gap
ctx.currentTime = 10.57;                               // 50 ms into the new segment
out.pos2 = Math.round(p.position());
out.stop = p.stop();
out.cleared = {queued: p.queued, rid: p.responseId};
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_playback_module_under_node():
    res = subprocess.run(["node", "--input-type=module", "-e", SCRIPT, str(STATIC_DIR / "playback.js")],
                         capture_output=True, text=True, check=True, timeout=60)
    out = json.loads(res.stdout)
    assert out["pcm"] == [0, 16383, -32768, 32767]
    assert out["mid"]["v"] == [0.5, 0.5] and out["mid"]["jaw"] == pytest.approx(0.3) and out["mid"]["other"] is None
    assert out["after"] == 0.6
    assert out["first"] == [[0, 10.08], [2400, 10.18]]
    assert out["pos50"] == 1200
    assert out["afterUnderrun"] == 4800
    assert out["pos2"] == 4800 + 1200
    assert out["stop"] == {"responseId": "r1", "itemId": "item1", "playedMs": 250, "unplayed": True}
    assert out["cleared"] == {"queued": 0, "rid": None}
