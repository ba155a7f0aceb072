"""ASR benchmark on the pt-BR dev set: load time, RSS, RTF, streaming WER, final latency after speech_stopped.

    .venv/bin/python scripts/bench_asr.py                 # everything, dev clips fed in real time (~4 min)
    .venv/bin/python scripts/bench_asr.py --fast          # no real-time pass (RTF, WER, load, RSS only)
    .venv/bin/python scripts/bench_asr.py --json out.json

Why real time: the final's latency depends on the decode overlapping the end-of-turn silence (speculative final),
which only happens when audio arrives at the pace a microphone delivers it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asr.listener import Listener
from asr.vad import SileroVadModel
from asr.wer import corpus_wer
from asr.whisper import FasterWhisperRecognizer
from falante.audio import read_wav
from falante.config import FasterWhisperSettings
from falante.types import SpeechStopped, Transcript

DEV = ROOT.parent / "shared" / "data" / "ptbr-speech-dev"
SR = 16_000


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def stream(listener: Listener, audio, realtime: bool):
    loop = asyncio.get_running_loop()

    async def chunks():
        t0 = loop.time()
        for i in range(0, len(audio), 320):  # 20 ms, like a browser worklet
            if realtime:
                await asyncio.sleep(max(0.0, t0 + i / SR - loop.time()))
            yield audio[i : i + 320]

    return [(loop.time(), ev) async for ev in listener.events(chunks())]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast", action="store_true", help="skip the real-time latency pass")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    items = [json.loads(x) for x in (DEV / "manifest.jsonl").read_text().splitlines() if x.strip()]
    clips = {m["file"]: read_wav(DEV / m["file"])[0] for m in items}
    settings = FasterWhisperSettings()
    out: dict[str, object] = {"model": settings.model, "compute_type": settings.compute_type,
                              "cpu_threads": settings.cpu_threads, "beam_size": settings.beam_size}

    base_rss = rss_mb()
    recognizer, vad = FasterWhisperRecognizer(settings), SileroVadModel()
    started = time.perf_counter()
    await asyncio.to_thread(recognizer.load)
    vad.load()
    out["load_s"] = round(time.perf_counter() - started, 2)
    out["rss_mb_after_load"] = round(rss_mb(), 1)
    out["rss_mb_model"] = round(rss_mb() - base_rss, 1)

    # RTF: whole clips through the recognizer (finals at the configured beam, greedy partials)
    for label, partial in (("rtf_final_beam", False), ("rtf_partial_greedy", True)):
        spent = 0.0
        for audio in clips.values():
            t = time.perf_counter()
            await recognizer.transcribe(audio, partial=partial)
            spent += time.perf_counter() - t
        out[label] = round(spent / (sum(len(a) for a in clips.values()) / SR), 3)
        print(f"{label}: {out[label]}", flush=True)

    # streaming WER: Silero VAD → Listener → finals, fed as fast as possible
    single = [m for m in items if "turns" not in m and not m["noisy"]]
    hyps = {}
    for m in items:
        events = await stream(Listener(recognizer, vad, settings.model_copy(update={"partials": False})),
                              clips[m["file"]], realtime=False)
        hyps[m["file"]] = " ".join(ev.text for _, ev in events if isinstance(ev, Transcript) and ev.final)
    out["streaming_wer_single_clean"] = round(corpus_wer([m["text_spoken"] for m in single],
                                                         [hyps[m["file"]] for m in single]), 3)
    out["streaming_wer_all"] = round(corpus_wer([m["text_spoken"] for m in items], [hyps[m["file"]] for m in items]), 3)
    print(f"streaming WER single/all: {out['streaming_wer_single_clean']} / {out['streaming_wer_all']}", flush=True)

    if not args.fast:  # real-time pass: partial timing and final latency after speech_stopped
        latencies, five_s, first_partial, with_partial, long_clips = [], [], [], 0, 0
        for m in items:
            events = await stream(Listener(recognizer, vad, settings), clips[m["file"]], realtime=True)
            stops = [t for t, ev in events if isinstance(ev, SpeechStopped)]
            finals = [t for t, ev in events if isinstance(ev, Transcript) and ev.final]
            latencies += [f - s for s, f in zip(stops, finals)]
            if "turns" not in m and 4.0 <= m["speech_end_s"] - m["speech_start_s"] <= 6.0:
                five_s += [f - s for s, f in zip(stops, finals)]
            if m["duration_s"] > 2.0 and stops:
                long_clips += 1
                early = [t for t, ev in events if isinstance(ev, Transcript) and not ev.final and t < stops[0]]
                with_partial += bool(early)
                if early:
                    first_partial.append(early[0] - events[0][0])
            print(f"  {m['file']}: final after stop {[round(f - s, 3) for s, f in zip(stops, finals)]}", flush=True)
        out["final_latency_s"] = {"n": len(latencies), "p50": round(pct(latencies, 0.5), 3),
                                  "p95": round(pct(latencies, 0.95), 3), "max": round(max(latencies), 3),
                                  "share_le_0.3s": round(sum(x <= 0.3 for x in latencies) / len(latencies), 2)}
        if five_s:  # the target: <= 0.3 s for ~5 s utterances
            out["final_latency_5s_speech_s"] = {"n": len(five_s), "p50": round(pct(five_s, 0.5), 3),
                                                "max": round(max(five_s), 3)}
        out["partials_before_stop"] = f"{with_partial}/{long_clips} clips > 2 s"
        if first_partial:
            out["first_partial_after_speech_started_s_median"] = round(statistics.median(first_partial), 3)
    out["rss_mb_end"] = round(rss_mb(), 1)
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    recognizer.close()


if __name__ == "__main__":
    asyncio.run(main())
