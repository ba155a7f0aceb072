"""`asr.encoder_window_s`: the encoder sees a shorter window only when the speech leaves >= 1 s of padding in it."""

from __future__ import annotations

import numpy as np
import pytest

import asr.whisper as whisper_module
from asr.whisper import draft_window_frames, shorten_padding
from tests.asr.helpers import SR, clip, concat


def padded(speech_frames: int, total: int = 3000, batch: int | None = None) -> np.ndarray:
    shape = (80, total) if batch is None else (batch, 80, total)
    features = np.zeros(shape, dtype=np.float32)
    features[..., :speech_frames] = np.random.default_rng(0).normal(size=features[..., :speech_frames].shape)
    return features


def test_short_speech_gets_the_short_window():
    out = shorten_padding(padded(500), 1500)
    assert out.shape == (80, 1500) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, padded(500)[:, :1500])


def test_speech_that_would_leave_under_a_second_of_padding_keeps_the_full_window():
    assert shorten_padding(padded(1401), 1500).shape == (80, 3000)
    assert shorten_padding(padded(1400), 1500).shape == (80, 1500)


def test_a_batch_is_cut_to_fit_its_longest_utterance():
    batch = padded(300, batch=2)
    batch[1, :, :1450] = 1.0  # the second utterance is too long for a 15 s window
    assert shorten_padding(batch, 1500).shape == (2, 80, 3000)
    assert shorten_padding(padded(300, batch=2), 1500).shape == (2, 80, 1500)


def test_full_window_setting_changes_nothing():
    features = padded(200)
    assert shorten_padding(features, 3000) is features


def test_a_draft_window_fits_the_speech_within_the_configured_window():
    assert draft_window_frames(1 * SR, 20.0) == 400  # at least 4 s
    assert draft_window_frames(5 * SR, 20.0) == 605  # speech + 1 s of padding (+ a frame of rounding margin)
    assert draft_window_frames(25 * SR, 20.0) == 2000  # never past the configured window
    assert shorten_padding(padded(500), draft_window_frames(5 * SR, 20.0)).shape == (80, 605)


@pytest.mark.model
async def test_the_shared_model_encodes_the_configured_window(whisper, monkeypatch):
    seen = []

    def recording(features, frames):
        out = shorten_padding(features, frames)
        seen.append(out.shape[-1])
        return out

    monkeypatch.setattr(whisper_module, "shorten_padding", recording)
    assert whisper.model.window_frames == 2000  # the default 20 s
    await whisper.transcribe(clip("d14_jm_kumo.wav"))
    long = concat([clip("d27_jf_alpha.wav")] * 2)
    assert 20 * SR < long.size < 30 * SR
    await whisper.transcribe(long)
    await whisper.transcribe(clip("d14_jm_kumo.wav"), draft=True)  # a draft: the speech + 1 s
    assert seen[:2] == [2000, 3000] and 400 <= seen[2] < 2000
