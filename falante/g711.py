"""G.711 μ-law / A-law (8 kHz telephony audio, `audio/pcmu` and `audio/pcma` in the Realtime API).

Vectorised with numpy (ITU-T G.711 segment tables); Python's `audioop` is gone from 3.13.
"""

from __future__ import annotations

import base64
import binascii

import numpy as np

from falante.audio import AudioFormatError

G711_RATE = 8000


def _ulaw_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign, exponent, mantissa = codes & 0x80, (codes >> 4) & 0x07, codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign, -magnitude, magnitude).astype(np.float32) / 32768.0


def _alaw_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    sign, exponent, mantissa = codes & 0x80, (codes >> 4) & 0x07, codes & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    return np.where(sign, magnitude, -magnitude).astype(np.float32) / 32768.0


_DECODE = {"audio/pcmu": _ulaw_table(), "audio/pcma": _alaw_table()}


def decode_g711(data: str, codec: str) -> np.ndarray:
    """base64 G.711 bytes → float32 8 kHz."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AudioFormatError(f"audio is not valid base64: {exc}") from None
    return _DECODE[codec][np.frombuffer(raw, dtype=np.uint8)]


def encode_g711(audio: np.ndarray, codec: str) -> str:
    """float32 8 kHz → base64 G.711, by nearest code in the decode table (exact inverse on decoded values)."""
    table = _DECODE[codec]
    order = np.argsort(table)
    sorted_vals = table[order]
    x = np.clip(np.nan_to_num(np.asarray(audio, dtype=np.float32)), -1.0, 1.0)
    idx = np.clip(np.searchsorted(sorted_vals, x), 1, 255)
    left, right = sorted_vals[idx - 1], sorted_vals[idx]
    nearest = np.where(np.abs(x - left) <= np.abs(right - x), idx - 1, idx)
    return base64.b64encode(order[nearest].astype(np.uint8).tobytes()).decode("ascii")
