"""A/V sync figure: offset between viseme activity and audio energy for the pt-BR dev-set sentences.

For each distinct `text_spoken` of the dev manifest: Kokoro TTS (tts.kokoro.KokoroSynthesizer, the same phoneme
timings the server streams) → avatar Timeline frames on the output clock → compare, on a 5 ms grid, where the
mouth is active (1 - weight of `sil` > 0.5, linearly interpolated between frames like the browser does) with
where the audio is active (RMS within 35 dB of the clip's peak). Each audio onset/offset is paired with the
nearest mouth onset/offset within ±250 ms; offset = mouth - audio (positive: the mouth is late).

    .venv/bin/python scripts/av_sync.py [--fps 30] [--smoothing 40] [--limit N] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avatar import Timeline, mouth_open

MANIFEST = ROOT.parent / "shared" / "data" / "ptbr-speech-dev" / "manifest.jsonl"
GRID_S = 0.005
PAIR_S = 0.25


def regions(active: np.ndarray, min_gap_s: float = 0.12, min_len_s: float = 0.04) -> list[tuple[float, float]]:
    """(start, end) seconds of runs of True on the 5 ms grid; short gaps merged, blips dropped."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
    runs = [[a * GRID_S, b * GRID_S] for a, b in zip(edges[::2], edges[1::2])]
    merged: list[list[float]] = []
    for run in runs:
        if merged and run[0] - merged[-1][1] < min_gap_s:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    return [(a, b) for a, b in merged if b - a >= min_len_s]


def audio_activity(audio: np.ndarray, rate: int, n: int) -> np.ndarray:
    hop, win = int(GRID_S * rate), int(0.02 * rate)
    padded = np.pad(audio.astype(np.float64), (win // 2, win))
    rms = np.array([np.sqrt(np.mean(padded[i * hop:i * hop + win] ** 2)) for i in range(n)])
    db = 20 * np.log10(rms + 1e-9)
    return db > max(db.max() - 35.0, -60.0)


def mouth_activity(frames, rate: int, n: int, kind: str) -> np.ndarray:
    t = np.array([f.sample / rate for f in frames])
    if kind == "viseme":
        v = np.array([1.0 - f.visemes[0] for f in frames])
        thr = 0.5
    else:
        v = np.array([mouth_open(f.visemes) for f in frames])
        thr = 0.15
    return np.interp(np.arange(n) * GRID_S, t, v) > thr


def pair(audio_edges: list[float], mouth_edges: list[float]) -> list[float]:
    out = []
    for a in audio_edges:
        if mouth_edges:
            m = min(mouth_edges, key=lambda x: abs(x - a))
            if abs(m - a) <= PAIR_S:
                out.append(m - a)
    return out


async def synthesize(tts, text: str, fps: int, smoothing: float, voice: str | None):
    timeline = Timeline(fps, tts.sample_rate, smoothing)
    audio, frames, cursor = [], [], 0
    async for chunk in tts.synthesize(text, voice=voice):
        frames += timeline.frames_for(chunk, cursor, tts.sample_rate)
        audio.append(chunk.audio)
        cursor += len(chunk.audio)
    frames += timeline.finish(cursor)
    return np.concatenate(audio), frames


async def run(args) -> dict:
    from falante.config import KokoroSettings
    from tts.kokoro import KokoroSynthesizer

    tts = KokoroSynthesizer(KokoroSettings())
    t0 = time.perf_counter()
    tts.load()
    load_s = time.perf_counter() - t0
    rows = [json.loads(line) for line in args.manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = list(dict.fromkeys(r["text_spoken"] for r in rows if "turns" not in r))[: args.limit or None]
    per_kind: dict[str, dict[str, list[float]]] = {k: {"onset": [], "offset": []} for k in ("viseme", "jaw")}
    unmatched = {"viseme": 0, "jaw": 0}
    n_edges = 0
    t0 = time.perf_counter()
    for text in texts:
        audio, frames = await synthesize(tts, text, args.fps, args.smoothing, args.voice)
        n = int(len(audio) / tts.sample_rate / GRID_S) + 1
        a_reg = regions(audio_activity(audio, tts.sample_rate, n))
        n_edges += 2 * len(a_reg)
        for kind in per_kind:
            m_reg = regions(mouth_activity(frames, tts.sample_rate, n, kind))
            on = pair([a for a, _ in a_reg], [a for a, _ in m_reg])
            off = pair([b for _, b in a_reg], [b for _, b in m_reg])
            per_kind[kind]["onset"] += on
            per_kind[kind]["offset"] += off
            unmatched[kind] += 2 * len(a_reg) - len(on) - len(off)
    synth_s = time.perf_counter() - t0

    def stats(values: list[float]) -> dict:
        ms = [1000 * v for v in values]
        if not ms:
            return {"n": 0}
        absms = sorted(abs(v) for v in ms)
        return {"n": len(ms), "median_abs_ms": round(statistics.median(absms), 1),
                "p90_abs_ms": round(absms[int(0.9 * (len(absms) - 1))], 1), "mean_ms": round(statistics.mean(ms), 1)}

    report = {
        "sentences": len(texts), "fps": args.fps, "smoothing_ms": args.smoothing, "voice": args.voice or "default",
        "timings_from": "kokoro model durations" if tts.has_durations else "estimated (no duration output)",
        "audio_edges": n_edges, "tts_load_s": round(load_s, 2), "synth_and_frames_s": round(synth_s, 1),
    }
    for kind, d in per_kind.items():
        report[kind] = {"onset": stats(d["onset"]), "offset": stats(d["offset"]),
                        "all": stats(d["onset"] + d["offset"]), "unmatched_edges": unmatched[kind]}
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", type=Path, default=MANIFEST)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--smoothing", type=float, default=40.0)
    ap.add_argument("--voice", default=None)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    report = asyncio.run(run(args))
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    v = report["viseme"]["all"]
    print(f"\nA/V sync (viseme activity vs audio energy): median |offset| {v.get('median_abs_ms')} ms over "
          f"{v.get('n')} edges of {report['sentences']} sentences (target <= 40 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
