"""Explicit non-neural fallback: espeak-ng (Debian, GPL-3, run as a subprocess) speaking pt-BR.

Why: when no neural voice can load (no weights, broken install) a robotic voice is better than silence — but only
when the operator chose it (`tts.kind = "espeak"`); nothing selects it silently. Timings come from the estimator
over espeak's own IPA for the same text.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np

from falante.config import EspeakSettings
from falante.types import SpeechChunk
from tts.base import PieceSynthesizer
from tts.g2p import phonemize, split_clauses
from tts.timing import SIL, estimate_samples, to_timings

__all__ = ["EspeakError", "EspeakSynthesizer", "parse_wav_stream"]

_SKIP = set("ˈˌ")


class EspeakError(RuntimeError):
    """espeak-ng is missing or failed; the message names the fix."""


def parse_wav_stream(data: bytes) -> tuple[np.ndarray, int]:
    """espeak's --stdout WAV (its size fields are bogus when streaming) → (float32 mono, rate)."""
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise EspeakError("espeak-ng did not return a WAV stream")
    rate = int.from_bytes(data[24:28], "little")
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if chunk == b"data":
            raw = data[pos + 8:]
            raw = raw[: len(raw) - len(raw) % 2]
            return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0, rate
        pos += 8 + size
    raise EspeakError("espeak-ng WAV stream has no data chunk")


class EspeakSynthesizer(PieceSynthesizer):
    """espeak-ng voices for Portuguese (plus MBROLA br1–br4 when mbrola is installed)."""

    def __init__(self, settings: EspeakSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or EspeakSettings()
        self.default_voice = self.settings.voice
        self.sample_rate = 22_050
        self.workers = 2  # subprocesses: two can run at once without sharing state
        self._exe = ""
        self._names: list[str] = []

    def _load(self) -> None:
        exe = shutil.which("espeak-ng")
        if not exe:
            raise EspeakError("espeak-ng is not installed: apt-get install espeak-ng")
        self._exe = exe
        listing = subprocess.run([exe, "--voices=pt"], capture_output=True, text=True, timeout=10, check=True)
        names = set()
        for line in listing.stdout.splitlines()[1:]:
            cols = line.split()
            if len(cols) >= 5:
                file = cols[4]
                if file.startswith("mb/"):
                    if shutil.which("mbrola"):
                        names.add(file.split("/", 1)[1])
                else:
                    names.add(cols[1])
        self._names = sorted(names | {self.settings.voice})
        audio, self.sample_rate = self._speak("a", self.settings.voice, 1.0)  # fail now, not mid-conversation

    def voices(self) -> list[str]:
        return list(self._names)

    def _speak(self, text: str, voice: str, speed: float) -> tuple[np.ndarray, int]:
        wpm = str(max(80, min(450, round(self.settings.speed_wpm * speed))))
        proc = subprocess.run([self._exe, "-v", voice, "-s", wpm, "--stdout", "--stdin"], input=text.encode(),
                              capture_output=True, timeout=60, check=False)
        if proc.returncode:
            raise EspeakError(f"espeak-ng failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[:200]}")
        return parse_wav_stream(proc.stdout)

    def _plan(self, sentence: str) -> list[str]:
        # Clause-sized pieces: espeak is fast, and short pieces give the first audio sooner.
        return [f"{words}{mark}" for words, mark in split_clauses(sentence)]

    def _render(self, piece: str, voice: str | None, speed: float) -> SpeechChunk:
        audio, rate = self._speak(piece, voice or self.settings.voice, speed)
        ipa = phonemize(piece, "espeak")
        symbols = [SIL, *[c for c in re.sub(r"[,.;:!?]", "", ipa) if c not in _SKIP], SIL]
        samples = estimate_samples(symbols, audio, rate)
        return SpeechChunk(audio=audio, sample_rate=rate, phonemes=to_timings(symbols, samples, len(audio),
                                                                                rate // 10), text=piece)
