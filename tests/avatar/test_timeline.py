"""Timeline: frames on a fixed fps grid of the response's output clock, smoothed, continuous, resting at the end."""

import json
import math

import numpy as np
import pytest

from avatar import VISEMES, Timeline, frames_to_wire, mouth_open
from falante.types import PhonemeTiming, SpeechChunk

SR = 24_000
AA = VISEMES.index("aa")
PP = VISEMES.index("PP")


def make_chunk(phones, rate=SR, lead=0.1, tail=0.1, text=""):
    """phones: [(ipa, seconds)] laid end to end after `lead` seconds of silence."""
    t, timings = int(lead * rate), []
    for sym, dur in phones:
        n = int(dur * rate)
        timings.append(PhonemeTiming(sym, t, t + n))
        t += n
    return SpeechChunk(np.zeros(t + int(tail * rate), np.float32), rate, tuple(timings), text)


PAPAI = [("p", 0.07), ("a", 0.14), ("p", 0.07), ("a", 0.14), ("j", 0.08)]


def test_frames_are_stamped_on_the_fps_grid_of_the_response_clock():
    tl = Timeline(fps=30, sample_rate=SR)
    c1 = make_chunk(PAPAI)
    f1 = tl.frames_for(c1, 0, SR)
    end1 = len(c1.audio)
    assert [f.sample for f in f1] == [round(k * SR / 30) for k in range(math.ceil(end1 * 30 / SR))]
    f2 = tl.frames_for(make_chunk(PAPAI), end1, SR)
    assert f2[0].sample == f1[-1].sample + 800 and f2[0].sample >= end1
    assert all(b.sample - a.sample == 800 for a, b in zip(f2, f2[1:]))


def test_sixty_fps_and_a_chunk_rate_different_from_the_output_rate():
    tl = Timeline(fps=60, sample_rate=48_000)
    c = make_chunk(PAPAI, rate=SR)  # TTS at 24 kHz, session output at 48 kHz
    frames = tl.frames_for(c, 0, 48_000)
    assert all(b.sample - a.sample == 800 for a, b in zip(frames, frames[1:]))
    assert frames[-1].sample < 2 * len(c.audio) <= frames[-1].sample + 800
    # the first "a" spans 0.17 s .. 0.31 s of the chunk → 8160 .. 14880 at 48 kHz
    mid_a = next(f for f in frames if f.sample >= 0.24 * 48_000)
    assert VISEMES[int(np.argmax(mid_a.visemes))] == "aa"


def test_mouth_follows_the_phonemes_and_rests_in_silence():
    tl = Timeline(fps=60, sample_rate=SR)
    frames = tl.frames_for(make_chunk(PAPAI, lead=0.3), 0, SR) + tl.finish()
    by_time = {round(f.sample / SR, 4): f for f in frames}
    lead = [f for t, f in by_time.items() if t < 0.2]
    assert all(f.visemes[0] > 0.95 for f in lead)
    during_a = [f for f in frames if 0.40 * SR <= f.sample <= 0.46 * SR]
    assert during_a and all(mouth_open(f.visemes) > 0.4 for f in during_a)
    at_p = min(frames, key=lambda f: abs(f.sample - 0.335 * SR))
    assert at_p.visemes[PP] > at_p.visemes[AA]  # lips close for the 2nd "p" despite the open vowels around it
    assert mouth_open(at_p.visemes) < 0.25


def test_coarticulation_smooths_instead_of_snapping():
    def max_step(smoothing):
        tl = Timeline(fps=60, sample_rate=SR, smoothing_ms=smoothing)
        fr = tl.frames_for(make_chunk(PAPAI), 0, SR)
        return max(float(np.abs(np.subtract(a.visemes, b.visemes)).max()) for a, b in zip(fr, fr[1:]))

    assert max_step(0) == pytest.approx(1.0)  # no smoothing: shapes switch in one frame
    assert max_step(40) < 0.75
    assert max_step(80) < max_step(40)


def test_continuity_across_chunks_matches_one_big_chunk():
    whole = Timeline(fps=30, sample_rate=SR)
    ref = whole.frames_for(make_chunk(PAPAI + PAPAI, tail=0.0), 0, SR)
    split = Timeline(fps=30, sample_rate=SR)
    c1 = make_chunk(PAPAI, tail=0.0)
    c2 = make_chunk(PAPAI, lead=0.0, tail=0.0)
    got = split.frames_for(c1, 0, SR) + split.frames_for(c2, len(c1.audio), SR)
    assert [f.sample for f in got] == [f.sample for f in ref]
    boundary = len(c1.audio)
    for a, b in zip(got, ref):
        diff = float(np.abs(np.subtract(a.visemes, b.visemes)).max())
        if abs(a.sample - boundary) > 0.2 * SR:
            assert diff < 1e-4  # exponential tails: e^-10 of a neighbour 0.2 s away
        else:  # only the frames just before the split lacked the next chunk's context
            assert diff < 0.5
    steps = [float(np.abs(np.subtract(a.visemes, b.visemes)).max()) for a, b in zip(got, got[1:])]
    assert max(steps) < 0.9


def test_gap_between_chunks_is_filled_with_rest_frames():
    tl = Timeline(fps=30, sample_rate=SR)
    c = make_chunk(PAPAI, lead=0.0, tail=0.0)
    tl.frames_for(c, 0, SR)
    later = tl.frames_for(c, len(c.audio) + SR, SR)  # one second of silence on the clock
    gap = [f for f in later if len(c.audio) + 0.2 * SR < f.sample < len(c.audio) + 0.8 * SR]
    assert gap and all(f.visemes[0] > 0.99 for f in gap)


