"""Fairness benchmark: does one abusive session slow down another one's replies?

Not a test: it reports, it does not assert. The real server (embedded default models) runs in this process on a
loopback port; session B speaks dev-set clips in real time over the protocol (raw websocket) and we time each
clip's speech end -> first reply audio (client side). Scenarios, each with a fresh B session:
- solo: B alone;
- flood: session A streams dev speech at `--flood-factor` x real time (default 10) the whole time;
- commits: session A (turn detection off) appends `--commit-seconds` (default 119 s) as fast as it can and
  commits, over and over.
Reported: B's median per scenario, its ratio to solo (target <= 1.5), and the error codes A got.
`--compare-unfair` runs the same scenarios again with the fairness off (one owner for every ASR job, no audio
budget, no commit cap: the scheduling before issue 12), so before/after come from one run on one machine.

    .venv/bin/python scripts/bench_fairness.py --clips 3                       # a short check
    .venv/bin/python scripts/bench_fairness.py --clips 12 --compare-unfair --out docs/bench/fairness.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextvars
import json
import os
import platform
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from falante.audio import float_to_pcm16_bytes
from falante.config import Settings
from server.app import create_app
from server.run import running
from tests.conftest import dev_clip, dev_manifest

RATE = 24_000
CHUNK_MS = 100
STEP = RATE * CHUNK_MS // 1000


def _append(audio: np.ndarray) -> str:
    return json.dumps({"type": "input_audio_buffer.append",
                       "audio": base64.b64encode(float_to_pcm16_bytes(audio)).decode()})


async def _drain(ws: Any, errors: Counter, counts: Counter) -> None:
    """Read everything the server sends A (a client that does not read would only be dropped)."""
    async for message in ws:
        event = json.loads(message)
        counts[event["type"]] += 1
        if event["type"] == "error":
            errors[event["error"]["code"]] += 1


async def speaker(url: str, clips: list[dict], tail_s: float = 1.0, timeout: float = 300.0) -> list[dict]:
    """Session B: each clip in real time, then silence until its reply is done; speech end -> first audio.

    Only a response created after the clip's speech_stopped counts (a late reply to an earlier clip does not)."""
    rows = []
    async with websockets.connect(url, max_size=None) as ws:
        json.loads(await ws.recv())  # session.created
        for clip in clips:
            audio = np.concatenate([dev_clip(clip["file"]), np.zeros(int(tail_s * RATE), np.float32)])
            first_audio: float | None = None
            done = asyncio.Event()
            status = None

            async def listen() -> None:
                nonlocal first_audio, status
                stopped, response_id = False, None
                async for message in ws:
                    event = json.loads(message)
                    if event["type"] == "input_audio_buffer.speech_stopped":
                        stopped = True
                    elif event["type"] == "response.created" and stopped and response_id is None:
                        response_id = event["response"]["id"]
                    elif event["type"] == "response.output_audio.delta" and event.get("response_id") == \
                            response_id and first_audio is None:
                        first_audio = time.perf_counter()
                    elif event["type"] == "response.done" and event["response"]["id"] == response_id:
                        status = event["response"]["status"]
                        done.set()
                        return

            reader = asyncio.create_task(listen())
            t0 = time.perf_counter()
            for i, offset in enumerate(range(0, len(audio), STEP)):  # real time on an absolute schedule
                await asyncio.sleep(max(0.0, t0 + i * CHUNK_MS / 1000 - time.perf_counter()))
                await ws.send(_append(audio[offset: offset + STEP]))
            silence = np.zeros(STEP, np.float32)
            try:
                async with asyncio.timeout(timeout):
                    while not done.is_set():  # the microphone stays open: silence in real time
                        await asyncio.wait({reader}, timeout=CHUNK_MS / 1000)
                        if not done.is_set():
                            await ws.send(_append(silence))
            except TimeoutError:
                pass
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            speech_end = t0 + clip["speech_end_s"]
            rows.append({"clip": clip["file"], "status": status,
                         "first_audio_s": None if first_audio is None else round(first_audio - speech_end, 3)})
            print(f"    B {clip['file']}: {rows[-1]}", flush=True)
    return rows


async def flooder(url: str, stop: asyncio.Event, speech: np.ndarray, factor: float, errors: Counter,
                  counts: Counter) -> None:
    """Session A: dev speech (with its pauses) at `factor` x real time, looped until told to stop."""
    async with websockets.connect(url, max_size=None) as ws:
        reader = asyncio.create_task(_drain(ws, errors, counts))
        t0, i = time.perf_counter(), 0
        try:
            while not stop.is_set():
                offset = (i * STEP) % (len(speech) - STEP)
                await asyncio.sleep(max(0.0, t0 + i * CHUNK_MS / 1000 / factor - time.perf_counter()))
                await ws.send(_append(speech[offset: offset + STEP]))
                counts["appends"] += 1
                i += 1
        finally:
            reader.cancel()


