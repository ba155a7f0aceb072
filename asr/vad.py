"""Streaming Silero VAD (v6 ONNX shipped inside faster-whisper) → sample-accurate speech start/stop events.

Why this shape: the ONNX session is shared by all sessions (`SileroVadModel`, loaded once), while each session owns a
cheap `VadStream` with its own LSTM state, 64-sample context and a one-window (512 samples) carry-over buffer, so
chunks of any size are processed without concatenating audio history.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass

import numpy as np

from falante.config import VadSettings
from falante.types import ASR_SAMPLE_RATE, SpeechStarted, SpeechStopped

WINDOW = 512  # samples per Silero decision at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous window the v6 model sees in front of each window
PENDING_GAP_MS = 100  # silence that cancels a not-yet-confirmed speech start
PAUSE_MS = 96  # an in-utterance silence at least this long is a good place to cut a long window
ONSET_PROB = 0.08  # Silero scores initial consonants low: a start is moved back over recent windows above this
ONSET_LOOKBACK = 6  # windows (192 ms) searched for that onset

VadEvent = SpeechStarted | SpeechStopped


def check_audio(chunk: np.ndarray, what: str = "audio") -> np.ndarray:
    """Validate 16 kHz mono float audio: 1-D, floating point, finite. Returns float32 (no copy when possible)."""
    chunk = np.asarray(chunk)
    if chunk.ndim != 1:
        raise ValueError(f"{what} must be 1-D mono samples, got shape {chunk.shape}")
    if not np.issubdtype(chunk.dtype, np.floating):
        raise ValueError(
            f"{what} must be float samples in [-1, 1], got dtype {chunk.dtype} "
            "(convert pcm16 with falante.audio.pcm16_bytes_to_float)"
        )
    chunk = chunk.astype(np.float32, copy=False)
    if chunk.size and not np.isfinite(chunk).all():
        raise ValueError(f"{what} contains NaN or infinite samples; refusing to process garbage audio")
    return chunk


class SileroVadModel:
    """The shared ONNX session. Cheap to construct; `load()` once per process. `run` is thread-safe."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self._session = None

    def load(self) -> None:
        if self._session is not None:
            return
        import onnxruntime

        path = self.path
        if path is None:
            from faster_whisper.utils import get_assets_path

            path = os.path.join(get_assets_path(), "silero_vad_v6.onnx")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Silero VAD model not found at {path}: pip install faster-whisper==1.2.1")
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1  # tiny model: more threads only fight Whisper for the cores
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"], sess_options=opts)

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def run(self, windows: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(k, 576) windows with context → k speech probabilities and the new LSTM state."""
        if self._session is None:
            raise RuntimeError("SileroVadModel.load() was not called")
        probs, h, c = self._session.run(None, {"input": windows, "h": h, "c": c})
        return np.asarray(probs, dtype=np.float32).reshape(-1), h, c

    def stream(self, settings: VadSettings | None = None) -> VadStream:
        return VadStream(self, settings or VadSettings())


@dataclass
class _Turn:
    """Bookkeeping of the current (candidate or confirmed) speech segment, all in absolute samples."""

    start: int
    last_speech_end: int
    speech_samples: int = 0
    silence_run: int = 0
    confirmed: bool = False


class VadStream:
    """Per-session VAD state. `process(chunk)` returns the events that chunk completed, in order."""

    def __init__(self, model: SileroVadModel, settings: VadSettings) -> None:
        if not 0.0 < settings.threshold < 1.0:
            raise ValueError(f"VAD threshold must be in (0, 1), got {settings.threshold}")
        self.model = model
        self.threshold = settings.threshold
        self.neg_threshold = max(settings.threshold - 0.15, 0.01)
        ms = ASR_SAMPLE_RATE // 1000
        self.min_speech = settings.min_speech_ms * ms
        self.silence = max(settings.silence_ms * ms, WINDOW)
        self.pending_gap = PENDING_GAP_MS * ms
        self.pause = PAUSE_MS * ms
        self.reset()

    def reset(self) -> None:
        """Forget everything (new stream; the sample clock restarts at 0)."""
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._win = np.zeros(CONTEXT + WINDOW, dtype=np.float32)  # [context | window being filled]
        self._fill = 0
        self.processed = 0  # samples decided so far (the VAD clock); lags the input by < 512 samples
        self.received = 0
        self._turn: _Turn | None = None
        self.last_pause: int | None = None  # middle of the latest in-utterance pause ≥ PAUSE_MS
        self.last_prob = 0.0
        self._recent: deque[tuple[int, float]] = deque(maxlen=ONSET_LOOKBACK)  # (window start, prob) before a turn

    # ---------------------------------------------------------------- state visible to the listener
    @property
    def in_speech(self) -> bool:
        """True between SpeechStarted and SpeechStopped."""
        return self._turn is not None and self._turn.confirmed

    @property
    def silence_run(self) -> int:
        """Samples of silence since the last speech window of a confirmed turn (0 while speaking)."""
        return self._turn.silence_run if self.in_speech else 0

    @property
    def speech_end(self) -> int | None:
        """End sample of the last speech window of the confirmed turn."""
        return self._turn.last_speech_end if self.in_speech else None

    def end_turn(self) -> SpeechStopped | None:
        """End the confirmed turn now (semantic_vad decided before the silence cap): SpeechStopped at its end."""
        if not self.in_speech:
            return None
        assert self._turn is not None
        stopped = SpeechStopped(self._turn.last_speech_end)
        self._turn = None
        self.last_pause = None
        return stopped

    def drop_turn(self) -> None:
        """Forget the current turn (manual clear); the next speech starts a new one."""
        self._turn = None
        self.last_pause = None

    # ---------------------------------------------------------------- processing
    def process(self, chunk: np.ndarray) -> list[VadEvent]:
        chunk = check_audio(chunk, "VAD input")
        self.received += chunk.size
        events: list[VadEvent] = []
        pos = 0
        if self._fill:
            take = min(WINDOW - self._fill, chunk.size)
            self._win[CONTEXT + self._fill : CONTEXT + self._fill + take] = chunk[:take]
            self._fill += take
            pos = take
            if self._fill < WINDOW:
                return events  # the whole chunk went into the unfinished window
            self._decide(self._win[None, :].copy(), events)
            self._win[:CONTEXT] = self._win[-CONTEXT:]
            self._fill = 0
        k = (chunk.size - pos) // WINDOW
        if k:
            body = chunk[pos : pos + k * WINDOW].reshape(k, WINDOW)
            batch = np.empty((k, CONTEXT + WINDOW), dtype=np.float32)
            batch[:, CONTEXT:] = body
            batch[0, :CONTEXT] = self._win[:CONTEXT]
            batch[1:, :CONTEXT] = body[:-1, -CONTEXT:]
            self._decide(batch, events)
            self._win[:CONTEXT] = body[-1, -CONTEXT:]
            pos += k * WINDOW
        rest = chunk.size - pos
        self._win[CONTEXT : CONTEXT + rest] = chunk[pos:]
        self._fill = rest
        return events

    def flush(self) -> list[VadEvent]:
        """End of input: decide the partial last window (zero-padded) and close an open turn at its speech end."""
        events: list[VadEvent] = []
        if self._fill:
            window = self._win.copy()
            window[CONTEXT + self._fill :] = 0.0
            self._decide(window[None, :], events, valid=self._fill)
            self._fill = 0
        if self.in_speech:
            assert self._turn is not None
            events.append(SpeechStopped(self._turn.last_speech_end))
        self._turn = None
        return events

    def _decide(self, windows: np.ndarray, events: list[VadEvent], valid: int = WINDOW) -> None:
        probs, self._h, self._c = self.model.run(windows, self._h, self._c)
        for i, p in enumerate(probs):
            size = valid if i == len(probs) - 1 else WINDOW
            self._step(float(p), self.processed, self.processed + size, events)
            self.processed += size

    def _step(self, p: float, s0: int, s1: int, events: list[VadEvent]) -> None:
        self.last_prob = p
        turn = self._turn
        if turn is None:
            if p >= self.threshold:
                start = s0
                for w_start, w_prob in reversed(self._recent):
                    if w_prob < ONSET_PROB:
                        break
                    start = w_start
                self._recent.clear()
                self._turn = _Turn(start=start, last_speech_end=s1, speech_samples=s1 - start)
                self._maybe_confirm(events)
            else:
                self._recent.append((s0, p))
            return
        speaking = p >= self.threshold or (p >= self.neg_threshold and turn.silence_run == 0)
        if speaking:
            if turn.confirmed and turn.silence_run >= self.pause:
                self.last_pause = turn.last_speech_end + turn.silence_run // 2
            turn.last_speech_end = s1
            turn.silence_run = 0
            turn.speech_samples += s1 - s0
            self._maybe_confirm(events)
            return
        turn.silence_run += s1 - s0
        if not turn.confirmed:
            if turn.silence_run >= self.pending_gap:
                self._turn = None  # a click or a breath, not a turn
        elif turn.silence_run >= self.silence:
            events.append(SpeechStopped(turn.last_speech_end))
            self._turn = None
            self.last_pause = None

    def _maybe_confirm(self, events: list[VadEvent]) -> None:
        turn = self._turn
        if turn is not None and not turn.confirmed and turn.speech_samples >= self.min_speech:
            turn.confirmed = True
            events.append(SpeechStarted(turn.start))
