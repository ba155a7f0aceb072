"""Session-wide real models for the @model ASR tests: loaded once and shared, like the server does."""

from __future__ import annotations

import pytest

from falante.config import FasterWhisperSettings


@pytest.fixture(scope="session")
def whisper():
    from asr.whisper import FasterWhisperRecognizer

    recognizer = FasterWhisperRecognizer(FasterWhisperSettings())
    recognizer.load()
    yield recognizer
    recognizer.close()


@pytest.fixture(scope="session")
def silero_vad():
    from asr.vad import SileroVadModel

    model = SileroVadModel()
    model.load()
    return model