async def committer(url: str, stop: asyncio.Event, speech: np.ndarray, seconds: float, errors: Counter,
                    counts: Counter) -> None:
    """Session A, turn detection off: `seconds` of speech appended at once, committed, again and again."""
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {
            "input": {"turn_detection": None}}}}))
        reader = asyncio.create_task(_drain(ws, errors, counts))
        big = STEP * 10  # 1 s per append
        try:
            i = 0
            while not stop.is_set():
                for _ in range(int(seconds)):
                    offset = (i * big) % (len(speech) - big)
                    await ws.send(_append(speech[offset: offset + big]))
                    counts["appends"] += 1
                    i += 1
                    await asyncio.sleep(0)
                await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
                counts["commits"] += 1
                await asyncio.sleep(0.05)
        finally:
            reader.cancel()


def _median(rows: list[dict]) -> float | None:
    values = [r["first_audio_s"] for r in rows if r["first_audio_s"] is not None]
    return round(statistics.median(values), 3) if values else None


def unfair() -> None:
    """The scheduling before issue 12: one FIFO owner for all ASR work, no audio budget, no commit cap, and a
    llama.cpp reply paced by its voice holds the single worker even while another session's request waits."""
    import asr.executor
    import llm.llamacpp
    import server.session

    def paced_always(self: Any, credits: Any, stop: Any) -> bool:
        while not credits.acquire(timeout=0.05):
            if stop.is_set():
                return False
        return True

    asr.executor.current_owner = contextvars.ContextVar("unowned", default=None)
    server.session.MAX_PENDING_COMMITS = 1 << 30
    llm.llamacpp.LlamaCppLanguageModel._paced = paced_always  # type: ignore[method-assign]


async def run(settings: Settings, clips: list[dict], args: argparse.Namespace) -> dict:
    backends = None
    if args.fake_models:  # the harness only (figures meaningless): scripted models from tests/fakes.py
        from tests.conftest import fake_backends
        from tests.fakes import FakeTTS
        backends = fake_backends(tts=FakeTTS(rtf=0.5))
    app = create_app(settings, backends)
    speech = np.concatenate([np.concatenate([dev_clip(c["file"]), np.zeros(RATE // 2, np.float32)])
                             for c in dev_manifest() if "turns" not in c][:20])
    results: dict[str, Any] = {}
    async with running(app, settings) as host:
        url = f"ws://{host}/v1/realtime"
        await speaker(url, clips[:1])  # warm-up (first-call costs), not counted
        for scenario in args.scenarios:
            print(f"  scenario {scenario}", flush=True)
            errors, counts, stop = Counter(), Counter(), asyncio.Event()
            abuser = None
            if scenario == "flood":
                abuser = asyncio.create_task(flooder(url, stop, speech, args.flood_factor, errors, counts))
            elif scenario == "commits":
                abuser = asyncio.create_task(committer(url, stop, speech, args.commit_seconds, errors, counts))
            if abuser is not None:
                await asyncio.sleep(args.lead_s)  # let A fill the queues first
            rows = await speaker(url, clips)
            stop.set()
            if abuser is not None:
                await asyncio.gather(abuser, return_exceptions=True)
            results[scenario] = {"b_median_first_audio_s": _median(rows), "b_rows": rows,
                                 "a_errors": dict(errors), "a_counts": {k: counts[k] for k in (
                                     "appends", "commits", "response.done",
                                     "conversation.item.input_audio_transcription.completed") if counts[k]}}
    solo = results.get("solo", {}).get("b_median_first_audio_s")
    for scenario, result in results.items():
        value = result["b_median_first_audio_s"]
        result["ratio_to_solo"] = round(value / solo, 2) if solo and value else None
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=12, help="dev clips B speaks per scenario")
    parser.add_argument("--scenarios", nargs="+", default=["solo", "flood", "commits"],
                        choices=["solo", "flood", "commits"])
    parser.add_argument("--flood-factor", type=float, default=10.0, help="A's speed, x real time")
    parser.add_argument("--commit-seconds", type=float, default=119.0, help="audio A appends per commit")
    parser.add_argument("--lead-s", type=float, default=3.0, help="A's head start before B speaks")
    parser.add_argument("--compare-unfair", action="store_true",
                        help="also run with the fairness off (before/after in one run)")
    parser.add_argument("--fake-models", action="store_true",
                        help="smoke-test the harness with the fake models of tests/fakes.py (figures meaningless)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    clips = [m for m in dev_manifest() if "turns" not in m and not m.get("noisy")][: args.clips]
    settings = Settings()
    settings.server.ui = False
    report: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"), "clips": len(clips), "flood_factor": args.flood_factor,
        "commit_seconds": args.commit_seconds, "target_ratio": 1.5,
        "models": "FAKE (harness check only)" if args.fake_models else "embedded defaults",
        "limits": {"audio_realtime_factor": settings.limits.audio_realtime_factor,
                   "audio_burst_s": settings.limits.audio_burst_s}}

    def save() -> None:  # after each mode: the unfair one can die at exit (its unbounded commits), the fair stays
        print(json.dumps(report, indent=1, ensure_ascii=False), flush=True)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")

    print("fair", flush=True)
    report["fair"] = asyncio.run(run(settings, clips, args))
    save()
    if args.compare_unfair:
        print("unfair (before issue 12)", flush=True)
        unfair()
        off = Settings()
        off.server.ui = False
        off.limits.audio_realtime_factor, off.limits.audio_burst_s = 1e9, 1e9
        report["unfair"] = asyncio.run(run(off, clips, args))
        save()


if __name__ == "__main__":
    main()
