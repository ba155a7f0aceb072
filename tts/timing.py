"""Phoneme timings for the avatar, aligned to a chunk's samples.

Two sources: the model's own per-token durations (Kokoro's predicted frames, Piper's alignment output) — exact —
or `estimate_samples`, a class-based estimate (vowels long, stressed vowels longer, pauses at punctuation) scaled to
the audible part of the audio and snapped to energy valleys. Both end in `to_timings`, which merges IPA modifiers
into their phoneme and silences into "sil" (openfacefx's silence symbol), so the avatar gets one entry per sound.
"""

from __future__ import annotations

import numpy as np

from falante.types import PhonemeTiming

__all__ = ["SIL", "estimate_samples", "speech_bounds", "to_timings", "trim_to_energy"]

SIL = "sil"
_PAUSE = set(" ,.;:!?—…\"()“”") | {SIL, ""}
_PRE_MODIFIERS = set("ˈˌ")  # belong to the following phoneme
_POST_MODIFIERS = set("\u0303ːʲʰ\u032f\u0361")  # belong to the preceding phoneme
_VOWELS = set("aeiouɐɑɒæɔəɛɜɪʊʌyøœɨɯɤ")
_WEIGHTS = {" ": 0.6, ",": 3.0, ";": 3.5, ":": 3.0, ".": 4.0, "!": 4.0, "?": 4.0, "…": 4.0, "—": 3.0}


def to_timings(symbols: list[str], samples: list[int] | np.ndarray, total: int, min_pause: int = 0,
               ) -> tuple[PhonemeTiming, ...]:
    """Per-symbol sample counts → merged, monotonic PhonemeTimings covering exactly [0, total).

    A word space shorter than `min_pause` samples is not a pause (connected speech): the previous sound keeps it.
    """
    if len(symbols) != len(samples):
        raise ValueError(f"{len(symbols)} symbols but {len(samples)} durations")
    counts = np.maximum(np.asarray(samples, dtype=np.float64), 0.0)
    if total <= 0:
        return ()
    if counts.sum() <= 0:
        return (PhonemeTiming(SIL, 0, total),)
    # Integer edges from the cumulative sum, rescaled so the last edge is exactly `total`.
    edges = np.rint(np.concatenate([[0.0], np.cumsum(counts)]) * (total / counts.sum())).astype(np.int64)
    merged: list[list] = []  # [phoneme, start, end]
    pending_prefix, pending_start = "", None  # a stress mark's time belongs to the sound it marks
    for sym, start, end in zip(symbols, edges[:-1], edges[1:]):
        start, end = int(start), int(end)
        if sym in _PRE_MODIFIERS:
            pending_prefix += sym
            pending_start = start if pending_start is None else pending_start
            continue
        if pending_start is not None and sym not in _PAUSE:
            start, pending_start = pending_start, None
        if sym in _POST_MODIFIERS and merged and merged[-1][0] != SIL:
            merged[-1][0] += sym
            merged[-1][2] = end
            continue
        if sym == " " and end - start < min_pause and merged and merged[-1][0] != SIL:
            merged[-1][2] = end
            continue
        if sym in _PAUSE:
            if merged and merged[-1][0] == SIL:
                merged[-1][2] = end
            elif end > start or not merged:
                merged.append([SIL, start, end])
            continue
        merged.append([pending_prefix + sym, start, end])
        pending_prefix = ""
    if pending_start is not None and merged:  # a stress mark with nothing after it
        merged[-1][2] = total
    merged = [m for m in merged if m[2] > m[1]]
    if not merged:
        return (PhonemeTiming(SIL, 0, total),)
    merged[0][1], merged[-1][2] = 0, total  # cover the whole chunk
    for prev, cur in zip(merged, merged[1:]):  # close gaps left by dropped zero-length entries
        cur[1] = prev[2]
    return tuple(PhonemeTiming(p, s, e) for p, s, e in merged)


def _envelope(audio: np.ndarray, hop: int) -> np.ndarray:
    n = len(audio) // hop
    if n == 0:
        return np.zeros(0)
    frames = np.asarray(audio[: n * hop], dtype=np.float64).reshape(n, hop)
    return np.sqrt((frames**2).mean(axis=1) + 1e-12)


