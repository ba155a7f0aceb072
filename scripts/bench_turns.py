"""Turn-detection benchmark: server_vad vs semantic_vad over the protocol, dev clips streamed in real time.

What and why: a fixed silence either cuts off people who hesitate mid-sentence or answers finished phrases late;
semantic_vad should do neither. Each clip of ptbr-turns-dev (an unfinished phrase, a 0.7-1.0 s hesitation, its end)
and each finished single utterance of ptbr-speech-dev is streamed into the embedded server (one process, real
models, loopback websocket) as `input_audio_buffer.append` pcm16 24 kHz, 40 ms chunks paced on the loop clock, then
digital silence until the first `speech_stopped` after the clip's speech end (cap: speech end + 6 s). Every
configuration runs on fresh sessions (one per clip, `create_response: false`: no replies loading the CPU).
- cut-off: a speech_stopped / committed / response.created arriving before the speech-end sample was sent;
- endpoint delay: arrival of the first speech_stopped after that minus the send time of the speech-end sample;
- decision, score, waited: how each turn ended, read from the Prometheus /metrics counters right after each
  speech_stopped (the falante.response.metrics event carrying them only exists when a response runs).
Not a test: it reports, it does not assert.

    .venv/bin/python scripts/bench_turns.py --out docs/bench/turns.json
    ... --configs server_vad:500 semantic_vad:auto --pause-clips 4 --finished 4   # a quick subset

Runtime: ~6 s per pause clip and ~4 s per finished clip per config, plus model loading: ~20 min for everything on
2 CPU cores.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import platform
import statistics
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import websockets
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from falante.audio import float_to_pcm16_bytes, read_wav, resample
from falante.config import Settings
from server.app import create_app
from server.run import running
from tests.conftest import DEV_DIR, dev_clip, dev_manifest

RATE, CHUNK_MS, CAP_S = 24_000, 40, 6.0
TURNS_DIR = DEV_DIR.parent / "ptbr-turns-dev"
CONFIGS = ["server_vad:500", "server_vad:700", "semantic_vad:low", "semantic_vad:medium", "semantic_vad:high",
           "semantic_vad:auto"]
CUT_EVENTS = ("input_audio_buffer.speech_stopped", "input_audio_buffer.committed", "response.created")


def turn_detection(config: str) -> dict:
    kind, value = config.split(":")
    td = {"type": kind, "create_response": False}
    td.update({"silence_duration_ms": int(value)} if kind == "server_vad" else {"eagerness": value})
    return td


def metrics(host: str) -> dict[tuple, float]:
    text = urllib.request.urlopen(f"http://{host}/metrics", timeout=10).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for fam in text_string_to_metric_families(text)
            for s in fam.samples if s.name.startswith(("falante_turn_decisions_total", "falante_turn_end_score",
                                                       "falante_turn_wait_seconds_sum"))}


def how_ended(before: dict, after: dict) -> dict:
    """The decision, score and silence waited of the one turn that ended between two /metrics snapshots."""
    diff = {k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k, 0.0)}
    out: dict = {"decision": None, "score": None, "waited_ms": None}
    for (name, labels), value in diff.items():
        if name == "falante_turn_decisions_total":
            out["decision"] = dict(labels)["decision"]
        elif name == "falante_turn_wait_seconds_sum":
            out["waited_ms"] = round(value * 1000)
        elif name == "falante_turn_end_score_sum" and diff.get(("falante_turn_end_score_count", ())) == 1:
            out["score"] = round(value, 3)
    return out


async def run_clip(host: str, config: str, clip: dict, audio: np.ndarray) -> dict:
    loop = asyncio.get_running_loop()
    end_sample = round(clip["speech_end_s"] * RATE)
    step = RATE * CHUNK_MS // 1000
    state: dict = {"t_end": None, "stops": [], "cut": [], "heard": [], "done": asyncio.Event(),
             "heard_all": asyncio.Event()}
    async with websockets.connect(f"ws://{host}/v1/realtime?extensions=falante", max_size=None) as ws:
        await ws.recv()  # session.created
        await ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "audio": {"input": {"turn_detection": turn_detection(config)}}}}))
        reply = json.loads(await ws.recv())
        if reply["type"] != "session.updated":
            return {"clip": clip["file"], "error": reply}
        snapshot = await asyncio.to_thread(metrics, host)

        async def receive() -> None:
            nonlocal snapshot
            async for message in ws:
                now, event = loop.time(), json.loads(message)
                kind, before_end = event["type"], state["t_end"] is None
                if kind in CUT_EVENTS and before_end:
                    state["cut"].append(kind)
                if kind == "conversation.item.input_audio_transcription.completed":
                    state["heard"].append(event["transcript"])
                    if len(state["heard"]) >= len(state["stops"]) and state["done"].is_set():
                        state["heard_all"].set()
                if kind == "error":
                    state.setdefault("errors", []).append(event["error"])
                if kind != "input_audio_buffer.speech_stopped":
                    continue
                after = await asyncio.to_thread(metrics, host)
                stop = {"audio_end_ms": event["audio_end_ms"], "before_end": before_end,
                        "after_end_ms": None if before_end else round((now - state["t_end"]) * 1000),
                        **how_ended(snapshot, after)}
                snapshot = after
                state["stops"].append(stop)
                if not before_end:
                    state["done"].set()

        receiver = asyncio.create_task(receive())
        t0, i = loop.time(), 0
        while not state["done"].is_set() and i * step < end_sample + CAP_S * RATE:
            chunk = audio[i * step:(i + 1) * step]
            if not len(chunk):
                chunk = np.zeros(step, np.float32)
            await asyncio.sleep(max(0.0, t0 + i * CHUNK_MS / 1000 - loop.time()))
            await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                      "audio": base64.b64encode(float_to_pcm16_bytes(chunk)).decode()}))
            if state["t_end"] is None and (i + 1) * step > end_sample:
                state["t_end"] = loop.time()  # the speech-end sample has just been sent
            i += 1
        try:  # the final transcript of the last turn, for the record (the decode may still run)
            await asyncio.wait_for(state["heard_all"].wait(), 1.5)
        except TimeoutError:
            pass
        receiver.cancel()
    final = next((s for s in state["stops"] if not s["before_end"]), None)
    return {"clip": clip["file"], "speech_end_s": clip["speech_end_s"], "pause_s": clip.get("pause_s"),
            "cut_off": bool(state["cut"]), "cut_events": state["cut"],
            "endpoint_delay_ms": final["after_end_ms"] if final else None, "stops": state["stops"],
            "heard": state["heard"], "errors": state.get("errors", [])}


def pct(values: list[float], q: float) -> float | None:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else None


def summarize(rows: list[dict]) -> dict:
    delays = [r["endpoint_delay_ms"] for r in rows if r.get("endpoint_delay_ms") is not None]
    return {"clips": len(rows), "cut_offs": sum(bool(r.get("cut_off")) for r in rows),
            "errors": sum(bool(r.get("error") or r.get("errors")) for r in rows),
            "delay_p50_ms": round(statistics.median(delays)) if delays else None, "delay_p95_ms": pct(delays, 0.95),
            "delay_n": len(delays)}


async def bench(configs: list[str], sets: dict[str, list[tuple[dict, np.ndarray]]]) -> dict:
    settings = Settings()
    settings.server.ui = False
    app = create_app(settings)
    results = {}
    async with running(app, settings) as host:
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        for config in configs:
            results[config] = {}
            for name, clips in sets.items():
                rows = []
                for clip, audio in clips:
                    row = await run_clip(host, config, clip, audio)
                    rows.append(row)
                    print(f"{config:20} {name:8} {row['clip']:22} cut={row.get('cut_off')} "
                          f"delay={row.get('endpoint_delay_ms')}ms stops={row.get('stops') or row.get('error')} "
                          f"heard={row.get('heard')}", flush=True)
                results[config][name] = {"summary": summarize(rows), "rows": rows}
    return results


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=CONFIGS, help="server_vad:MS | semantic_vad:EAGERNESS")
    parser.add_argument("--pause-clips", type=int, default=16, help="clips of ptbr-turns-dev (hesitation pauses)")
    parser.add_argument("--finished", type=int, default=16, help="finished single clips of ptbr-speech-dev")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    pause = [json.loads(line) for line in (TURNS_DIR / "manifest.jsonl").read_text().splitlines() if line.strip()]
    finished = [m for m in dev_manifest() if "turns" not in m and not m.get("noisy")]
    sets = {"pause": [(m, resample(*read_wav(TURNS_DIR / m["file"]), RATE)) for m in pause[:args.pause_clips]],
            "finished": [(m, dev_clip(m["file"], RATE)) for m in finished[:args.finished]]}
    started, load_before = time.time(), os.getloadavg()
    results = asyncio.run(bench(args.configs, sets))
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{cpu_model()}, {os.cpu_count()} cores",
              "command": " ".join(sys.argv), "wall_s": round(time.time() - started), "chunk_ms": CHUNK_MS,
              "loadavg_before_after": [load_before, os.getloadavg()], "results": results}
    n_pause, n_fin = len(sets["pause"]), len(sets["finished"])
    print(f"\n{report['date']}  {report['machine']}  ({report['wall_s']} s, load average before/after "
          f"{load_before[0]:.1f}/{os.getloadavg()[0]:.1f})")
    delay = lambda s: f"{s['delay_p50_ms']}/{s['delay_p95_ms']} ms ({s['delay_n']})"
    print(f"{'config':20} {'pause cut':>10} {'finished cut':>13} {'pause p50/p95 (n)':>22} {'finished p50/p95 (n)':>22}")
    for config, res in results.items():
        p, f = res["pause"]["summary"], res["finished"]["summary"]
        errors = f"  errors {p['errors'] + f['errors']}" if p["errors"] + f["errors"] else ""
        print(f"{config:20} {p['cut_offs']:>7}/{n_pause:<2} {f['cut_offs']:>10}/{n_fin:<2} {delay(p):>22} {delay(f):>22}"
              + errors)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
