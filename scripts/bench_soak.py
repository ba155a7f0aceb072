"""Soak benchmark: N sessions x M minutes of back-to-back turns against the real server; does anything leak?

Not a test: it reports, it does not assert. The server runs as a subprocess (`falante serve --no-ui`, the
embedded default models) so its RSS is its own; N client sessions alternate typed turns and spoken turns
(a dev clip streamed in real time) back to back until the time is up. Reported:
- the server's RSS sampled every `--sample-s` (start, end, growth, and growth over the second half, which
  separates warm-up from a leak), turn latencies (p50/p95 of turn start -> response.done) and counts;
- every `error` event by code, responses by status and reply audio seconds, as the clients received them,
  next to the server's /metrics counters (falante_responses_total, falante_client_errors_total,
  falante_audio_out_seconds_total), with their differences (`reconciled`: all zero).

    .venv/bin/python scripts/bench_soak.py --sessions 2 --minutes 1          # a short check
    .venv/bin/python scripts/bench_soak.py --out docs/bench/soak.json        # 4 sessions x 8 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from falante.audio import float_to_pcm16_bytes
from tests.conftest import dev_clip, dev_manifest

RATE = 24_000
STEP = RATE // 10
QUESTIONS = ["Qual é o horário de funcionamento?", "Vocês abrem no domingo?", "Quanto custa a entrega?",
             "Onde fica a loja mais próxima?", "Posso pagar com cartão?", "Tem estacionamento?"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def scrape(base: str) -> dict[str, float]:
    """Prometheus text → {'name{labels}': value} (counters and gauges only)."""
    text = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "_bucket" not in line:
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def _sum(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    """Counter values under `prefix`, by their label set (e.g. status="completed")."""
    return {k[len(prefix):].strip("{}") or "-": v for k, v in metrics.items()
            if k.startswith(prefix) and not k.startswith(prefix + "_created") and "_created" not in k}


async def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 600) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=2)
            return time.perf_counter() - t0
        except OSError:
            await asyncio.sleep(1)
    raise TimeoutError("server did not start")


class Tally:
    def __init__(self) -> None:
        self.errors: Counter = Counter()
        self.responses: Counter = Counter()
        self.audio_out_s = 0.0
        self.turns: list[dict[str, Any]] = []


async def session(url: str, index: int, deadline: float, clips: list[dict], tally: Tally,
                  turn_timeout: float) -> None:
    """Back-to-back turns until the deadline: typed and spoken turns alternate."""
    async with websockets.connect(url, max_size=None) as ws:
        json.loads(await ws.recv())
        n = 0
        while time.perf_counter() < deadline:
            spoken = n % 2 == 1
            t0 = time.perf_counter()
            if spoken:
                clip = clips[(index + n) % len(clips)]
                audio = np.concatenate([dev_clip(clip["file"]), np.zeros(RATE, np.float32)])
                sender = asyncio.create_task(_stream(ws, audio))
            else:
                text = QUESTIONS[(index + n) % len(QUESTIONS)]
                await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                    "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}}))
                await ws.send(json.dumps({"type": "response.create"}))
                sender = None
            status = None
            try:
                async with asyncio.timeout(turn_timeout):
                    async for message in ws:
                        event = json.loads(message)
                        if event["type"] == "error":
                            tally.errors[event["error"]["code"]] += 1
                        elif event["type"] == "response.output_audio.delta":
                            tally.audio_out_s += len(base64.b64decode(event["delta"])) / 2 / RATE
                        elif event["type"] == "response.done":
                            status = event["response"]["status"]
                            tally.responses[status] += 1
                            break
            except TimeoutError:
                status = "client_timeout"
            if sender is not None:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
            tally.turns.append({"session": index, "spoken": spoken, "status": status,
                                "seconds": round(time.perf_counter() - t0, 2), "t": round(t0, 1)})
            n += 1
        # what the server sends after the last response.done (avatar state) is read before closing
        try:
            async with asyncio.timeout(2):
                async for message in ws:
                    event = json.loads(message)
                    if event["type"] == "error":
                        tally.errors[event["error"]["code"]] += 1
        except TimeoutError:
            pass


async def _stream(ws: Any, audio: np.ndarray) -> None:
    t0 = time.perf_counter()
    for i, offset in enumerate(range(0, len(audio), STEP)):
        await asyncio.sleep(max(0.0, t0 + i * 0.1 - time.perf_counter()))
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(
            float_to_pcm16_bytes(audio[offset: offset + STEP])).decode()}))


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # N sessions may exceed the admission limit measured for 2 cores (2): the soak looks for leaks, not capacity
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FALANTE_LIMITS__MAX_SESSIONS": str(args.sessions)}
    proc = subprocess.Popen([sys.executable, "-m", "falante.cli", "serve", "--host", "127.0.0.1", "--port",
                             str(port), "--no-ui"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(args.log, "w") if args.log else subprocess.DEVNULL)
    try:
        startup = await wait_ready(base, proc)
        before = scrape(base)
        clips = [m for m in dev_manifest() if "turns" not in m and not m.get("noisy")]
        tally = Tally()
        samples: list[tuple[float, float]] = []
        t_start = time.perf_counter()
        deadline = t_start + args.minutes * 60

        async def sample() -> None:
            while True:
                samples.append((round(time.perf_counter() - t_start, 1), round(rss_mb(proc.pid), 1)))
                await asyncio.sleep(args.sample_s)

        sampler = asyncio.create_task(sample())
        url = f"ws://127.0.0.1:{port}/v1/realtime"
        await asyncio.gather(*(session(url, i, deadline, clips, tally, args.turn_timeout)
                               for i in range(args.sessions)))
        await asyncio.sleep(1.0)  # the server finishes counting closed sessions
        sampler.cancel()
        samples.append((round(time.perf_counter() - t_start, 1), round(rss_mb(proc.pid), 1)))
        after = scrape(base)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()

    def delta(prefix: str) -> dict[str, float]:
        b, a = _sum(before, prefix), _sum(after, prefix)
        return {k: round(v - b.get(k, 0.0), 3) for k, v in a.items() if round(v - b.get(k, 0.0), 3)}

    server_responses = {k.split('"')[1]: int(v) for k, v in delta("falante_responses_total").items()}
    server_errors = {k.split('"')[1]: int(v) for k, v in delta("falante_client_errors_total").items()}
    server_audio = sum(delta("falante_audio_out_seconds_total").values())
    seconds = [t["seconds"] for t in tally.turns if t["status"] == "completed"]
    half = [s for s in samples if s[0] >= args.minutes * 30]
    return {
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d %H:%M"), "sessions": args.sessions, "minutes": args.minutes,
        "startup_s": round(startup, 1),
        "rss_mb": {"start": samples[0][1], "end": samples[-1][1], "growth": round(samples[-1][1] - samples[0][1], 1),
                   "second_half_growth": round(half[-1][1] - half[0][1], 1) if len(half) > 1 else None,
                   "samples": samples},
        "turns": {"total": len(tally.turns), "spoken": sum(t["spoken"] for t in tally.turns),
                  "p50_s": round(statistics.median(seconds), 2) if seconds else None,
                  "p95_s": round(sorted(seconds)[int(0.95 * (len(seconds) - 1))], 2) if seconds else None,
                  "by_status": dict(Counter(t["status"] for t in tally.turns))},
        "client": {"responses": dict(tally.responses), "errors": dict(tally.errors),
                   "audio_out_s": round(tally.audio_out_s, 2)},
        "server_metrics": {"responses": server_responses, "errors": server_errors,
                           "audio_out_s": round(server_audio, 2)},
        "reconciled": {
            "responses": {k: server_responses.get(k, 0) - tally.responses.get(k, 0)
                          for k in set(server_responses) | set(tally.responses)},
            "errors": {k: server_errors.get(k, 0) - tally.errors.get(k, 0)
                       for k in set(server_errors) | set(tally.errors)},
            "audio_out_s": round(server_audio - tally.audio_out_s, 2)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--sample-s", type=float, default=5.0, help="RSS sampling period")
    parser.add_argument("--turn-timeout", type=float, default=300.0, help="a turn without response.done by then "
                        "counts as client_timeout")
    parser.add_argument("--log", type=Path, help="server stderr goes here")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    report = asyncio.run(soak(args))
    print(json.dumps({k: v for k, v in report.items() if k != "rss_mb"} | {
        "rss_mb": {k: v for k, v in report["rss_mb"].items() if k != "samples"}}, indent=1, ensure_ascii=False))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
