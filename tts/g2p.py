"""pt-BR grapheme-to-phoneme (IPA) behind one tiny function, `phonemize(text, engine)`.

Engines (see docs in the report / bench_tts.py for the round-trip comparison):
- "espeak"  : Debian's espeak-ng (GPL-3) run as a subprocess — a separate program, so falante (Apache-2.0) does not
              link GPL code. Default: best round-trip WER with Kokoro, with stress marks.
- "piper"   : the espeak-ng bundled in piper-tts (GPL-3, in-process C extension; the dev set's G2P). Optional.
- "gruut"   : gruut + gruut-lang-pt (MIT, pure Python); no stress marks.
Output keeps the clause punctuation (, . ? ! ; :) because Kokoro uses it for prosody (question intonation, pauses).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import unicodedata
from functools import lru_cache

__all__ = ["ENGINES", "G2PError", "phonemize", "split_clauses"]

ENGINES = ("espeak", "piper", "gruut")
_PUNCT = ",.;:!?"
_CLAUSE = re.compile(r"([^,.;:!?…]+)([,.;:!?…]*)")
# espeak/gruut symbols Kokoro's vocabulary lacks or voices badly → the closest Kokoro symbol (pt-BR fix-ups).
_FIXUPS = str.maketrans({"r": "ɾ", "æ": "ɐ", "y": "ɪ", "ɹ": "ɾ", "‖": "", "|": "", "g": "ɡ"})


class G2PError(RuntimeError):
    """The configured G2P engine is missing or failed; the message names the fix."""


def split_clauses(text: str) -> list[tuple[str, str]]:
    """"Oi, tudo bem?" → [("Oi", ","), ("tudo bem", "?")]; ellipses count as a comma-like pause."""
    out = []
    for words, punct in _CLAUSE.findall(text):
        words = words.strip()
        if words:
            mark = next((c for c in punct if c in _PUNCT), "," if "…" in punct else "")
            out.append((words, mark))
    return out


def _join(clauses: list[tuple[str, str]]) -> str:
    return " ".join(f"{ph}{mark}" for ph, mark in clauses if ph).strip()


# ------------------------------------------------------------------------------------------------ espeak
@lru_cache(maxsize=1)
def _espeak_binary() -> str:
    exe = shutil.which("espeak-ng") or shutil.which("espeak")
    if not exe:
        raise G2PError("espeak-ng is not installed: `apt-get install espeak-ng` (or use g2p engine 'gruut')")
    return exe


def _espeak_lines(text: str, voice: str) -> list[str]:
    proc = subprocess.run([_espeak_binary(), "-v", voice, "-q", "--ipa", "--stdin"], input=text.encode(),
                          capture_output=True, timeout=30, check=False)
    if proc.returncode:
        raise G2PError(f"espeak-ng failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[:200]}")
    return [line.strip() for line in proc.stdout.decode().splitlines() if line.strip()]


def _espeak(text: str, voice: str = "pt-br") -> str:
    clauses = split_clauses(text)
    if not clauses:
        return ""
    # One process for the whole text: espeak prints one line per clause; if its clause split differs from ours,
    # fall back to one call per clause so punctuation still lands in the right place.
    lines = _espeak_lines("\n".join(f"{w}{m or '.'}" for w, m in clauses), voice)
    if len(lines) != len(clauses):
        lines = [" ".join(_espeak_lines(w, voice)) for w, _ in clauses]
    return _join([(ph, m) for ph, (_, m) in zip(lines, clauses)])


# ------------------------------------------------------------------------------------------------- piper
_piper_lock = threading.Lock()


@lru_cache(maxsize=1)
def _piper_bridge():
    try:
        from piper import espeakbridge
        from piper.phonemize_espeak import ESPEAK_DATA_DIR
    except ImportError as exc:
        raise G2PError("g2p engine 'piper' needs piper-tts: `pip install piper-tts==1.8.0`") from exc
    espeakbridge.initialize(str(ESPEAK_DATA_DIR))
    return espeakbridge


def _piper(text: str, voice: str = "pt-br") -> str:
    bridge = _piper_bridge()
    with _piper_lock:  # espeak-ng keeps global state: one caller at a time
        bridge.set_voice(voice)
        clauses = bridge.get_phonemes(text)
    return _join([(re.sub(r"\([^)]+\)", "", ph), term) for ph, term, _ in clauses])


# ------------------------------------------------------------------------------------------------- gruut
def _gruut(text: str, voice: str = "pt") -> str:
    try:
        import gruut
    except ImportError as exc:
        raise G2PError("g2p engine 'gruut' needs `pip install gruut gruut-lang-pt`") from exc
    words = []
    for sentence in gruut.sentences(text, lang="pt"):
        for word in sentence:
            if word.is_break or word.is_punctuation:
                if words and word.text and word.text[0] in _PUNCT:
                    words[-1] += word.text[0]
            elif word.phonemes:
                words.append("".join(word.phonemes))
    return " ".join(words)


_BACKENDS = {"espeak": _espeak, "piper": _piper, "gruut": _gruut}


def phonemize(text: str, engine: str = "espeak") -> str:
    """pt-BR text (already normalized) → IPA string with stress marks and clause punctuation, NFD-decomposed
    (nasal tildes as separate combining characters, as Kokoro's vocabulary expects)."""
    if engine not in _BACKENDS:
        raise G2PError(f"unknown g2p engine {engine!r}; choose one of {ENGINES}")
    ipa = _BACKENDS[engine](text)
    ipa = unicodedata.normalize("NFD", ipa).translate(_FIXUPS)
    return re.sub(r"\s+", " ", ipa).strip()
