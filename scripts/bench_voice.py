"""Voice-to-voice benchmark: stream dev-set clips in real time to the embedded server, time every stage.

Not a test: it reports, it does not assert. Each configuration runs in this process on a loopback port, one
after the other, over the same clips, so the figures compare side by side (medians and ratios).

    .venv/bin/python scripts/bench_voice.py                       # default config only
    .venv/bin/python scripts/bench_voice.py --compare llm.kind=llama-cpp --clips 12 --out docs/bench_voice.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from falante.config import Settings
from server.app import create_app
from server.run import running
from tests.conftest import dev_clip, dev_manifest
from tests.sdk_client import speak_and_listen

RATE = 24_000
TRAILING_SILENCE_S = 3.0
STAGES = ("endpoint", "asr_final", "llm_first_token", "llm_first_sentence", "tts_first_audio", "voice_to_voice",
          "client_voice_to_voice")


def settings_for(overrides: list[str]) -> Settings:
    data: dict = {}
    for item in overrides:
        key, value = item.split("=", 1)
        section, field = key.split(".", 1)
        data.setdefault(section, {})[field] = value
    settings = Settings(**data)
    settings.server.ui = False
    return settings


async def run_clip(host: str, clip: dict) -> dict[str, float]:
    # a live microphone keeps sending silence: enough for semantic_vad's cap (2 s at auto) to end the turn
    audio = np.concatenate([dev_clip(clip["file"]), np.zeros(int(RATE * TRAILING_SILENCE_S), np.float32)])
    t0 = time.perf_counter()
    conv = await speak_and_listen(host, audio, pace=1.0, timeout=120)
    # wall clock when each event arrived is not kept by the SDK loop; use the server's stage metrics and
    # the client-side first-audio time measured from the known speech end of the clip.
    times = {}
    metrics = conv.of("falante.response.metrics")
    if metrics:
        times.update({k: v / 1000 for k, v in metrics[-1]["latency_ms"].items()})
    speech_end_s = clip["speech_end_s"]
    arrival = conv.first_audio_at - t0 if getattr(conv, "first_audio_at", None) else None
    if arrival is not None:
        times["client_voice_to_voice"] = arrival - speech_end_s
    stopped = conv.of("input_audio_buffer.speech_stopped")
    if stopped and getattr(conv, "arrivals", None):
        times["endpoint"] = conv.arrivals["input_audio_buffer.speech_stopped"] - t0 - speech_end_s
        done = conv.arrivals.get("conversation.item.input_audio_transcription.completed")
        if done:
            times["asr_final"] = done - conv.arrivals["input_audio_buffer.speech_stopped"]
    reply = conv.of("response.output_audio_transcript.done")
    times["_reply"] = reply[0]["transcript"] if reply else ""
    times["_heard"] = (conv.of("conversation.item.input_audio_transcription.completed") or [{}])[0].get("transcript")
    return times


async def bench(overrides: list[str], clips: list[dict]) -> dict:
    settings = settings_for(overrides)
    app = create_app(settings)
    t0 = time.perf_counter()
    async with running(app, settings) as host:
        startup = time.perf_counter() - t0
        rows = []
        for clip in clips:
            row = await run_clip(host, clip)
            rows.append(row)
            print(f"  {clip['file']}: " + ", ".join(f"{k}={v * 1000:.0f}ms" for k, v in row.items()
                                                     if not k.startswith("_")), flush=True)
    summary = {}
    for stage in STAGES:
        values = sorted(r[stage] for r in rows if stage in r)
        if values:
            summary[stage] = {"p50_ms": round(statistics.median(values) * 1000),
                              "p95_ms": round(values[min(len(values) - 1, int(0.95 * len(values)))] * 1000),
                              "n": len(values)}
    return {"config": overrides or ["default"], "startup_s": round(startup, 1), "stages": summary,
            "peak_rss_mb_so_far": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
            "load_seconds": app.state.falante.backends.load_seconds,
            "replies": [(r["_heard"], r["_reply"]) for r in rows]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=12, help="how many single clips of the dev set")
    parser.add_argument("--compare", action="append", default=[], help="section.field=value (another config)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    clips = [m for m in dev_manifest() if "turns" not in m and not m.get("noisy")][: args.clips]
    configs = [[]] + [[c] for c in args.compare]
    results = []
    for overrides in configs:
        print(f"config {overrides or 'default'}", flush=True)
        results.append(asyncio.run(bench(overrides, clips)))
    report = {"machine": f"{platform.machine()} {platform.processor() or ''} {__import__('os').cpu_count()} cores",
              "date": time.strftime("%Y-%m-%d"), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
              "results": results}
    print(json.dumps(report, indent=1, ensure_ascii=False))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
