"""Split normalized text into sentences, and sentences into pieces that fit a model's token limit.

Why: Kokoro takes at most 510 phoneme tokens per call and streaming wants short units; a long sentence is cut at
its best clause boundary (punctuation, then conjunctions such as "e", "mas", "porque", then any space) nearest to
its middle, recursively, so pieces stay natural phrases.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["fit_pieces", "split_sentences"]

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=\S)")
_CONJUNCTIONS = ("e", "mas", "ou", "porém", "porque", "pois", "que", "quando", "se", "então", "enquanto", "como")
_BOUNDARIES = (
    re.compile(r"(?<=[,;:—])\s+"),
    re.compile(rf"\s+(?=(?:{'|'.join(_CONJUNCTIONS)})\s)", re.IGNORECASE),
    re.compile(r"\s+"),
)


def split_sentences(text: str) -> list[str]:
    """"Oi. Tudo bem?" → ["Oi.", "Tudo bem?"]."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _cut(text: str) -> tuple[str, str] | None:
    """The most natural place to cut `text` in two: best boundary class first, then closest to the middle."""
    middle = len(text) / 2
    for pattern in _BOUNDARIES:
        spots = [m for m in pattern.finditer(text) if 0 < m.start() and m.end() < len(text)]
        if spots:
            best = min(spots, key=lambda m: abs(m.start() - middle))
            return text[: best.start()].strip(), text[best.end():].strip()
    return None


def fit_pieces(text: str, phonemize: Callable[[str], Any], count: Callable[[Any], int], limit: int,
               ) -> list[tuple[str, Any]]:
    """[(text, phonemes)] whose token counts are ≤ `limit`; a word that alone exceeds it is truncated.

    `phonemes` is whatever `phonemize` returns (an IPA string for Kokoro, a phoneme list for Piper)."""
    phonemes = phonemize(text)
    if count(phonemes) <= limit:
        return [(text, phonemes)] if phonemes else []
    halves = _cut(text)
    if halves is None:  # a single absurdly long "word": keep what fits rather than fail the whole reply
        kept = phonemes
        while kept and count(kept) > limit:
            kept = kept[: len(kept) * limit // max(count(kept), 1) or len(kept) - 1]
        return [(text, kept)] if kept else []
    return [piece for half in halves for piece in fit_pieces(half, phonemize, count, limit)]
