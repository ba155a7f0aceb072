"""A session's input audio on the ASR's 16 kHz clock: the real-time allowance, decoding, resampling, the buffer a
manual commit takes, and when each sample arrived (endpoint and voice-to-voice times are measured from there).

Kept apart from `session.py` (turn-taking, responses, dispatch): this is the state behind
`input_audio_buffer.append/commit/clear`, and every check on it runs before the audio costs any model time.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from falante.audio import AudioFormatError, StreamResampler, decode_pcm16_base64
from falante.config import LimitSettings
from falante.g711 import decode_g711
from falante.types import ASR_SAMPLE_RATE
from server import protocol as p
from server.limits import TokenBucket

MIN_COMMIT_MS = 100
ARRIVALS_KEPT = 2000  # (sample count, wall time) pairs: one per append, minutes of 100 ms chunks


class InputAudio:
    def __init__(self, limits: LimitSettings, codec: str, rate: int, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.codec, self.rate = codec, rate
        self.budget = TokenBucket(limits.audio_realtime_factor, limits.audio_burst_s, clock=clock)
        self._resampler = StreamResampler(rate, ASR_SAMPLE_RATE)
        self.samples = 0  # 16 kHz samples received since the session started (the session's audio clock)
        self._pending: list[np.ndarray] = []  # audio since the last committed utterance, for manual commits
        self.pending_samples = 0
        self._arrivals: deque[tuple[int, float]] = deque(maxlen=ARRIVALS_KEPT)  # (samples after append, wall time)

    def set_format(self, codec: str, rate: int) -> None:
        if rate != self.rate:
            self._resampler = StreamResampler(rate, ASR_SAMPLE_RATE)
        self.codec, self.rate = codec, rate

    def append(self, b64: Any, *, manual: bool) -> np.ndarray:
        """One `input_audio_buffer.append`: the 16 kHz chunk (empty for no audio). With `manual` commits a full
        buffer is refused; with VAD only the newest audio is kept."""
        self._take_budget(b64)
        try:
            audio = decode_pcm16_base64(b64) if self.codec == "audio/pcm" else decode_g711(b64, self.codec)
        except AudioFormatError as exc:
            raise p.ProtocolError("invalid_audio", str(exc), param="audio") from None
        if not audio.size:
            return audio
        limit = int(self.limits.max_buffer_seconds * ASR_SAMPLE_RATE)
        chunk = self._resampler(audio)
        if manual and self.pending_samples + len(chunk) > limit:
            raise p.ProtocolError("input_audio_buffer_full", f"the input buffer holds at most "
                                  f"{self.limits.max_buffer_seconds:g} s; commit or clear it first")
        self.samples += len(chunk)
        self._arrivals.append((self.samples, time.perf_counter()))
        self._pending.append(chunk)
        self.pending_samples += len(chunk)
        while self.pending_samples > limit and len(self._pending) > 1:  # server VAD: keep the newest audio
            self.pending_samples -= len(self._pending.pop(0))
        return chunk

    def _take_budget(self, b64: Any) -> None:
        """Audio sent faster than real time past the allowance is refused before it costs anything (no decode,
        no resampling, no VAD, no ASR job): the flooder gets `audio_backlog`, the shared workers stay free."""
        if not isinstance(b64, str):
            return  # the decoder answers invalid_audio
        width = 2 if self.codec == "audio/pcm" else 1  # pcm16 or G.711 bytes per sample
        seconds = len(b64) * 3 // 4 // width / self.rate  # base64 → bytes (padding: < 1 sample)
        if seconds and not self.budget.take(seconds):
            raise p.ProtocolError("audio_backlog", f"audio arrives faster than real time: a session may send "
                                  f"{self.limits.audio_realtime_factor:g}x real time with "
                                  f"{self.limits.audio_burst_s:g} s ahead; this chunk was dropped — send audio in "
                                  "real time", type="server_error")

    def check_commit(self) -> None:
        """Before a manual commit: the resampler's tail (its filter delay) joins the buffer, which must hold
        at least MIN_COMMIT_MS."""
        tail = self._resampler.flush()
        if tail.size:
            self._pending.append(tail)
            self.pending_samples += len(tail)
            self.samples += len(tail)
        if self.pending_samples < MIN_COMMIT_MS * ASR_SAMPLE_RATE // 1000:
            raise p.ProtocolError("input_audio_buffer_commit_empty", f"buffer too small: expected at least "
                                  f"{MIN_COMMIT_MS} ms of audio, got {self.pending_samples * 1000 // ASR_SAMPLE_RATE} ms")

    def take(self) -> np.ndarray:
        """The buffered audio (it leaves the buffer)."""
        audio = np.concatenate(self._pending) if self._pending else np.zeros(0, np.float32)
        self.clear()
        return audio

    def clear(self) -> None:
        self._pending.clear()
        self.pending_samples = 0

    def arrival_time(self, sample: int) -> float:
        """When the append that carried `sample` arrived (now, for a sample not received yet)."""
        for end, t in self._arrivals:
            if end >= sample:
                return t
        return time.perf_counter()
