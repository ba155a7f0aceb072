"""Build the configured synthesizer; the backend module is imported only when it is chosen."""

from __future__ import annotations

from falante.config import EspeakSettings, KokoroSettings, PiperSettings
from falante.types import SpeechSynthesizer


def build_synthesizer(settings: KokoroSettings | PiperSettings | EspeakSettings) -> SpeechSynthesizer:
    """A cheap, unloaded synthesizer for `settings.kind`; call `.load()` (blocking) once at start-up."""
    if settings.kind == "kokoro":
        from tts.kokoro import KokoroSynthesizer

        return KokoroSynthesizer(settings)
    if settings.kind == "piper":
        from tts.piper import PiperSynthesizer

        return PiperSynthesizer(settings)
    if settings.kind == "espeak":
        from tts.espeak import EspeakSynthesizer

        return EspeakSynthesizer(settings)
    raise ValueError(f"unknown tts kind {settings.kind!r}")