def test_finish_ends_at_rest_after_the_audio():
    tl = Timeline(fps=30, sample_rate=SR, expression="happy")
    c = make_chunk(PAPAI, tail=0.0)
    frames = tl.frames_for(c, 0, SR)
    tail = tl.finish(len(c.audio) + 4000)
    last = tail[-1]
    assert last.sample >= len(c.audio) + 4000 and last.visemes[0] == 1.0 and sum(last.visemes) == 1.0
    assert "jawOpen" not in last.blendshapes and last.blendshapes.get("mouthSmileLeft", 0) > 0  # still happy
    assert [f.sample for f in frames + tail] == sorted({f.sample for f in frames + tail})
    assert tl.finish() == []
    with pytest.raises(RuntimeError):
        tl.frames_for(c, 0, SR)


def test_kokoro_style_split_marks_and_one_token_diphthongs():
    # Kokoro tokenizes per character: the nasal tilde and stress marks arrive as their own timings.
    kok = make_chunk([("p", 0.06), ("ˈ", 0.01), ("ɐ", 0.1), ("\u0303", 0.02), ("ʊ", 0.06), ("\u0303", 0.02)])
    gru = make_chunk([("p", 0.06), ("ɐ̃w̃", 0.21)])  # gruut: one token for the nasal diphthong
    for chunk in (kok, gru):
        tl = Timeline(fps=60, sample_rate=SR, smoothing_ms=10)
        frames = tl.frames_for(chunk, 0, SR)
        tops = [VISEMES[int(np.argmax(f.visemes))] for f in frames]
        inner = [t for t in tops if t != "sil"]
        assert inner[0] == "PP" and "aa" in inner and inner[-1] == "ou", tops
        nasal = [f for f in frames if VISEMES[int(np.argmax(f.visemes))] == "aa"]
        assert all(f.visemes[VISEMES.index("nn")] > 0.1 for f in nasal)


def test_energy_fallback_without_phoneme_timings():
    t = np.arange(SR) / SR
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) * ((t > 0.3) & (t < 0.7))).astype(np.float32)
    tl = Timeline(fps=30, sample_rate=SR)
    frames = tl.frames_for(SpeechChunk(audio, SR), 0, SR)
    loud = [mouth_open(f.visemes) for f in frames if 0.4 * SR < f.sample < 0.6 * SR]
    quiet = [mouth_open(f.visemes) for f in frames if f.sample < 0.2 * SR or f.sample > 0.85 * SR]
    assert min(loud) > 0.3 and max(quiet) < 0.05


def test_expression_from_chunk_text_or_explicit():
    tl = Timeline()
    f = tl.frames_for(make_chunk(PAPAI, text="Que bom, muito obrigado!"), 0)
    assert f[0].expression == "happy"
    f = tl.frames_for(make_chunk(PAPAI), 100_000, expression="concerned")
    assert f[-1].expression == "concerned" and f[-1].blendshapes["browInnerUp"] > 0


def test_bad_input_is_refused_with_a_message():
    with pytest.raises(ValueError, match="fps"):
        Timeline(fps=0)
    with pytest.raises(ValueError, match="expression"):
        Timeline(expression="angry")
    tl = Timeline(sample_rate=SR)
    with pytest.raises(ValueError, match="out_rate"):
        tl.frames_for(make_chunk(PAPAI), 0, 16_000)
    with pytest.raises(ValueError, match="start_sample"):
        tl.frames_for(make_chunk(PAPAI), -5)


def test_frames_to_wire_is_compact_json():
    tl = Timeline(fps=30, sample_rate=SR)
    frames = tl.frames_for(make_chunk(PAPAI), 0) + tl.finish()
    wire = frames_to_wire(frames)
    json.dumps(wire)
    assert len(wire) == len(frames)
    for w in wire:
        assert len(w["visemes"]) == 15 and all(v == round(v, 3) for v in w["visemes"])
        assert all(0 < v <= 1 and v == round(v, 3) for v in w["blendshapes"].values())
    assert wire[-1]["blendshapes"] == {} and wire[-1]["visemes"][0] == 1.0


def test_kokoro_pause_symbols_and_trailing_silence_inside_a_phoneme_rest_the_mouth():
    # Kokoro-style timings: "sil" pauses, and a final vowel whose duration runs 0.4 s into the trailing silence
    t = np.arange(int(1.2 * SR)) / SR
    audio = (0.3 * np.sin(2 * np.pi * 200 * t) * ((t >= 0.2) & (t < 0.6))).astype(np.float32)
    timings = (PhonemeTiming("sil", 0, int(0.2 * SR)), PhonemeTiming("d", int(0.2 * SR), int(0.26 * SR)),
               PhonemeTiming("ˈi", int(0.26 * SR), int(0.4 * SR)), PhonemeTiming("ɐ", int(0.4 * SR), int(1.0 * SR)),
               PhonemeTiming("sil", int(1.0 * SR), int(1.2 * SR)))
    tl = Timeline(fps=60, sample_rate=SR)
    frames = tl.frames_for(SpeechChunk(audio, SR, timings), 0, SR)
    active = [f.sample / SR for f in frames if f.visemes[0] < 0.5]
    assert 0.17 <= active[0] <= 0.23  # no "s i l" letters: the mouth starts with the sound
    assert 0.56 <= active[-1] <= 0.64  # and closes when the sound stops, not when the stretched "ɐ" ends
    assert all(f.visemes[0] > 0.95 for f in frames if f.sample > 0.75 * SR)
