"""Load benchmark: how many simultaneous callers one falante server holds at an acceptable latency.

Not a test: it reports, it does not assert. For each N, N simulated callers each open a session and speak dev-set
clips into a live microphone (100 ms chunks in real time, silence between and after the words, as a microphone
sends), wait for the reply to finish, pause a few seconds (seeded), and speak the next clip. Per N: p50/p95 voice
to voice (server's falante.response.metrics and the client's first reply audio after the clip's speech end), the
per-stage latencies and their growth over the one-caller run (queueing), errors, the server's CPU (cores) and RSS.
The capacity is the largest N whose p95 voice to voice stays within 2x the single-caller p95 with no errors.

    .venv/bin/python scripts/bench_load.py --llm llama-cpp --sessions 1 2 4 6 8 --turns 4 --out docs/bench/load_llamacpp.json
    .venv/bin/python scripts/bench_load.py --llm vllm --sessions 1 2 4 6 8 --turns 4 --out docs/bench/load_vllm.json
    .venv/bin/python scripts/bench_load.py --plot docs/bench/load.png docs/bench/load_llamacpp.json docs/bench/load_vllm.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import random
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from falante.audio import float_to_pcm16_bytes
from tests.conftest import dev_clip, dev_manifest

RATE = 24_000
CHUNK_MS = 100
STAGES = ("llm_first_token", "llm_first_sentence", "tts_first_audio", "voice_to_voice")
PROM_STAGES = ("endpoint", "asr_final")  # not in falante.response.metrics: from /metrics (mean per run)


def pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


class Server:
    """`falante serve` in a subprocess, so its CPU time and RSS are its own."""

    def __init__(self, llm: str, max_sessions: int, extra_env: dict[str, str]) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**os.environ, "FALANTE_LLM__KIND": llm, "FALANTE_LIMITS__MAX_SESSIONS": str(max_sessions),
               **extra_env}
        self.log = open(ROOT / "out" / f"bench_load_server_{llm}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "falante.cli", "serve", "--no-ui", "--host", "127.0.0.1",
                                      "--port", str(self.port)], cwd=ROOT, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.ps = psutil.Process(self.proc.pid)

    @property
    def base(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 900) -> float:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}); see {self.log.name}")
            try:
                with urllib.request.urlopen(f"http://{self.base}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return time.perf_counter() - t0
            except OSError:
                pass
            time.sleep(1)
        raise TimeoutError("server not ready")

    def stage_means(self) -> dict[str, tuple[float, float]]:
        """(sum, count) of the Prometheus stage histograms."""
        text = urllib.request.urlopen(f"http://{self.base}/metrics", timeout=5).read().decode()
        out = {}
        for stage in PROM_STAGES:
            s = re.search(rf'falante_stage_latency_seconds_sum{{stage="{stage}"}} ([0-9.e+-]+)', text)
            c = re.search(rf'falante_stage_latency_seconds_count{{stage="{stage}"}} ([0-9.e+-]+)', text)
            out[stage] = (float(s.group(1)) if s else 0.0, float(c.group(1)) if c else 0.0)
        return out

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


async def caller(url: str, index: int, clips: list[dict], turns: int, seed: int, turn_timeout: float) -> dict[str, Any]:
    """One simulated caller: a live microphone (real-time chunks, silence when not speaking) for `turns` turns."""
    rng = random.Random(seed * 1000 + index)
    result: dict[str, Any] = {"turns": [], "errors": []}
    silence = np.zeros(RATE * CHUNK_MS // 1000, np.float32)
    async with websockets.connect(url, max_size=None, open_timeout=60) as ws:
        created = json.loads(await ws.recv())
        if created["type"] != "session.created":
            result["errors"].append(f"no session: {created}")
            return result
        state: dict[str, Any] = {"done": asyncio.Event(), "first_audio": None, "metrics": None, "status": None}

        async def reader() -> None:
            async for raw in ws:
                event = json.loads(raw)
                kind = event["type"]
                if kind == "error":
                    result["errors"].append(event["error"]["code"])
                elif kind == "response.output_audio.delta" and state["first_audio"] is None:
                    state["first_audio"] = time.perf_counter()
                elif kind == "falante.response.metrics":
                    state["metrics"] = event
                elif kind == "response.done":
                    state["status"] = event["response"]["status"]
                    state["done"].set()

        read_task = asyncio.create_task(reader())
        clock = time.perf_counter()

        async def send(chunk: np.ndarray) -> None:
            nonlocal clock
            await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                      "audio": base64.b64encode(float_to_pcm16_bytes(chunk)).decode()}))
            clock += len(chunk) / RATE
            await asyncio.sleep(max(0.0, clock - time.perf_counter()))  # real time: a microphone, not a file

        try:
            await asyncio.sleep(rng.uniform(0, 2.0))  # callers do not all start in the same instant
            clock = time.perf_counter()
            for turn in range(turns):
                clip = clips[(index + turn * 7) % len(clips)]
                audio = dev_clip(clip["file"], RATE)
                state.update(done=asyncio.Event(), first_audio=None, metrics=None, status=None)
                step = len(silence)
                t_clip = time.perf_counter()
                for i in range(0, len(audio), step):
                    await send(audio[i:i + step])
                speech_end = t_clip + clip["speech_end_s"]
                deadline = time.perf_counter() + turn_timeout
                while not state["done"].is_set() and time.perf_counter() < deadline:
                    await send(silence)  # the microphone stays open while the avatar answers
                if not state["done"].is_set():
                    result["errors"].append("timeout")
                    break
                latency = {k: v / 1000 for k, v in (state["metrics"] or {}).get("latency_ms", {}).items()}
                client_v2v = state["first_audio"] - speech_end if state["first_audio"] else None
                result["turns"].append({"clip": clip["file"], "status": state["status"], "latency_s": latency,
                                        "client_voice_to_voice_s": client_v2v})
                if state["status"] != "completed":
                    result["errors"].append(f"response {state['status']}")
                for _ in range(int(rng.uniform(2.0, 5.0) * 1000 / CHUNK_MS)):  # the caller listens, thinks
                    await send(silence)
        finally:
            read_task.cancel()
    return result


async def run_level(server: Server, n: int, clips: list[dict], turns: int, seed: int,
                    turn_timeout: float) -> dict[str, Any]:
    before = server.stage_means()
    cpu0, t0 = server.ps.cpu_times(), time.perf_counter()
    rss_peak = 0
    stop = asyncio.Event()

    async def sample_rss() -> None:
        nonlocal rss_peak
        while not stop.is_set():
            rss_peak = max(rss_peak, sum(p.memory_info().rss for p in [server.ps, *server.ps.children(True)]))
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample_rss())
    url = f"ws://{server.base}/v1/realtime?extensions=falante"  # falante.response.metrics
    results = await asyncio.gather(*(caller(url, i, clips, turns, seed, turn_timeout) for i in range(n)),
                                   return_exceptions=True)
    stop.set()
    await sampler
    wall = time.perf_counter() - t0
    cpu1 = server.ps.cpu_times()
    after = server.stage_means()
    turns_done = [t for r in results if isinstance(r, dict) for t in r["turns"]]
    errors = [e for r in results if isinstance(r, dict) for e in r["errors"]]
    errors += [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    level: dict[str, Any] = {"sessions": n, "turns": len(turns_done), "errors": errors, "wall_s": round(wall, 1),
                             "cpu_cores": round((cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall, 2),
                             "rss_peak_mib": round(rss_peak / 2**20)}
    for stage in STAGES:
        values = [t["latency_s"][stage] for t in turns_done if stage in t["latency_s"]]
        level[stage] = {"p50": pct(values, 50), "p95": pct(values, 95)}
    values = [t["client_voice_to_voice_s"] for t in turns_done if t["client_voice_to_voice_s"] is not None]
    level["client_voice_to_voice"] = {"p50": pct(values, 50), "p95": pct(values, 95)}
    for stage in PROM_STAGES:
        ds, dc = after[stage][0] - before[stage][0], after[stage][1] - before[stage][1]
        level[stage] = {"mean": ds / dc if dc else None}
    return level


def capacity(levels: list[dict]) -> dict[str, Any]:
    """Largest N with p95 voice to voice <= 2x the single-session p95 and no errors; per-stage queueing vs N=1."""
    base = next((lv for lv in levels if lv["sessions"] == 1), None)
    if base is None or base["voice_to_voice"]["p95"] is None:
        return {"max_sessions": None, "why": "no single-session run"}
    limit = 2 * base["voice_to_voice"]["p95"]
    best = 0
    for lv in sorted(levels, key=lambda x: x["sessions"]):
        p95 = lv["voice_to_voice"]["p95"]
        if lv["errors"] or p95 is None or p95 > limit:
            break
        best = lv["sessions"]
        for stage in (*STAGES, *PROM_STAGES):
            key = "p50" if stage in STAGES else "mean"
            if lv[stage].get(key) is not None and base[stage].get(key) is not None:
                lv.setdefault("queueing_s", {})[stage] = round(lv[stage][key] - base[stage][key], 3)
    return {"max_sessions": best, "p95_limit_s": limit}


def plot(paths: list[Path], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for path in paths:
        data = json.loads(path.read_text())
        ns = [lv["sessions"] for lv in data["levels"]]
        for q, style in (("p50", "-o"), ("p95", "--s")):
            ax.plot(ns, [lv["voice_to_voice"][q] for lv in data["levels"]], style, label=f"{data['llm']} {q}")
        limit = data["capacity"].get("p95_limit_s")
        if limit:
            ax.axhline(limit, linestyle=":", color="grey")
            ax.annotate(f"2x single p95 ({data['llm']})", (ns[0], limit), fontsize=7, color="grey")
    ax.set_xlabel("simultaneous callers (sessions)")
    ax.set_ylabel("voice to voice (s)")
    ax.set_title(f"falante on one server: {os.cpu_count()} cores")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    clips = [c for c in dev_manifest() if not c.get("noisy")]
    extra = dict(item.split("=", 1) for item in args.env)
    (ROOT / "out").mkdir(exist_ok=True)
    server = Server(args.llm, max(args.sessions), extra)
    try:
        ready_s = server.wait_ready()
        # one warm-up turn so that first-request compilation does not count against N=1
        await run_level(server, 1, clips, 1, args.seed + 99, args.turn_timeout)
        levels = []
        for n in args.sessions:
            level = await run_level(server, n, clips, args.turns, args.seed, args.turn_timeout)
            levels.append(level)
            print(json.dumps({k: level[k] for k in ("sessions", "turns", "errors", "cpu_cores", "rss_peak_mib")}
                             | {"v2v": level["voice_to_voice"]}), flush=True)
    finally:
        server.stop()
    return {"llm": args.llm, "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}",
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "turns_per_caller": args.turns,
            "startup_s": round(ready_s, 1), "env": extra, "levels": levels, "capacity": capacity(levels)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llm", default="llama-cpp", choices=["llama-cpp", "vllm", "openai"])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 2, 4, 6, 8])
    parser.add_argument("--turns", type=int, default=4, help="turns per caller per level")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--turn-timeout", type=float, default=120.0, help="a reply later than this is an error")
    parser.add_argument("--env", nargs="*", default=[], help="extra FALANTE_…=value for the server")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--plot", type=Path, help="write a PNG from the given JSON files instead of running")
    parser.add_argument("inputs", type=Path, nargs="*")
    args = parser.parse_args()
    if args.plot:
        plot(args.inputs, args.plot)
        return
    if 1 not in args.sessions:
        args.sessions = [1, *args.sessions]
    report = asyncio.run(bench(args))
    print(json.dumps(report["capacity"]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
