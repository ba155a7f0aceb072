"""`FasterWhisperRecognizer`: the one Whisper model of the process, shared by every session.

Why: loading per session runs out of memory at a few sessions (WhisperLive #109). Decodes run on a small priority
pool (finals first), faster-whisper's lazy segment generator is consumed inside the worker, and a cancelled await
only drops its result. With `batch_finals` (GPU), finals queued while the model was busy are decoded as one batch.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from falante.config import FasterWhisperSettings
from falante.types import ASR_SAMPLE_RATE

from .executor import BULK, DRAFT, FINAL, PARTIAL, PriorityExecutor
from .resolve import resolve_model
from .vad import check_audio

log = logging.getLogger(__name__)

MIN_SPEECH_SAMPLES = ASR_SAMPLE_RATE // 10  # < 100 ms cannot hold a word: answer "" without touching the model
SILENCE_PEAK = 1e-3  # peak below -60 dBFS after DC removal = digital silence
WINDOW_SAMPLES = 30 * ASR_SAMPLE_RATE  # Whisper's context; longer audio is decoded window by window
MAX_BATCH = 8
FRAMES_PER_S = 100  # log-mel frames per second of audio
MIN_PADDING_FRAMES = FRAMES_PER_S  # a shortened window still leaves >= 1 s of padding after the speech
DRAFT_MIN_WINDOW_S = 4.0  # a draft's encoder window: the speech + 1 s of padding, at least this
_window = threading.local()  # a decode's own encoder window (drafts), read by the model's encode on that thread


def draft_window_frames(samples: int, window_s: float) -> int:
    """Encoder frames of a draft decode: the speech + 1 s of padding (>= DRAFT_MIN_WINDOW_S), within `window_s`.

    Why: on CPU the encoder is most of a decode and its cost follows the window (asr.encoder_window_s), not the
    speech; a draft only has to be good enough to score how finished the phrase sounds.
    """
    speech_s = samples / ASR_SAMPLE_RATE
    return round(min(window_s, max(DRAFT_MIN_WINDOW_S, speech_s + 1.0 + 0.05)) * FRAMES_PER_S)


def shorten_padding(features: np.ndarray, window_frames: int) -> np.ndarray:
    """Cut faster-whisper's zero padding so the encoder sees `window_frames` frames, when the speech fits.

    Why: faster-whisper pads every utterance to Whisper's 30 s window, so on CPU the encoder's cost is the same for
    a 2 s question as for 30 s of speech (0.7 s of a 1.05 s decode of a 5 s clip, 2 cores). With a 20 s window that
    decode takes 0.67 s, for +0.02 streaming WER on the dev set (docs/benchmarks.md).
    Padded frames are exact zeros (the extractor's pad value), which speech never produces in all 80 bands.
    """
    if window_frames >= features.shape[-1]:
        return features
    live = np.flatnonzero(np.any(features != 0.0, axis=tuple(range(features.ndim - 1))))
    speech = int(live[-1]) + 1 if live.size else 0
    if speech + MIN_PADDING_FRAMES > window_frames:
        return features
    return np.ascontiguousarray(features[..., :window_frames])


def _whisper_model_class():
    from faster_whisper import WhisperModel

    class WindowedWhisperModel(WhisperModel):
        """faster-whisper's model with the encoder window as configuration (`asr.encoder_window_s`)."""

        window_frames = 30 * FRAMES_PER_S

        def encode(self, features: np.ndarray):
            return super().encode(shorten_padding(features, getattr(_window, "frames", None) or self.window_frames))

    return WindowedWhisperModel


def split_at_pauses(audio: np.ndarray, max_samples: int = WINDOW_SAMPLES,
                    search_samples: int = 5 * ASR_SAMPLE_RATE) -> list[np.ndarray]:
    """Cut audio longer than `max_samples` into pieces of at most that, each cut at the quietest 50 ms in the
    last `search_samples` before the limit (a pause, so no word is cut in two).

    Why: one 2-minute commit decoded as one job held the shared worker for its whole decode (tens of seconds on
    2 cores), and every other session's final waited behind it; piece by piece, the pool serves others between.
    """
    frame = ASR_SAMPLE_RATE // 20
    pieces, start = [], 0
    while audio.size - start > max_samples:
        lo = start + max(max_samples - search_samples, frame)
        hi = start + max_samples
        window = audio[lo:hi]
        n = window.size // frame
        energy = np.square(window[: n * frame].reshape(n, frame)).mean(axis=1)
        cut = lo + int(np.argmin(energy)) * frame + frame // 2
        pieces.append(audio[start:cut])
        start = cut
    pieces.append(audio[start:])
    return pieces


def prepare(audio: np.ndarray) -> np.ndarray | None:
    """Validate and condition audio for Whisper; None when there is nothing to recognise."""
    audio = check_audio(audio, "ASR input")
    if audio.size < MIN_SPEECH_SAMPLES:
        return None
    audio = audio - np.float32(audio.mean())  # DC offset skews the log-mel floor
    peak = float(np.max(np.abs(audio)))
    if peak < SILENCE_PEAK:
        return None
    return np.clip(audio, -1.0, 1.0)  # clipped/over-range input: bound it, Whisper copes with the distortion


@dataclass
class _Request:
    audio: np.ndarray
    language: str
    future: Future = field(default_factory=Future)


class FasterWhisperRecognizer:
    """Implements `falante.types.SpeechRecognizer`. Cheap to construct; call `load()` once (blocking)."""

    def __init__(self, settings: FasterWhisperSettings | None = None) -> None:
        self.settings = settings or FasterWhisperSettings()
        self.model = None
        self.model_path: str | None = None
        self.load_count = 0  # tests assert one load per process
        self.load_seconds = 0.0
        self._executor: PriorityExecutor | None = None
        self._lock = threading.Lock()
        self._batch: list[_Request] = []
        self._batch_lock = threading.Lock()
        self._pipeline = None  # faster-whisper's BatchedInferencePipeline, built on first batch

    # ------------------------------------------------------------------ lifecycle
    def load(self) -> None:
        with self._lock:
            if self.model is not None:
                return
            s = self.settings
            started = time.perf_counter()
            self.model_path = resolve_model(s.model)
            self.model = _whisper_model_class()(
                self.model_path, device=s.device, compute_type=s.compute_type,
                cpu_threads=s.cpu_threads, num_workers=max(1, s.workers),
            )
            self.model.window_frames = round(s.encoder_window_s * FRAMES_PER_S)
            self._warm_up()
            self._executor = PriorityExecutor(max(1, s.workers), name="whisper")
            self.load_seconds = time.perf_counter() - started
            self.load_count += 1
            log.info("whisper %s loaded in %.2fs (%s, %s)", self.model_path, self.load_seconds, s.device, s.compute_type)

    def _warm_up(self) -> None:
        """One throw-away decode so the first user does not pay CTranslate2's lazy initialisation (~2 s on CPU)."""
        noise = np.random.default_rng(0).normal(0.0, 0.05, ASR_SAMPLE_RATE).astype(np.float32)
        self._decode(noise, self.settings.language, True)

    def close(self) -> None:
        """Stop the worker threads after the queued jobs (server shutdown)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self.model = None

    @property
    def loaded(self) -> bool:
        return self.model is not None

    # ------------------------------------------------------------------ API
    async def transcribe(self, audio: np.ndarray, *, language: str | None = None, partial: bool = False,
                         draft: bool = False) -> str:
        """Text of 16 kHz float32 mono `audio` ("" for silence or < 100 ms). Raises ValueError on NaN/inf/bad shape.

        `draft`: semantic_vad's end-of-turn draft — decoded like a partial (greedy, no fallback) with an encoder
        window fitted to the speech, ahead of every final and partial waiting for the model."""
        if self._executor is None:
            raise RuntimeError("FasterWhisperRecognizer.load() was not called")
        clean = prepare(audio)
        if clean is None:
            return ""
        lang = language or self.settings.language
        if draft and clean.size <= WINDOW_SAMPLES:
            frames = draft_window_frames(clean.size, self.settings.encoder_window_s)
            return await self._executor.run(DRAFT, self._decode, clean, lang, True, frames)
        if self.settings.batch_finals and not partial and clean.size <= WINDOW_SAMPLES:
            return await self._batched(clean, lang)
        if partial or clean.size <= WINDOW_SAMPLES:
            return await self._executor.run(PARTIAL if partial else FINAL, self._decode, clean, lang, partial)
        texts = []  # a long final: one job per ≤ 30 s piece, queued behind every live decode (a live turn then
        # waits only for the piece in flight; docs/benchmarks.md "Fairness": not enough under a commit flood)
        for piece in split_at_pauses(clean):
            texts.append(await self._executor.run(BULK, self._decode, piece, lang, False))
        return _join(texts)

    # ------------------------------------------------------------------ worker side
    def _decode(self, audio: np.ndarray, language: str, partial: bool, window_frames: int | None = None) -> str:
        _window.frames = window_frames  # None: the configured window
        try:
            return self._decode_window(audio, language, partial)
        finally:
            _window.frames = None

    def _decode_window(self, audio: np.ndarray, language: str, partial: bool) -> str:
        long = audio.size > WINDOW_SAMPLES
        # partials are drafts: no temperature fallback (it re-decodes up to 5× on accented speech: 1 s → 5 s) and a
        # token cap against repetition loops; finals keep the fallback steps configured
        extra = {"temperature": 0.0, "max_new_tokens": min(440, 12 + audio.size * 8 // ASR_SAMPLE_RATE)} if partial \
            else {"temperature": list(self.settings.final_temperatures) or 0.0}
        segments, _ = self.model.transcribe(  # type: ignore[union-attr]
            audio,
            language=language,
            beam_size=1 if partial else self.settings.beam_size,
            condition_on_previous_text=False,
            without_timestamps=not long,  # > 30 s: timestamps let Whisper seek at segment boundaries
            vad_filter=False,  # our VAD already cut the utterance
            **extra,
        )
        return _join(s.text for s in segments)  # the generator runs here, in the worker thread

    async def _batched(self, audio: np.ndarray, language: str) -> str:
        request = _Request(audio, language)
        with self._batch_lock:
            self._batch.append(request)
        self._executor.submit(FINAL, self._run_batch)  # type: ignore[union-attr]
        return await asyncio.wrap_future(request.future)

    def _run_batch(self) -> None:
        """Take every waiting final (up to MAX_BATCH) and decode them together; a no-op if others took them."""
        with self._batch_lock:
            taken, self._batch = self._batch[:MAX_BATCH], self._batch[MAX_BATCH:]
        live = [r for r in taken if r.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            texts = self.decode_batch([r.audio for r in live], [r.language for r in live])
        except BaseException as exc:  # noqa: BLE001 - each waiting caller gets the error
            for r in live:
                r.future.set_exception(exc)
            return
        for r, text in zip(live, texts):
            r.future.set_result(text)

    def decode_batch(self, audios: list[np.ndarray], languages: list[str]) -> list[str]:
        """Decode several ≤ 30 s utterances in one batched pass (same language) or one by one otherwise."""
        if len(audios) == 1 or len(set(languages)) > 1:
            return [self._decode(a, lang, False) for a, lang in zip(audios, languages)]
        if self._pipeline is None:
            from faster_whisper import BatchedInferencePipeline

            self._pipeline = BatchedInferencePipeline(self.model)
        gap = np.zeros(ASR_SAMPLE_RATE // 10, dtype=np.float32)
        pieces, clips, offset = [], [], 0
        for audio in audios:
            pieces += [audio, gap]
            clips.append({"start": offset / ASR_SAMPLE_RATE, "end": (offset + audio.size) / ASR_SAMPLE_RATE})
            offset += audio.size + gap.size
        segments, _ = self._pipeline.transcribe(
            np.concatenate(pieces), language=languages[0], beam_size=self.settings.beam_size,
            clip_timestamps=clips, batch_size=len(audios), without_timestamps=True, vad_filter=False,
        )
        texts: list[list[str]] = [[] for _ in audios]
        for seg in segments:
            index = next((i for i, c in enumerate(clips) if seg.start < c["end"]), len(clips) - 1)
            texts[index].append(seg.text)
        return [_join(t) for t in texts]


def _join(texts) -> str:
    return " ".join(t.strip() for t in texts if t.strip())
