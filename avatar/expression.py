"""A tiny pt-BR sentiment heuristic for the avatar's expression (happy / neutral / concerned / surprised).

Why a word list and not a model: it runs per sentence on the server's hot path in microseconds, needs no
weights, and the LLM can still request an expression explicitly (the server passes it to the Timeline).
Matching is accent-insensitive ("voce" = "você") and a negation right before a positive word ("não é bom")
counts against it.
"""

from __future__ import annotations

import re
import unicodedata

EXPRESSIONS: tuple[str, ...] = ("neutral", "happy", "concerned", "surprised")

_HAPPY = (
    "obrigad", "otim", "legal", "feliz", "parabens", "que bom", "adoro", "adorei", "amo ", "maravilh", "excelente",
    "perfeit", "prazer", "bem-vind", "bem vind", "alegr", "divert", "bom dia", "boa tarde", "boa noite", "oba",
    "show", "bacana", "lind", "gostei", "gosto", "claro", "com certeza", "sucesso", "incrivel", "fantastic",
    "beleza", "sorte",
)
_CONCERNED = (
    "desculp", "infelizmente", "lament", "sinto muito", "problema", "erro", "nao consigo", "nao posso", "cuidado",
    "preocup", "triste", "dificil", "perig", "doen", "dor", "acidente", "urgente", "emergencia", "perd",
    "nao sei", "falh", "ruim", "pena", "grave", "medo", "socorro", "nao entendi",
)
_SURPRISED = ("uau", "nossa", "serio?", "caramba", "que surpresa", "minha nossa", "puxa", "eita", "jura?", "nao acredito")
_NEGATIONS = ("nao", "nem", "nunca", "jamais")


def _fold(text: str) -> str:
    """Lower-case, accents removed, punctuation (but ? and !) → spaces, padded so cues match at word starts."""
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " " + re.sub(r"[^\w?!-]+", " ", text) + " "


def _count(text: str, cues: tuple[str, ...]) -> int:
    return sum(text.count(" " + cue) for cue in cues)


def _negated_positive(text: str) -> int:
    """Positive cues preceded within two words by a negation ("não estou feliz")."""
    words = re.findall(r"[\w-]+", text)
    hits = 0
    for i, word in enumerate(words):
        if any(word.startswith(cue.strip()) for cue in _HAPPY if " " not in cue.strip()):
            if any(w in _NEGATIONS for w in words[max(0, i - 2):i]):
                hits += 1
    return hits


def expression_for(text: str) -> str:
    """The expression a reply sentence suggests; "neutral" when nothing stands out."""
    if not isinstance(text, str):
        raise TypeError(f"expression_for needs a str, got {type(text).__name__}")
    folded = _fold(text)
    if not folded.strip():
        return "neutral"
    negated = _negated_positive(folded)
    happy = _count(folded, _HAPPY) - negated
    concerned = _count(folded, _CONCERNED) + negated
    surprised = _count(folded, _SURPRISED) + (1 if "?!" in text or "!?" in text else 0)
    if surprised and surprised >= max(happy, concerned):
        return "surprised"
    if concerned > happy:
        return "concerned"
    if happy > concerned or (happy > 0 and text.rstrip().endswith("!")):
        return "happy"
    return "neutral"


# ARKit weights each expression adds on top of lip-sync (brows/cheeks/mouth corners; never the jaw).
EXPRESSION_BLENDSHAPES: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {"mouthSmileLeft": 0.45, "mouthSmileRight": 0.45, "cheekSquintLeft": 0.3, "cheekSquintRight": 0.3,
              "eyeSquintLeft": 0.15, "eyeSquintRight": 0.15},
    "concerned": {"browInnerUp": 0.6, "browDownLeft": 0.2, "browDownRight": 0.2, "mouthFrownLeft": 0.3,
                  "mouthFrownRight": 0.3},
    "surprised": {"browInnerUp": 0.5, "browOuterUpLeft": 0.6, "browOuterUpRight": 0.6, "eyeWideLeft": 0.5,
                  "eyeWideRight": 0.5},
}
