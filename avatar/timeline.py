"""Turn TTS phoneme timings into avatar frames stamped on the response's output-audio clock.

One `Timeline` per response. Why the sample clock: the browser plays audio and applies the frame whose `sample`
matches its playback position, so sync holds however late or bursty the network is (peers that send video drift).

Coarticulation (Cohen & Massaro dominance functions): every phoneme segment has a dominance that is flat inside
the segment and decays exponentially outside it (time constant from `smoothing_ms`); a frame is the dominance-
weighted average of the segments' viseme targets. Lips (p b m f v) dominate more, so closures are still reached;
the gaps on the clock that no phoneme covers are silence, so the mouth rests in pauses. Segments from earlier
chunks are kept, so the first frames of a chunk blend with the end of the previous one (continuity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from falante.types import AvatarFrame, SpeechChunk

from .expression import EXPRESSION_BLENDSHAPES, EXPRESSIONS, expression_for
from .visemes import SILENCE, VISEME_INDEX, VISEMES, blendshapes_for, is_vowel, split_ipa, viseme_weights

_REST = np.eye(len(VISEMES), dtype=np.float64)[0]
_LIP_VISEMES = {VISEME_INDEX["PP"], VISEME_INDEX["FF"]}
_TONGUE_VISEMES = {VISEME_INDEX[v] for v in ("TH", "DD", "kk", "nn")}
_MERGE_GAP_S = 0.03  # gaps between phonemes shorter than this are not pauses
_KEEP_S = 1.0  # history kept for coarticulation across chunks
_MAX_ADVANCE_S = 0.15  # how far a phoneme may be moved earlier to meet its sound
_SILENT_RUN_S = 0.09  # silence this long inside a chunk is a pause (stop closures are shorter)


@dataclass
class _Segment:
    start: float  # seconds on the response clock
    end: float
    target: np.ndarray  # 15 viseme weights
    alpha: float  # dominance strength


def _alpha(target: np.ndarray) -> float:
    top = int(np.argmax(target))
    if top in _LIP_VISEMES:
        return 1.6
    if top in _TONGUE_VISEMES:
        return 0.6
    return 1.0


def _silent_runs(audio: np.ndarray, rate: int, min_run_s: float = _SILENT_RUN_S) -> list[tuple[float, float]]:
    """Runs (seconds from the chunk start) where the audio is > 35 dB below its peak for at least `min_run_s`."""
    hop = max(1, int(0.01 * rate))
    n = len(audio) // hop
    if n == 0:
        return []
    rms = np.sqrt(np.mean(np.asarray(audio[: n * hop], dtype=np.float64).reshape(n, hop) ** 2, axis=1))
    if float(rms.max()) < 1e-4:
        return []  # no signal at all (timings-only chunk): trust the timings
    quiet = rms < max(float(rms.max()) * 0.0178, 1e-4)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    runs = [(a * hop / rate, b * hop / rate) for a, b in zip(edges[::2], edges[1::2])]
    return [(a, b) for a, b in runs if b - a >= min_run_s]


def _gate_by_energy(pieces: list[tuple[str, float, float]], chunk: SpeechChunk,
                    start: float) -> list[tuple[str, float, float]]:
    """Cut phonemes where the audio is silent: TTS durations often stretch the last vowel over the trailing pause
    (Kokoro gives "dia" a 0.5 s final "ɐ"), which would leave the mouth open after the sound has stopped."""
    runs = [(start + a, start + b) for a, b in _silent_runs(chunk.audio, chunk.sample_rate)]
    if not runs:
        return pieces
    pieces = _advance_onsets(pieces, runs)
    out = []
    for sym, a, b in pieces:
        segs = [(a, b)]
        for ra, rb in runs:
            segs = [piece for sa, sb in segs
                    for piece in ((sa, min(sb, ra)), (max(sa, rb), sb)) if piece[1] - piece[0] > 1e-6]
        out += [(sym, sa, sb) for sa, sb in segs]
    return out


def _advance_onsets(pieces: list[tuple[str, float, float]],
                    runs: list[tuple[float, float]]) -> list[tuple[str, float, float]]:
    """Start a phoneme that follows a pause where its sound starts: TTS pause durations often overrun the onset."""
    out = list(pieces)
    for i, (sym, a, b) in enumerate(out):
        if sym == SILENCE or (i and out[i - 1][0] != SILENCE and a - out[i - 1][2] < _MERGE_GAP_S):
            continue
        onset = max((rb for ra, rb in runs if ra < a and a - _MAX_ADVANCE_S <= rb < a), default=None)
        if onset is None:
            continue
        out[i] = (sym, onset, b)
        if i and out[i - 1][0] == SILENCE:
            prev = out[i - 1]
            out[i - 1] = (prev[0], prev[1], max(prev[1], min(prev[2], onset)))
    return out


class Timeline:
    """Stateful frame generator for ONE response: feed chunks in order with `frames_for`, then `finish`."""

    def __init__(self, fps: int = 30, sample_rate: int = 24_000, smoothing_ms: float = 40.0,
                 expression: str = "neutral") -> None:
        if not 1 <= fps <= 120:
            raise ValueError(f"fps must be in 1..120, got {fps}")
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if smoothing_ms < 0:
            raise ValueError(f"smoothing_ms must be >= 0, got {smoothing_ms}")
        self.fps, self.sample_rate, self.smoothing_ms = fps, sample_rate, float(smoothing_ms)
        self.expression = self._check_expression(expression)
        self._segments: list[_Segment] = []
        self._covered = 0.0  # seconds of the clock described by segments so far
        self._next_frame = 0  # index of the next frame on the fps grid
        self._finished = False

    # ------------------------------------------------------------------------------------------ API
    def frame_sample(self, index: int) -> int:
        """Sample of grid frame `index` (rounded, so the grid never drifts from the audio clock)."""
        return round(index * self.sample_rate / self.fps)

    def frames_for(self, chunk: SpeechChunk, start_sample: int, out_rate: int | None = None, *,
                   expression: str | None = None) -> list[AvatarFrame]:
        """Frames for the grid samples in [previous end, chunk end); `start_sample` is on the output clock."""
        if self._finished:
            raise RuntimeError("Timeline.finish() was called; make a new Timeline per response")
        if out_rate is not None and out_rate != self.sample_rate:
            raise ValueError(f"out_rate {out_rate} differs from the timeline's sample_rate {self.sample_rate}")
        if start_sample < 0:
            raise ValueError(f"start_sample must be >= 0, got {start_sample}")
        if chunk.sample_rate <= 0:
            raise ValueError(f"chunk.sample_rate must be positive, got {chunk.sample_rate}")
        if expression is not None:
            self.expression = self._check_expression(expression)
        elif chunk.text:
            self.expression = expression_for(chunk.text)
        start = start_sample / self.sample_rate
        end = start + len(chunk.audio) / chunk.sample_rate
        if start > self._covered:
            self._add(self._covered, start, _REST)
        if chunk.phonemes:
            self._add_phonemes(chunk, start, end)
        else:
            self._add_energy(chunk, start)
        self._covered = max(self._covered, end)
        return self._emit_until(end * self.sample_rate)

    def finish(self, end_sample: int | None = None) -> list[AvatarFrame]:
        """Remaining frames up to `end_sample` (default: the end of the last chunk) and a final rest frame."""
        if self._finished:
            return []
        self._finished = True
        end = self._covered if end_sample is None else end_sample / self.sample_rate
        self._add(self._covered, max(self._covered, end) + 10.0, _REST)
        frames = self._emit_until(end * self.sample_rate)
        sample = self.frame_sample(self._next_frame)
        self._next_frame += 1
        frames.append(self._frame(sample, _REST.copy()))
        return frames

    # ------------------------------------------------------------------------------------ segments
    @staticmethod
    def _check_expression(expression: str) -> str:
        if expression not in EXPRESSIONS:
            raise ValueError(f"unknown expression {expression!r}; use one of {EXPRESSIONS}")
        return expression

    def _add(self, start: float, end: float, target: np.ndarray) -> None:
        if end > start:
            self._segments.append(_Segment(start, end, target, _alpha(target)))

    def _add_phonemes(self, chunk: SpeechChunk, start: float, end: float) -> None:
        """Split multi-symbol timings (diphthongs), fold marks into neighbours, fill pauses with rest."""
        rate = chunk.sample_rate
        pieces: list[tuple[str, float, float]] = []
        orphan_start: float | None = None
        for p in sorted(chunk.phonemes, key=lambda p: p.start_sample):
            a = min(max(start + p.start_sample / rate, start), end)
            b = min(max(start + p.end_sample / rate, a), end)
            tokens = split_ipa(p.phoneme)
            if not tokens:  # a lone stress/length/tilde mark: give its time to a neighbour
                if p.phoneme.strip() and "\u0303" in p.phoneme and pieces and pieces[-1][0] != SILENCE:
                    sym, pa, _ = pieces[-1]
                    pieces[-1] = (sym + "\u0303", pa, b)
                elif pieces:
                    pieces[-1] = (pieces[-1][0], pieces[-1][1], b)
                else:
                    orphan_start = a if orphan_start is None else orphan_start
                continue
            if orphan_start is not None:
                a, orphan_start = orphan_start, None
            shares = [1.5 if is_vowel(t) else 1.0 for t in tokens]
            total, t0 = sum(shares), a
            for tok, share in zip(tokens, shares):
                t1 = t0 + (b - a) * share / total
                pieces.append((tok, t0, t1))
                t0 = t1
        pieces = _gate_by_energy(pieces, chunk, start)
        cursor = start
        for sym, a, b in pieces:
            if a - cursor >= _MERGE_GAP_S:
                self._add(cursor, a, _REST)
            elif a > cursor and self._segments and self._segments[-1].end >= cursor - 1e-9:
                self._segments[-1].end = a  # close a tiny gap by stretching the previous shape
            target = _REST if sym == SILENCE else np.asarray(viseme_weights(sym), dtype=np.float64)
            self._add(max(a, cursor), b, target)  # overlapping timings: never go back in time
            cursor = max(cursor, b)
        if end > cursor:
            self._add(cursor, end, _REST)

    def _add_energy(self, chunk: SpeechChunk, start: float) -> None:
        """No phoneme timings (a TTS without alignment): open the jaw with the audio envelope per frame."""
        audio = np.asarray(chunk.audio, dtype=np.float64)
        hop = max(1, round(chunk.sample_rate / self.fps))
        n = max(1, math.ceil(len(audio) / hop))
        rms = np.array([math.sqrt(float(np.mean(audio[i * hop:(i + 1) * hop] ** 2))) if i * hop < len(audio) else 0.0
                        for i in range(n)])
        ref = max(0.05, float(np.percentile(rms, 90))) if len(rms) else 0.05
        for i, level in enumerate(rms):
            o = min(1.0, level / ref)
            o = 0.0 if o < 0.15 else o
            target = _REST * (1 - o)
            target[VISEME_INDEX["aa"]] += 0.6 * o
            target[VISEME_INDEX["E"]] += 0.4 * o
            self._add(start + i * hop / chunk.sample_rate, start + min(len(audio), (i + 1) * hop) / chunk.sample_rate,
                      target)

    # -------------------------------------------------------------------------------------- frames
    def _emit_until(self, end_sample: float) -> list[AvatarFrame]:
        samples = []
        while self.frame_sample(self._next_frame) < end_sample:
            samples.append(self.frame_sample(self._next_frame))
            self._next_frame += 1
        if not samples:
            return []
        times = np.asarray(samples, dtype=np.float64) / self.sample_rate
        weights = self._blend(times)
        self._prune(times[-1])
        return [self._frame(s, w) for s, w in zip(samples, weights)]

    def _blend(self, times: np.ndarray) -> np.ndarray:
        segs = self._segments
        starts = np.array([s.start for s in segs])
        ends = np.array([s.end for s in segs])
        alphas = np.array([s.alpha for s in segs])
        targets = np.stack([s.target for s in segs])  # (S, 15)
        dist = np.maximum(0.0, np.maximum(starts[None, :] - times[:, None], times[:, None] - ends[None, :]))
        inside = (times[:, None] >= starts[None, :]) & (times[:, None] < ends[None, :])
        tau = self.smoothing_ms / 1000.0 / 2.0
        if tau <= 0:
            dom = inside * alphas[None, :]
        else:
            dom = alphas[None, :] * np.exp(-dist / tau)
        total = dom.sum(axis=1, keepdims=True)
        blended = np.where(total > 1e-12, dom @ targets / np.maximum(total, 1e-12), _REST[None, :])
        return blended

    def _prune(self, now: float) -> None:
        horizon = now - max(_KEEP_S, 8 * self.smoothing_ms / 1000.0)
        self._segments = [s for s in self._segments if s.end >= horizon]

    def _frame(self, sample: int, visemes: np.ndarray) -> AvatarFrame:
        shapes = blendshapes_for(visemes)
        for name, value in EXPRESSION_BLENDSHAPES[self.expression].items():
            shapes[name] = min(1.0, shapes.get(name, 0.0) + value)
        return AvatarFrame(sample=int(sample), visemes=tuple(float(v) for v in visemes), blendshapes=shapes,
                           expression=self.expression)
