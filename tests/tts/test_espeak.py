"""The explicit espeak-ng fallback, and the factory that never falls back silently."""

import shutil

import numpy as np
import pytest

from falante.config import EspeakSettings, KokoroSettings
from tts import build_synthesizer
from tts.espeak import EspeakError, EspeakSynthesizer, parse_wav_stream
from tts.kokoro import KokoroError, KokoroSynthesizer

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


@needs_espeak
async def test_espeak_speaks_clauses_with_timings():
    synth = build_synthesizer(EspeakSettings())
    assert isinstance(synth, EspeakSynthesizer)
    synth.load()
    assert "pt-br" in synth.voices()
    chunks = [c async for c in synth.synthesize("Olá, tudo bem? São 14h30.")]
    assert [c.text for c in chunks] == ["Olá,", "tudo bem?", "São catorze e trinta."]
    for c in chunks:
        assert c.sample_rate == 22_050 and np.abs(c.audio).max() > 0.05
        assert c.phonemes[0].start_sample == 0 and c.phonemes[-1].end_sample == len(c.audio)


@needs_espeak
async def test_espeak_speed_changes_duration():
    synth = EspeakSynthesizer(EspeakSettings())
    synth.load()
    slow = sum([len(c.audio) async for c in synth.synthesize("Um dois três quatro cinco.", speed=0.6)])
    fast = sum([len(c.audio) async for c in synth.synthesize("Um dois três quatro cinco.", speed=1.6)])
    assert fast < slow * 0.7


def test_parse_wav_stream_rejects_garbage():
    with pytest.raises(EspeakError):
        parse_wav_stream(b"not a wav at all, definitely not a wav file......")


def test_factory_builds_the_configured_backend_without_loading():
    synth = build_synthesizer(KokoroSettings(model="/nonexistent/kokoro.onnx"))
    assert isinstance(synth, KokoroSynthesizer) and synth.loads == 0
    with pytest.raises(KokoroError):  # a broken neural config fails loudly: no silent espeak fallback
        synth.load()
