"""VadStream state machine (fast, energy stand-in model) and Silero v6 on the dev clips (model)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from asr.vad import WINDOW, SileroVadModel, check_audio
from falante.config import VadSettings
from falante.types import SpeechStarted, SpeechStopped
from tests.asr.helpers import SR, EnergyVadModel, clip, concat, manifest, silence, tone

TOLERANCE = int(0.15 * SR)


def run_stream(stream, audio: np.ndarray, sizes: list[int] | None = None) -> list:
    events, i, k = [], 0, 0
    while i < len(audio):
        n = sizes[k % len(sizes)] if sizes else len(audio)
        events += stream.process(audio[i : i + n])
        i += n
        k += 1
    return events + stream.flush()


def test_tone_bursts_give_window_accurate_offsets():
    audio = concat([silence(0.512), tone(1.024), silence(1.024), tone(0.512), silence(0.8)])
    events = run_stream(EnergyVadModel().stream(VadSettings(silence_ms=500, min_speech_ms=250)), audio)
    assert events == [
        SpeechStarted(16 * WINDOW), SpeechStopped(48 * WINDOW),
        SpeechStarted(80 * WINDOW), SpeechStopped(96 * WINDOW),
    ]


def test_short_blip_is_not_a_turn_and_short_pause_does_not_end_one():
    vad = VadSettings(min_speech_ms=250, silence_ms=500)
    blip = concat([silence(0.5), tone(0.1), silence(1.0)])
    assert run_stream(EnergyVadModel().stream(vad), blip) == []
    paused = concat([silence(0.512), tone(0.512), silence(0.256), tone(0.512), silence(1.0)])
    events = run_stream(EnergyVadModel().stream(vad), paused)
    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped]


def test_flush_closes_a_turn_that_runs_to_the_end_of_input():
    events = run_stream(EnergyVadModel().stream(VadSettings()), concat([silence(0.512), tone(1.0)]))
    assert events[0] == SpeechStarted(16 * WINDOW)
    assert isinstance(events[1], SpeechStopped) and events[1].sample == len(concat([silence(0.512), tone(1.0)]))


@hsettings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=8))
def test_chunking_does_not_change_events(sizes):
    audio = concat([silence(0.3), tone(0.7), silence(0.7), tone(0.4), silence(0.6)])
    model = EnergyVadModel()
    assert run_stream(model.stream(), audio, sizes) == run_stream(model.stream(), audio)


@pytest.mark.parametrize("bad, message", [
    (np.array([0.0, np.nan], dtype=np.float32), "NaN"),
    (np.array([0.0, np.inf], dtype=np.float32), "NaN or infinite"),
    (np.zeros((2, 10), dtype=np.float32), "1-D"),
    (np.zeros(10, dtype=np.int16), "float samples"),
])
def test_bad_audio_is_rejected_with_a_clear_message(bad, message):
    with pytest.raises(ValueError, match=message):
        check_audio(bad)
    with pytest.raises(ValueError, match=message):
        EnergyVadModel().stream().process(bad)


def test_invalid_threshold_is_rejected():
    with pytest.raises(ValueError, match="threshold"):
        EnergyVadModel().stream(VadSettings(threshold=1.5))


# ------------------------------------------------------------------------------------------ Silero (real weights)
@pytest.fixture(scope="module")
def silero() -> SileroVadModel:
    model = SileroVadModel()
    model.load()
    return model


@pytest.mark.model
def test_streamed_probabilities_match_faster_whispers_batched_vad(silero):
    from faster_whisper.vad import SileroVADModel as Reference

    audio = clip("d12_jm_kumo.wav")
    audio = audio[: len(audio) // WINDOW * WINDOW]
    reference = Reference(_asset())(audio).reshape(-1)
    np.testing.assert_allclose(_all_probs(silero, audio), reference, atol=1e-5)


def _asset() -> str:
    import os

    from faster_whisper.utils import get_assets_path
    return os.path.join(get_assets_path(), "silero_vad_v6.onnx")


def _all_probs(silero: SileroVadModel, audio: np.ndarray) -> np.ndarray:
    """Window probabilities through the streaming path, 700-sample chunks."""
    stream, seen = silero.stream(), []
    original = stream.model.run

    def spy(windows, h, c):
        probs, h, c = original(windows, h, c)
        seen.extend(probs.tolist())
        return probs, h, c

    stream.model = type("Spy", (), {"run": staticmethod(spy)})()
    for i in range(0, len(audio), 700):
        stream.process(audio[i : i + 700])
    return np.array(seen[: len(audio) // WINDOW])


@pytest.mark.model
@pytest.mark.parametrize("item", [m for m in manifest() if "turns" not in m], ids=lambda m: m["file"])
def test_silero_finds_each_single_clip_within_150_ms(silero, item):
    events = run_stream(silero.stream(VadSettings()), clip(item["file"]), sizes=[320, 1600, 3200])
    starts = [e.sample for e in events if isinstance(e, SpeechStarted)]
    stops = [e.sample for e in events if isinstance(e, SpeechStopped)]
    assert starts and len(starts) == len(stops), events
    # Kokoro reads commas with 540-670 ms pauses, which a 500 ms end-of-turn silence splits: check the outer edges
    assert abs(starts[0] - item["speech_start_s"] * SR) <= TOLERANCE
    assert abs(stops[-1] - item["speech_end_s"] * SR) <= TOLERANCE


@pytest.mark.model
@pytest.mark.parametrize("item", [m for m in manifest() if "turns" in m], ids=lambda m: m["file"])
def test_silero_splits_two_turn_files_into_two_utterances(silero, item):
    events = run_stream(silero.stream(VadSettings()), clip(item["file"]), sizes=[480])
    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped] * 2, events
    for (start, end), (ev_start, ev_stop) in zip(item["turn_segments_s"], zip(events[::2], events[1::2])):
        assert abs(ev_start.sample - start * SR) <= TOLERANCE
        assert abs(ev_stop.sample - end * SR) <= TOLERANCE
