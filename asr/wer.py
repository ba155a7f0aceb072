"""Word error rate the way the dev set's README defines it (shared by tests/asr and scripts/bench_asr.py).

Why: Whisper writes "R$ 25,90" and "14h30" while the references are spelled out; without expanding the hypothesis,
WER would mostly measure formatting. Only the hypothesis is expanded; accents are kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from num2words import num2words


def _words(number: int) -> str:
    return num2words(number, lang="pt_BR")


def _feminine(words: str) -> str:
    """Hours are feminine in Portuguese ("duas horas", "uma e meia")."""
    return re.sub(r"\b(um|dois)\b", lambda m: {"um": "uma", "dois": "duas"}[m.group(1)], words)


def _int(text: str) -> int:
    return int(text.replace(".", ""))


def _money(m: re.Match) -> str:
    reais, cents = _int(m.group(1)), int(m.group(2) or 0)
    out = f"{_words(reais)} {'real' if reais == 1 else 'reais'}"
    if cents:
        out += f" e {_words(cents)} {'centavo' if cents == 1 else 'centavos'}"
    return out


def _time(m: re.Match) -> str:
    hours, minutes = int(m.group(1)), m.group(2)
    if minutes and int(minutes):
        return f"{_feminine(_words(hours))} e {_words(int(minutes))}"
    return f"{_feminine(_words(hours))} horas"


_RULES: list[tuple[re.Pattern, object]] = [
    (re.compile(r"R\$\s*(\d{1,3}(?:\.\d{3})+|\d+)(?:,(\d{1,2}))?"), _money),
    (re.compile(r"\b(\d{1,2})\s*(?:h|:)(\d{2})?\b(?:min\b)?"), _time),
    (re.compile(r"(\d+)\s*%"), lambda m: f"{_words(int(m.group(1)))} por cento"),
    (re.compile(r"\b(\d+)\s*[ºª°]"), lambda m: num2words(int(m.group(1)), lang="pt_BR", to="ordinal")),
    (re.compile(r"\b(\d+),(\d+)\b"), lambda m: f"{_words(int(m.group(1)))} vírgula {_words(int(m.group(2)))}"),
    (re.compile(r"\b\d{1,3}(?:\.\d{3})+\b|\b\d+\b"), lambda m: _words(_int(m.group(0)))),
]


def spoken_form(text: str) -> str:
    """Expand prices, times, percentages, ordinals and numbers into pt-BR words."""
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)  # type: ignore[arg-type]
    return text


def normalize(text: str, *, expand: bool = True) -> str:
    """Lowercase, expand numbers (hypotheses), strip punctuation, hyphens → spaces, collapse whitespace."""
    if expand:
        text = spoken_form(text)
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def corpus_wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Total word errors / total reference words (jiwer), references normalized without number expansion."""
    import jiwer  # dev dependency: only evaluation code needs it

    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    refs = [normalize(r, expand=False) for r in references]
    hyps = [normalize(h) for h in hypotheses]
    if not any(refs):
        raise ValueError("WER needs at least one non-empty reference")
    out = jiwer.process_words(refs, hyps)
    return (out.substitutions + out.deletions + out.insertions) / sum(len(r.split()) for r in refs)
