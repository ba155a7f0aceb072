"""PiperSynthesizer with a random-weight Piper voice built offline from piper's VITS code."""

import importlib.util
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from falante.config import PiperSettings
from falante.types import SpeechSynthesizer
from tts.piper import PiperError, PiperSynthesizer
from tts.timing import SIL

pytestmark = pytest.mark.skipif(importlib.util.find_spec("piper") is None, reason="piper-tts not installed")
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="module")
def voice_dirs(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from piper_voice import build_random_piper_voice

    with warnings.catch_warnings():  # torch's exporter warns about constant folding of a random model
        warnings.simplefilter("ignore", UserWarning)
        single = build_random_piper_voice(tmp_path_factory.mktemp("piper1"))
        multi = build_random_piper_voice(tmp_path_factory.mktemp("piper2"), speakers=2, seed=1)
    return single, multi


@pytest.fixture(scope="module")
def piper(voice_dirs):
    synth = PiperSynthesizer(PiperSettings(model=str(voice_dirs[0])))
    synth.load()
    return synth


async def collect(tts, text, **kw):
    return [c async for c in tts.synthesize(text, **kw)]


async def test_synthesizes_with_model_alignments(piper):
    assert isinstance(piper, SpeechSynthesizer)
    assert piper.has_durations and piper.sample_rate == 22_050
    assert piper.voices() == ["pt_BR-random-tiny"]
    chunks = await collect(piper, "Olá, tudo bem? O combo custa R$ 25,90.")
    assert [c.text for c in chunks] == ["Olá, tudo bem?", "O combo custa vinte e cinco reais e noventa centavos."]
    for c in chunks:
        t = c.phonemes
        assert c.audio.dtype == np.float32 and len(c.audio) > 0 and c.sample_rate == 22_050
        assert t[0].start_sample == 0 and t[-1].end_sample == len(c.audio)
        assert all(a.end_sample == b.start_sample and a.start_sample < a.end_sample for a, b in zip(t, t[1:]))
        assert all(p.end_sample % 256 == 0 for p in t)  # model durations: whole hops of 256 samples
        assert any(p.phoneme.endswith("a") for p in t if p.phoneme != SIL)


async def test_speed_shortens_audio(piper):
    slow = sum(len(c.audio) for c in await collect(piper, "Bom dia a todos.", speed=0.5))
    fast = sum(len(c.audio) for c in await collect(piper, "Bom dia a todos.", speed=2.0))
    assert fast < slow


async def test_multi_speaker_voices(voice_dirs):
    synth = PiperSynthesizer(PiperSettings(model=str(voice_dirs[1])))
    synth.load()
    assert synth.voices() == ["speaker0", "speaker1"]
    chunks = await collect(synth, "Oi.", voice="speaker1")
    assert chunks and chunks[0].phonemes
    with pytest.raises(ValueError, match="unknown voice"):
        await collect(synth, "Oi.", voice="speaker9")


async def test_without_alignments_timings_are_estimated(voice_dirs):
    synth = PiperSynthesizer(PiperSettings(model=str(voice_dirs[0]), alignments=False))
    synth.load()
    assert not synth.has_durations
    (chunk,) = await collect(synth, "Bom dia.")
    assert chunk.phonemes[-1].end_sample == len(chunk.audio)


def test_loading_errors_name_the_fix(tmp_path, voice_dirs):
    with pytest.raises(PiperError, match="not an existing Piper .onnx"):
        PiperSynthesizer(PiperSettings(model="")).load()
    with pytest.raises(PiperError, match="not an existing Piper .onnx"):
        PiperSynthesizer(PiperSettings(model=str(tmp_path / "nope.onnx"))).load()
    lonely = tmp_path / "lonely.onnx"
    lonely.write_bytes(voice_dirs[0].read_bytes())
    with pytest.raises(PiperError, match="needs its .onnx.json"):
        PiperSynthesizer(PiperSettings(model=str(lonely))).load()
    (tmp_path / "lonely.onnx.json").write_text(json.dumps({"audio": {}}))
    with pytest.raises(PiperError, match="not a Piper voice config"):
        PiperSynthesizer(PiperSettings(model=str(lonely))).load()
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"junk")
    (tmp_path / "junk.onnx.json").write_text(Path(f"{voice_dirs[0]}.json").read_text())
    with pytest.raises(PiperError, match="cannot load"):
        PiperSynthesizer(PiperSettings(model=str(junk), alignments=False)).load()
