"""Shared helpers for the ASR tests: dev-set access, chunk feeders, a scripted recognizer, an energy VAD model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from asr.vad import VadStream
from falante.audio import read_wav
from falante.config import VadSettings
from falante.types import ASR_SAMPLE_RATE, ListenerEvent

DEV_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "ptbr-speech-dev"
SR = ASR_SAMPLE_RATE


def manifest() -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DEV_DIR / "manifest.jsonl").read_text().splitlines() if line.strip()]


def clip(name: str) -> np.ndarray:
    audio, rate = read_wav(DEV_DIR / name)
    assert rate == SR, f"{name}: dev clips are 16 kHz"
    return audio


async def feed(audio: np.ndarray, chunk: int = 1600, realtime: bool = False,
               consumed: list[int] | None = None, pace: float = 1.0) -> AsyncIterator[np.ndarray]:
    """Yield `audio` in chunks; `realtime` paces them on the loop clock (`pace` > 1: slower than real time)."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for i in range(0, len(audio), chunk):
        if realtime:
            await asyncio.sleep(max(0.0, t0 + pace * i / SR - loop.time()))
        yield audio[i : i + chunk]
        if consumed is not None:
            consumed.append(i + chunk)


async def collect(events: AsyncIterator[ListenerEvent], clock: Callable[[], float] | None = None
                  ) -> list[tuple[float, ListenerEvent]]:
    clock = clock or asyncio.get_running_loop().time
    return [(clock(), ev) async for ev in events]


def tone(seconds: float, amp: float = 0.3, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), dtype=np.float32)


def concat(parts: Iterable[np.ndarray]) -> np.ndarray:
    return np.concatenate(list(parts)).astype(np.float32)


class EnergyVadModel:
    """Stands in for SileroVadModel in fast tests: probability 0.95 for loud windows, 0.02 for quiet ones.

    Same `run`/`stream` interface, so the real VadStream state machine and Listener are what is tested.
    """

    loaded = True

    def load(self) -> None:
        pass

    def run(self, windows: np.ndarray, h: np.ndarray, c: np.ndarray):
        rms = np.sqrt(np.mean(windows[:, 64:] ** 2, axis=1))
        return np.where(rms > 0.05, 0.95, 0.02).astype(np.float32), h, c

    def stream(self, settings: VadSettings | None = None) -> VadStream:
        return VadStream(self, settings or VadSettings())  # type: ignore[arg-type]


class ScriptedRecognizer:
    """A SpeechRecognizer whose text is `text_for(seconds, partial)`; records calls; optional gate to hold decodes."""

    def __init__(self, text_for: Callable[[float, bool], str] | None = None, delay: float = 0.0) -> None:
        self.text_for = text_for or (lambda seconds, partial: f"fala de {seconds:.1f} segundos")
        self.delay = delay
        self.calls: list[tuple[int, bool]] = []  # (samples, partial)
        self.drafts: list[int] = []  # samples of each draft decode (semantic_vad's end-of-turn transcript)
        self.audios: list[np.ndarray] = []  # what each call decoded
        self.cancelled = 0
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()

    def load(self) -> None:
        pass

    def close(self) -> None:
        pass

    async def transcribe(self, audio: np.ndarray, *, language: str | None = None, partial: bool = False,
                         draft: bool = False) -> str:
        self.calls.append((len(audio), partial))
        if draft:
            self.drafts.append(len(audio))
        self.audios.append(np.array(audio, copy=True))
        self.started.set()
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.delay:
                await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return self.text_for(len(audio) / SR, partial)
