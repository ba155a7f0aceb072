"""Phoneme timings: exact conversion from durations, and the energy-refined estimator."""

import numpy as np
import pytest

from tts.timing import SIL, estimate_samples, speech_bounds, to_timings


def assert_covers(timings, total):
    assert timings[0].start_sample == 0 and timings[-1].end_sample == total
    for a, b in zip(timings, timings[1:]):
        assert a.end_sample == b.start_sample
        assert a.start_sample < a.end_sample


def test_durations_become_merged_monotonic_timings():
    symbols = [SIL, "o", "l", "ˈ", "a", "\u0303", " ", "k", "a", "?", SIL]
    samples = [600, 1200, 600, 600, 1800, 600, 300, 600, 1200, 1800, 600]
    timings = to_timings(symbols, samples, sum(samples), min_pause=1000)
    assert [t.phoneme for t in timings] == [SIL, "o", "l", "ˈa\u0303", "k", "a", SIL]
    assert_covers(timings, sum(samples))
    stressed = timings[3]
    assert (stressed.start_sample, stressed.end_sample) == (2400, 5400 + 300)  # mark + vowel + tilde + short gap


def test_long_word_gap_is_a_pause_and_edges_are_rescaled():
    timings = to_timings(["a", " ", "b"], [100, 5000, 100], 10_400, min_pause=1000)
    assert [t.phoneme for t in timings] == ["a", SIL, "b"]
    assert_covers(timings, 10_400)
    assert timings[1].end_sample - timings[1].start_sample == 10_000


def test_degenerate_inputs():
    assert to_timings([], [], 0) == ()
    assert to_timings(["a"], [0], 50)[0].phoneme == SIL
    with pytest.raises(ValueError):
        to_timings(["a", "b"], [1], 10)


def tone(seconds, rate=24_000, amp=0.3):
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_speech_bounds_find_onset_and_offset():
    rate = 24_000
    audio = np.concatenate([np.zeros(rate // 4), tone(0.5), np.zeros(rate // 2)]).astype(np.float32)
    start, end = speech_bounds(audio, rate)
    assert abs(start - rate // 4) <= rate // 100
    assert abs(end - (rate // 4 + rate // 2)) <= rate // 100
    assert speech_bounds(np.zeros(1000, np.float32), rate) == (0, 0)


def test_estimator_puts_silence_at_the_edges_and_the_pause_in_the_gap():
    rate = 24_000
    # 0.2 s silence, word (0.4 s), 0.3 s pause, word (0.4 s), 0.2 s silence
    audio = np.concatenate([np.zeros(4800), tone(0.4), np.zeros(7200), tone(0.4), np.zeros(4800)])
    symbols = [SIL, "b", "ˈ", "o", "a", ",", "n", "o", "j", "t", "ɪ", SIL]
    samples = estimate_samples(symbols, audio, rate)
    assert sum(samples) == len(audio) and min(samples) >= 0
    timings = to_timings(symbols, samples, len(audio), rate // 10)
    assert_covers(timings, len(audio))
    assert timings[0].phoneme == SIL and abs(timings[0].end_sample - 4800) <= 480
    assert timings[-1].phoneme == SIL and abs(timings[-1].start_sample - (len(audio) - 4800)) <= 480
    pause = [t for t in timings[1:-1] if t.phoneme == SIL]
    assert len(pause) == 1
    centre = (pause[0].start_sample + pause[0].end_sample) / 2
    assert 4800 + 9600 < centre < 4800 + 9600 + 7200  # inside the real gap


def test_trim_to_energy_gives_a_silent_tail_to_the_following_pause():
    from falante.types import PhonemeTiming
    from tts.timing import trim_to_energy

    rate = 24_000
    audio = np.concatenate([tone(0.2), np.zeros(rate // 2)]).astype(np.float32)  # vowel, then 0.5 s of silence
    timings = (PhonemeTiming("a", 0, 16_800), PhonemeTiming(SIL, 16_800, len(audio)))
    trimmed = trim_to_energy(timings, audio, rate)
    assert_covers(trimmed, len(audio))
    assert abs(trimmed[0].end_sample - int(0.2 * rate)) <= rate // 100
    assert trim_to_energy(timings, np.zeros_like(audio), rate) == timings  # silence: nothing to refine
