"""pt-BR IPA phonemes → the 15 Oculus visemes, and visemes → ARKit-52 mouth/jaw blendshapes.

Why this shape: openfacefx (MIT) already ships an IPA → Oculus table and an Oculus → ARKit retarget preset, so we
reuse both and only override what Portuguese needs: nasal vowels (ɐ̃ õ ẽ …, a slightly closed jaw plus a nasal
hold), nasal glides (w̃ j̃), the velar/glottal "r forte" (x h ʁ — no lip rounding), the palatals ɲ ʎ, and the
espeak-ng pt-br reductions (final "y"/"æ"). Diphthongs ("pão" → ɐ̃ʊ̃, "mãe" → ɐ̃j) are split into a nucleus and a
glide by `split_ipa`, so the mouth travels from one shape to the other instead of holding one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from functools import lru_cache

from openfacefx.ipa import IPA_MAPPING, is_ipa_vowel
from openfacefx.retarget import PRESETS

#: The Oculus/Meta lip-sync viseme order used on the wire (`falante.avatar.frames`).
VISEMES: tuple[str, ...] = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")
VISEME_INDEX = {name: i for i, name in enumerate(VISEMES)}
SILENCE = "_"  # pause token produced by `split_ipa` for spaces/punctuation

# openfacefx spells three vowels differently from the Oculus SDK names we put on the wire.
_OFX_TO_OCULUS = {"I": "ih", "O": "oh", "U": "ou"}
_STRESS_AND_LENGTH = frozenset("ˈˌːˑ'")
_MODIFIERS = frozenset("ʰʲʷ")  # spacing modifier letters that belong to the previous symbol
_TIE = "\u0361"
_AFFRICATES = ("tʃ", "dʒ", "ts", "dz")
_PAUSE_CHARS = frozenset(" \t\n.,;:!?…—-–\"“”()[]{}|‖")
_TILDE = "\u0303"
_SILENCE_WORDS = frozenset({"sil", "sp", "spn", "pau", "^", "$"})  # pause symbols of TTS/aligner timings

# pt-BR specifics, keyed by the bare symbol (stress/length removed, nasal tilde kept).
_PT_ROWS: dict[str, dict[str, float]] = {
    # reduced/central vowels: jaw less open than a full "a"
    "ɐ": {"aa": 0.75, "E": 0.25},
    "æ": {"aa": 0.65, "E": 0.35},  # espeak-ng pt-br: unstressed final "a" ("tia" → tʃiæ)
    "ə": {"aa": 0.6, "E": 0.4},
    "y": {"ih": 1.0},  # espeak-ng pt-br writes reduced final /i/ as "y" ("leite" → leɪtʃy)
    "ᵻ": {"ih": 1.0},
    # "r forte" is velar/uvular/glottal in Brazil: the lips stay neutral, so kk rather than the rounded RR
    "x": {"kk": 1.0}, "h": {"kk": 0.7, "aa": 0.3}, "ʁ": {"kk": 1.0}, "χ": {"kk": 1.0}, "ɦ": {"kk": 0.7, "aa": 0.3},
    "r": {"DD": 1.0}, "ɾ": {"DD": 1.0},  # alveolar trill/tap: tongue tip, like t/d
    "ɲ": {"nn": 0.7, "ih": 0.3},  # "ninho": palatal nasal spreads the lips a little
    "ʎ": {"DD": 0.7, "ih": 0.3},  # "filho"
    "ʧ": {"CH": 1.0}, "ʤ": {"CH": 1.0}, "ʦ": {"SS": 1.0}, "ʣ": {"SS": 1.0},
}
# Nasal vowels: the oral shape with the jaw a bit more closed and a nasal component (velum down, lips relaxed).
_NASAL_KEEP = 0.75


def _bare(symbol: str) -> str:
    """Drop stress/length/modifier marks and every combining mark except the nasal tilde."""
    out = []
    for ch in unicodedata.normalize("NFD", symbol):
        if ch in _STRESS_AND_LENGTH or ch in _MODIFIERS:
            continue
        if unicodedata.combining(ch) and ch != _TILDE:
            continue
        out.append(ch)
    return "".join(out)


def split_ipa(text: str) -> list[str]:
    """Split an IPA string into phoneme symbols: base letter + combining marks, affricates kept whole,
    stress/length marks dropped, each run of spaces/punctuation → one `SILENCE` token."""
    if text.strip() in _SILENCE_WORDS:
        return [SILENCE]
    tokens: list[str] = []
    for ch in unicodedata.normalize("NFD", text):
        if ch in _PAUSE_CHARS:
            if tokens and tokens[-1] != SILENCE or not tokens:
                tokens.append(SILENCE)
            continue
        if ch in _STRESS_AND_LENGTH:
            continue
        if tokens and tokens[-1] != SILENCE and (unicodedata.combining(ch) or ch in _MODIFIERS):
            tokens[-1] += ch
            continue
        if unicodedata.combining(ch) or ch in _MODIFIERS:
            continue  # a stray mark with nothing to attach to
        if tokens and tokens[-1].endswith(_TIE):
            tokens[-1] += ch  # t͡ʃ
            continue
        if tokens and tokens[-1] + ch in _AFFRICATES:
            tokens[-1] += ch
            continue
        tokens.append(ch)
    return [unicodedata.normalize("NFC", t) for t in tokens]


def is_vowel(symbol: str) -> bool:
    base = _bare(symbol).replace(_TILDE, "")
    return base in ("y", "ᵻ", "æ") or (bool(base) and is_ipa_vowel(base) and base not in ("j", "w"))


def is_silence(symbol: str) -> bool:
    return not _bare(symbol).strip() or all(ch in _PAUSE_CHARS for ch in symbol) or symbol.strip() in _SILENCE_WORDS


@lru_cache(maxsize=512)
def viseme_weights(symbol: str) -> tuple[float, ...]:
    """15 weights (summing to 1) for one phoneme symbol; unknown symbols and pauses → rest (`sil`)."""
    vec = [0.0] * len(VISEMES)
    if is_silence(symbol):
        vec[0] = 1.0
        return tuple(vec)
    bare = unicodedata.normalize("NFD", _bare(symbol))
    nasal = _TILDE in bare
    base = unicodedata.normalize("NFC", bare.replace(_TILDE, ""))
    if base in _PT_ROWS:
        row = _PT_ROWS[base]
    else:
        ofx = IPA_MAPPING.row(base)  # target index → weight, openfacefx names
        names = IPA_MAPPING.target_names
        row = {_OFX_TO_OCULUS.get(names[i], names[i]): w for i, w in ofx.items()}
    total = sum(row.values()) or 1.0
    for name, w in row.items():
        vec[VISEME_INDEX[name]] += w / total
    if nasal and vec[0] < 1.0:
        vec = [w * _NASAL_KEEP for w in vec]
        vec[VISEME_INDEX["nn"]] += 1.0 - _NASAL_KEEP
    return tuple(vec)


# --------------------------------------------------------------------------------------------- ARKit
_ARKIT_POSES: dict[str, dict[str, float]] = {
    _OFX_TO_OCULUS.get(vis, vis): dict(pose) for vis, pose in PRESETS["arkit"].items()
}
_ARKIT_POSES["sil"] = {}
#: The ARKit shapes visemes can drive (what a GLB needs for lip-sync).
ARKIT_MOUTH_SHAPES: tuple[str, ...] = tuple(sorted({n for pose in _ARKIT_POSES.values() for n in pose}))


def blendshapes_for(visemes: Sequence[float]) -> dict[str, float]:
    """ARKit-52 jaw/mouth weights as the viseme-weighted sum of per-viseme poses, clipped to [0, 1]."""
    if len(visemes) != len(VISEMES):
        raise ValueError(f"expected {len(VISEMES)} viseme weights, got {len(visemes)}")
    out: dict[str, float] = {}
    for name, w in zip(VISEMES, visemes):
        if w <= 0.0:
            continue
        for shape, amount in _ARKIT_POSES[name].items():
            out[shape] = out.get(shape, 0.0) + float(w) * amount
    return {k: min(1.0, v) for k, v in out.items() if v > 0.0}


def mouth_open(visemes: Sequence[float] | Mapping[str, float]) -> float:
    """How open the mouth is (ARKit jawOpen of the blend), the one number A/V sync and tests look at."""
    if isinstance(visemes, Mapping):
        return float(visemes.get("jawOpen", 0.0))
    return blendshapes_for(visemes).get("jawOpen", 0.0)
