"""Session-wide real models for the @model ASR tests: loaded once and shared, like the server does."""

from __future__ import annotations

import pytest

from falante.config import FasterWhisperSettings

# Tests decode without sampling: the temperature-0.4 fallback of finals is unseeded, so a rare final could differ
# between runs. Deterministic beam search is what a quality gate can be measured against.
TEST_WHISPER = FasterWhisperSettings(final_temperatures=[0.0])


@pytest.fixture(scope="session")
def whisper():
    from asr.whisper import FasterWhisperRecognizer

    recognizer = FasterWhisperRecognizer(TEST_WHISPER)
    recognizer.load()
    yield recognizer
    recognizer.close()


@pytest.fixture(scope="session")
def silero_vad():
    from asr.vad import SileroVadModel

    model = SileroVadModel()
    model.load()
    return model
