"""The voice of falante: pt-BR text normalization, G2P and streaming TTS backends with phoneme timings.

Backends (import the one you build; each loads its model in `load()`):
- `tts.kokoro.KokoroSynthesizer`  — Kokoro-82M ONNX, neural, default.
- `tts.piper.PiperSynthesizer`    — a user's pt_BR Piper voice (piper-tts).
- `tts.espeak.EspeakSynthesizer`  — explicit non-neural fallback.
`build_synthesizer(settings)` picks one from `falante.config` settings (never falls back silently).
"""

from tts.factory import build_synthesizer

__all__ = ["build_synthesizer"]