def speech_bounds(audio: np.ndarray, sample_rate: int, threshold_db: float = -35.0) -> tuple[int, int]:
    """(first, last) sample of audible speech: frames within `threshold_db` of the loudest 10 ms frame."""
    hop = max(1, sample_rate // 100)
    env = _envelope(audio, hop)
    if env.size == 0 or env.max() <= 1e-6:
        return 0, 0
    loud = np.nonzero(20 * np.log10(env / env.max()) > threshold_db)[0]
    return int(loud[0] * hop), int(min(len(audio), (loud[-1] + 1) * hop))


def _weight(sym: str, stressed: bool) -> float:
    if sym in _WEIGHTS:
        return _WEIGHTS[sym]
    if sym in _PRE_MODIFIERS or sym in _POST_MODIFIERS:
        return 0.0
    if sym in _VOWELS:
        return 1.8 if stressed else 1.2
    return 0.9  # consonants


def estimate_samples(symbols: list[str], audio: np.ndarray, sample_rate: int) -> list[int]:
    """Estimated sample count per symbol for audio whose model gave no durations.

    The symbols share the audible span by class weight; leading/trailing silence goes to SIL pads at the ends
    (pass symbols wrapped in SIL, like Kokoro's BOS/EOS tokens), else to the edge symbols; each
    interior pause is then moved to the quietest 10 ms frame near its estimate (pauses are where energy drops).
    """
    n = len(symbols)
    if n == 0:
        return []
    start, end = speech_bounds(audio, sample_rate)
    if end <= start:
        start, end = 0, len(audio)
    stressed, weights = False, []
    for sym in symbols:
        if sym in _PRE_MODIFIERS:
            stressed = True
        weights.append(_weight(sym, stressed))
        if sym in _VOWELS:
            stressed = False
    w = np.asarray(weights, dtype=np.float64)
    lead = 1 if n > 2 and symbols[0] == SIL else 0  # SIL pads at the ends take the silence around speech
    tail = 1 if n > 2 and symbols[-1] == SIL else 0
    if not lead:
        start = 0
    if not tail:
        end = len(audio)
    inner = w[lead:n - tail]
    if inner.sum() <= 0:
        inner[:] = 1.0
    edges = np.concatenate([[0.0] * lead, start + np.concatenate([[0.0], np.cumsum(inner)]) / inner.sum()
                            * (end - start), [float(len(audio))] * tail])
    hop = max(1, sample_rate // 100)
    env = _envelope(audio, hop)
    window = int(0.08 * sample_rate)
    for i, sym in enumerate(symbols):
        if sym in _WEIGHTS and sym != " " and 0 < i < n - 1 and env.size:
            centre = (edges[i] + edges[i + 1]) / 2
            lo, hi = int(max(edges[i - 1], centre - window)), int(min(edges[i + 2], centre + window))
            if hi - lo > hop:
                f_lo, f_hi = lo // hop, max(lo // hop + 1, min(env.size, hi // hop))
                quiet = (f_lo + int(np.argmin(env[f_lo:f_hi]))) * hop + hop / 2
                shift = quiet - centre
                edges[i] += shift
                edges[i + 1] += shift
    edges = np.maximum.accumulate(np.clip(edges, 0, len(audio)))
    edges[0], edges[-1] = 0, len(audio)
    return [int(b - a) for a, b in zip(np.rint(edges[:-1]), np.rint(edges[1:]))]


def trim_to_energy(timings: tuple[PhonemeTiming, ...], audio: np.ndarray, sample_rate: int,
                   threshold_db: float = -35.0, keep_ms: float = 50.0) -> tuple[PhonemeTiming, ...]:
    """Give the silent tail (head) of a sound next to a pause to that pause.

    Why: duration predictors (Kokoro's) let a phrase-final vowel "own" the fade-out before a pause — up to half a
    second of silence during which the avatar's mouth would stay open.
    """
    hop = max(1, sample_rate // 100)
    env = _envelope(audio, hop)
    if env.size == 0 or env.max() <= 1e-6:
        return timings
    loud = 20 * np.log10(env / env.max() + 1e-12) > threshold_db
    keep = int(keep_ms * sample_rate / 1000)
    out = [[t.phoneme, t.start_sample, t.end_sample] for t in timings]
    for i, (ph, start, end) in enumerate(out):
        if ph == SIL:
            continue
        f0, f1 = start // hop, min(env.size, -(-end // hop))
        frames = np.nonzero(loud[f0:f1])[0]
        if i + 1 < len(out) and out[i + 1][0] == SIL:
            last = (f0 + frames[-1] + 1) * hop if frames.size else start
            new_end = max(min(end, last), start + keep)
            if new_end < end:
                out[i][2] = out[i + 1][1] = new_end
        if i > 0 and out[i - 1][0] == SIL:
            first = (f0 + frames[0]) * hop if frames.size else end
            new_start = min(max(out[i][1], first), out[i][2] - keep)
            if new_start > out[i][1]:
                out[i][1] = out[i - 1][2] = new_start
    return tuple(PhonemeTiming(p, s, e) for p, s, e in out if e > s)
