"""The streaming loop every falante TTS backend shares.

Why one loop: cancellation and threading are easy to get subtly wrong. Text is normalized, split into sentences,
each sentence is planned into pieces and each piece rendered on the backend's own executor; a piece is submitted
only after the previous one was consumed, so when the consumer stops (aclose / CancelledError) no further piece is
synthesized and a queued-but-unstarted piece is cancelled in the executor.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from falante.types import SpeechChunk
from tts.normalize import normalize
from tts.segment import split_sentences

__all__ = ["PieceSynthesizer", "TTSNotLoaded"]


class TTSNotLoaded(RuntimeError):
    """synthesize() was called before load()."""


class PieceSynthesizer:
    """Subclasses implement `_load`, `voices`, `_plan(sentence) -> pieces` and `_render(piece, voice, speed)`."""

    sample_rate: int = 24_000
    default_voice: str | None = None
    workers: int = 1

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._load_lock = threading.Lock()
        self._loaded = False
        self._count_lock = threading.Lock()
        self.loads = 0  # how many times weights were loaded (tests assert 1)
        self.rendered_pieces = 0  # pieces synthesized so far (metrics; tests check cancellation with it)

    # ------------------------------------------------------------------------------------------ lifecycle
    def load(self) -> None:
        """Blocking; loads the model once per process (later calls return immediately)."""
        with self._load_lock:
            if self._loaded:
                return
            self._load()
            self._executor = ThreadPoolExecutor(max_workers=self.workers,
                                                thread_name_prefix=f"tts-{type(self).__name__}")
            self.loads += 1
            self._loaded = True

    def close(self) -> None:
        """Stop the workers (queued pieces are cancelled); `synthesize` refuses work until `load()` again."""
        with self._load_lock:
            executor, self._executor, self._loaded = self._executor, None, False
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def _load(self) -> None:
        raise NotImplementedError

    def voices(self) -> list[str]:
        raise NotImplementedError

    def _plan(self, sentence: str) -> list[Any]:
        raise NotImplementedError

    def _render(self, piece: Any, voice: str | None, speed: float) -> SpeechChunk:
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------ streaming
    def _resolve_voice(self, voice: str | None) -> str | None:
        voice = voice or self.default_voice
        names = self.voices()
        if names and voice not in names:
            raise ValueError(f"unknown voice {voice!r}; available: {', '.join(names)}")
        return voice

    async def _run(self, fn: Callable, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def _counted_render(self, piece: Any, voice: str | None, speed: float) -> SpeechChunk:
        chunk = self._render(piece, voice, speed)
        with self._count_lock:
            self.rendered_pieces += 1
        return chunk

    async def synthesize(self, text: str, *, voice: str | None = None, speed: float = 1.0,
                         ) -> AsyncIterator[SpeechChunk]:
        """Stream one SpeechChunk per sentence/clause piece of `text` as soon as each is rendered."""
        if not self._loaded:
            raise TTSNotLoaded(f"{type(self).__name__}.load() must be called before synthesize()")
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        if not 0.25 <= float(speed) <= 4.0:
            raise ValueError(f"speed must be between 0.25 and 4.0, got {speed}")
        voice = self._resolve_voice(voice)
        for sentence in split_sentences(normalize(text)):
            pieces = await self._run(self._plan, sentence)
            for piece in pieces:
                chunk = await self._run(self._counted_render, piece, voice, float(speed))
                if chunk.audio.size:
                    yield chunk
