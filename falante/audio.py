"""Audio helpers shared by the server, the CLI and the model packages: pcm16 <-> float32, resampling, WAV I/O.

Resampling uses soxr (a real band-limited resampler): a naive decimation would alias and hurt ASR.
"""

from __future__ import annotations

import base64
import binascii
import wave
from pathlib import Path

import numpy as np
import soxr


class AudioFormatError(ValueError):
    """Client audio that cannot be decoded (bad base64, odd byte count, …)."""


def decode_pcm16_base64(data: str) -> np.ndarray:
    """base64 little-endian pcm16 → float32 in [-1, 1]. Raises AudioFormatError with a clear reason."""
    if not isinstance(data, str):
        raise AudioFormatError("audio must be a base64 string")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AudioFormatError(f"audio is not valid base64: {exc}") from None
    return pcm16_bytes_to_float(raw)


def pcm16_bytes_to_float(raw: bytes) -> np.ndarray:
    if len(raw) % 2:
        raise AudioFormatError(f"pcm16 audio needs an even number of bytes, got {len(raw)}")
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16_bytes(audio: np.ndarray) -> bytes:
    """float32 → little-endian pcm16, clipping instead of wrapping; NaN/inf become silence."""
    clean = np.nan_to_num(np.asarray(audio, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return (np.clip(clean, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def encode_pcm16_base64(audio: np.ndarray) -> str:
    return base64.b64encode(float_to_pcm16_bytes(audio)).decode("ascii")


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Whole-buffer resampling (for streams use `StreamResampler`, which keeps filter state)."""
    if from_rate == to_rate:
        return np.asarray(audio, dtype=np.float32)
    return soxr.resample(np.asarray(audio, dtype=np.float32), from_rate, to_rate).astype(np.float32)


class StreamResampler:
    """Chunk-by-chunk resampling with state kept between chunks, so chunk edges do not click.

    soxr holds back its filter delay (~800 samples at 22.05 → 24 kHz, ~170 at 24 → 8 kHz): call `flush()` at the
    end of a stream (a reply, a committed utterance) or its last samples are never output.
    """

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self.from_rate, self.to_rate = from_rate, to_rate
        self._stream = None if from_rate == to_rate else soxr.ResampleStream(from_rate, to_rate, 1, dtype="float32")

    def __call__(self, chunk: np.ndarray, last: bool = False) -> np.ndarray:
        chunk = np.asarray(chunk, dtype=np.float32)
        if self._stream is None:
            return chunk
        return self._stream.resample_chunk(chunk, last=last)

    def flush(self) -> np.ndarray:
        """The samples still held in the filter; the resampler then starts a fresh stream (reusable)."""
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        tail = self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        self._stream.clear()
        return np.asarray(tail, dtype=np.float32)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a pcm16 WAV (any rate; channels are averaged) → (float32 mono, rate)."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise AudioFormatError(f"{path}: only 16-bit PCM WAV is supported")
        rate, channels = wav.getframerate(), wav.getnchannels()
        audio = pcm16_bytes_to_float(wav.readframes(wav.getnframes()))
    if channels > 1:
        audio = audio.reshape(-1, channels).mean(axis=1)
    return audio, rate


def write_wav(path: str | Path, audio: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(float_to_pcm16_bytes(audio))
