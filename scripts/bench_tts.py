"""TTS benchmark: load time, RSS, RTF, first-audio latency, timing alignment and the G2P round-trip comparison.

    .venv/bin/python scripts/bench_tts.py [--g2p espeak piper gruut] [--skip-g2p] [--json OUT.json]

Round trip = Kokoro speaks the dev set's written `text` → faster-whisper base (int8, pt, beam 5) → WER against
`text_spoken` (asr.wer rules). Figures are wall-clock on whatever else the machine is running: the load average
is printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from falante.config import KokoroSettings
from tts.kokoro import KokoroSynthesizer
from tts.timing import SIL, estimate_samples, speech_bounds, to_timings

DEV = Path(os.environ.get("FALANTE_DEV_SET", Path(__file__).resolve().parents[2] / "shared" / "data" / "ptbr-speech-dev"))
TEN_WORDS = "Olá, eu sou a Falante e posso ajudar você hoje."


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dev_sentences() -> list[tuple[str, str, str]]:
    """(text, text_spoken, voice) for the single Kokoro clips of the dev set (one per sentence)."""
    rows, seen = [], set()
    for line in (DEV / "manifest.jsonl").read_text().splitlines():
        item = json.loads(line)
        if "turns" in item or item["text"] in seen or not item["voice"].startswith(("jf_", "jm_")):
            continue
        seen.add(item["text"])
        rows.append((item["text"], item["text_spoken"], item["voice"]))
    return rows


async def speak(tts: KokoroSynthesizer, text: str, voice: str | None = None):
    """(audio, chunks, first-chunk latency s, total s)."""
    start = time.perf_counter()
    first, chunks = None, []
    async for chunk in tts.synthesize(text, voice=voice):
        first = first if first is not None else time.perf_counter() - start
        chunks.append(chunk)
    audio = np.concatenate([c.audio for c in chunks]) if chunks else np.zeros(0, np.float32)
    return audio, chunks, first, time.perf_counter() - start


def whisper():
    from faster_whisper import WhisperModel

    from asr.resolve import resolve_model

    return WhisperModel(resolve_model("bundled:whisper-base"), device="cpu", compute_type="int8", cpu_threads=2)


def transcribe(model, audio: np.ndarray) -> str:
    from falante.audio import resample

    segments, _ = model.transcribe(resample(audio, 24_000, 16_000), language="pt", beam_size=5,
                                   condition_on_previous_text=False)
    return " ".join(s.text.strip() for s in segments)


def alignment_error(tts: KokoroSynthesizer, chunks) -> dict:
    """Estimator vs the model's own durations (boundary error), and both vs energy-based speech onset/offset."""
    errors, onset_model, onset_est = [], [], []
    for chunk in chunks:
        piece = tts._plan(chunk.text)[0]
        symbols = [SIL, *piece.symbols, SIL]
        est = to_timings(symbols, estimate_samples(symbols, chunk.audio, 24_000), len(chunk.audio), 2400)
        start, end = speech_bounds(chunk.audio, 24_000)
        model_voiced = [t for t in chunk.phonemes if t.phoneme != SIL]
        est_voiced = [t for t in est if t.phoneme != SIL]
        onset_model += [abs(model_voiced[0].start_sample - start), abs(model_voiced[-1].end_sample - end)]
        onset_est += [abs(est_voiced[0].start_sample - start), abs(est_voiced[-1].end_sample - end)]
        if len(model_voiced) == len(est_voiced):
            errors += [abs(a.start_sample - b.start_sample) for a, b in zip(model_voiced, est_voiced)]
    ms = 1000 / 24_000
    return {
        "estimator_vs_model_boundary_ms_median": float(np.median(errors) * ms) if errors else None,
        "estimator_vs_model_boundary_ms_p90": float(np.percentile(errors, 90) * ms) if errors else None,
        "model_vs_energy_onset_offset_ms_median": float(np.median(onset_model) * ms),
        "estimator_vs_energy_onset_offset_ms_median": float(np.median(onset_est) * ms),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--g2p", nargs="+", default=["espeak", "piper", "gruut"])
    parser.add_argument("--skip-g2p", action="store_true", help="only speed/latency/memory")
    parser.add_argument("--voice-wer", nargs="*", default=[], metavar="VOICE",
                        help="round-trip WER of every dev sentence spoken by each of these voices (espeak G2P)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out: dict = {"loadavg_start": os.getloadavg()}

    rss0 = rss_mb()
    start = time.perf_counter()
    tts = KokoroSynthesizer(KokoroSettings(threads=args.threads))
    await asyncio.to_thread(tts.load)
    out["load_s"] = time.perf_counter() - start
    out["model_durations"] = tts.has_durations
    await speak(tts, "Aquecendo o modelo.")  # first run allocates arenas; not what a session sees
    latencies = []
    for _ in range(3):
        audio, chunks, first, total = await speak(tts, TEN_WORDS)
        latencies.append(first)
    out["first_audio_10_words_s"] = float(np.median(latencies))
    rows = dev_sentences()
    synth_s = audio_s = 0.0
    all_chunks = []
    cpu0 = time.process_time()
    for text, _, voice in rows:
        audio, chunks, _, total = await speak(tts, text, voice)
        synth_s += total
        audio_s += len(audio) / 24_000
        all_chunks += chunks
    out["rtf"] = synth_s / audio_s
    out["rtf_cpu_seconds_per_core"] = (time.process_time() - cpu0) / args.threads / audio_s
    out["audio_s"] = audio_s
    out["rss_mb"] = rss_mb()
    out["rss_growth_mb"] = out["rss_mb"] - rss0
    out["alignment"] = alignment_error(tts, all_chunks)
    print(json.dumps(out, indent=2), flush=True)

    if not args.skip_g2p:
        from asr.wer import corpus_wer

        model = whisper()
        refs = [spoken for _, spoken, _ in rows]
        out["g2p"] = {}
        for engine in args.g2p:
            tts.settings = tts.settings.model_copy(update={"g2p": engine})
            hyps = []
            for text, _, voice in rows:
                audio, *_ = await speak(tts, text, voice)
                hyps.append(transcribe(model, audio))
            out["g2p"][engine] = {"wer": corpus_wer(refs, hyps), "hypotheses": hyps}
            print(engine, "WER", round(out["g2p"][engine]["wer"], 3), flush=True)
    if args.voice_wer:
        from asr.wer import corpus_wer

        model = whisper()
        tts.settings = tts.settings.model_copy(update={"g2p": "espeak"})
        out["voice_wer"] = {}
        for voice in args.voice_wer:
            hyps = [transcribe(model, (await speak(tts, text, voice))[0]) for text, _, _ in rows]
            out["voice_wer"][voice] = corpus_wer([spoken for _, spoken, _ in rows], hyps)
            print(voice, "WER", round(out["voice_wer"][voice], 3), flush=True)
    out["loadavg_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, ensure_ascii=False))
    print(json.dumps({k: v for k, v in out.items() if k != "g2p"}, indent=2))
    for engine, res in out.get("g2p", {}).items():
        print(f"G2P {engine}: round-trip WER {res['wer']:.3f}")


if __name__ == "__main__":
    asyncio.run(main())
