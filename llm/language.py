"""Guard that a reply is Portuguese, and a check that it is speakable (no markdown left in it).

Why a stop-word scorer and not a library: replies are one or two sentences, where n-gram detectors (langid,
lingua) confuse pt/es/gl and add 10–100 MB; the failure we guard against is the small model drifting into
English, Spanish or Chinese, which function words and script reveal at once. Cleaning markdown/emojis for speech
lives in `tts.normalize.strip_markup` (the server applies it before TTS); this module only detects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Frequent function words that are (nearly) exclusive to one of the languages a small model drifts into.
_STOPWORDS: dict[str, frozenset[str]] = {
    "pt": _words(
        "não você vocês é são também muito uma umas um uns do da dos das no na nos nas ao aos pelo pela pelos "
        "pelas isso isto este esta esse essa aquele aquela então mas mais ou eu ele ela nós eles elas seu sua "
        "seus suas meu minha tem têm está estão foi ser ter fazer pode posso podemos vou vai aqui ali onde "
        "quando como porque obrigado obrigada olá oi sim bem hoje amanhã agora já ainda só até sobre entre "
        "depois antes sempre nunca nada tudo algo alguém tchau bom boa dia noite tarde em de que se o a os as "
        "com para por às à pra pro né tá"
    ),
    "es": _words(
        "el los las del y es está usted ustedes pero muy también con una hola gracias sí puedo hoy aquí yo "
        "tiene hay eso esto este esta ese esa cuando como porque qué cómo dónde buenos buenas días noches "
        "le les lo al su sus mi mis tu tus nosotros ellos ellas ser hacer puede podemos voy va allí donde "
        "entonces más o nada todo algo alguien siempre nunca ahora ya todavía solo hasta sobre entre después "
        "antes mañana adiós en de que se la por para"
    ),
    "en": _words(
        "the and is are you your it this that of to in for on with as was were be have has had not but or "
        "what how where when why can will would i we they he she my our their hello thanks thank yes no "
        "there here an a do does did at by from about today"
    ),
}
# Letters that only one of the candidate languages uses.
_LETTERS = {"pt": "ãõçâêô", "es": "ñ¿¡"}


@dataclass(frozen=True)
class LanguageScore:
    """Best-guess language of a text and the per-language scores it came from."""

    language: str | None  # "pt" | "es" | "en" | "zh" (any CJK) | "ru" | None (too little text to say)
    scores: dict[str, float]


def score_language(text: str) -> LanguageScore:
    """Score `text` by exclusive function words and letters; CJK or Cyrillic script decides alone."""
    letters = [c for c in text if c.isalpha()]
    if letters and len(_CJK.findall(text)) / len(letters) > 0.2:
        return LanguageScore("zh", {})
    if letters and len(_CYRILLIC.findall(text)) / len(letters) > 0.2:
        return LanguageScore("ru", {})
    words = [w.lower() for w in _WORD.findall(text)]
    scores = {lang: 0.0 for lang in _STOPWORDS}
    for word in words:
        hits = [lang for lang, vocab in _STOPWORDS.items() if word in vocab]
        for lang in hits:
            scores[lang] += 1.0 / len(hits)  # shared words ("que", "de") count less
    lowered = text.lower()
    for lang, chars in _LETTERS.items():
        scores[lang] += 2.0 * sum(lowered.count(c) for c in chars)
    best = max(scores, key=scores.get)
    if scores[best] < 1.0:
        return LanguageScore(None, scores)
    return LanguageScore(best, scores)


def is_portuguese(text: str, *, min_words: int = 3) -> bool:
    """False only when `text` is clearly another language; too-short or undecidable text passes."""
    if len(_WORD.findall(text)) < min_words and not _CJK.search(text):
        return True
    found = score_language(text).language
    return found in (None, "pt")


_MARKDOWN = re.compile(
    r"(\*\*[^*]+\*\*|__[^_]+__|`[^`]+`|^\s{0,3}#{1,6}\s|^\s*(?:[-*+•]|\d+[.)])\s+\S|\[[^\]]+\]\([^)]+\)|^\s*\|.*\|)",
    re.MULTILINE,
)
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\U00002600-\U000027BF\U0001F1E6-\U0001F1FF]")


def has_markup(text: str) -> bool:
    """True when `text` has markdown (bold, code, headings, lists, links, tables) or emojis: not speech-ready."""
    return bool(_MARKDOWN.search(text) or _EMOJI.search(text))
