"""pt-BR phoneme → viseme mapping on real words, in the IPA that espeak-ng and gruut produce."""

import shutil
import subprocess

import pytest

from avatar import VISEMES, blendshapes_for, mouth_open, split_ipa, viseme_weights
from avatar.visemes import is_vowel


def top(symbol: str) -> str:
    w = viseme_weights(symbol)
    return VISEMES[max(range(len(w)), key=w.__getitem__)]


def word_visemes(ipa: str) -> list[str]:
    return [top(t) for t in split_ipa(ipa)]


# (word, espeak-ng `-v pt-br --ipa` output, gruut-lang-pt output joined, expected dominant visemes)
WORDS = [
    ("pão", "pˈɐ̃ʊ̃", "pɐ̃w̃", ["PP", "aa", "ou"]),
    ("mãe", "mˈɐ̃y", "mɐ̃j̃", ["PP", "aa", "ih"]),
    ("obrigado", "ˌobriɡˈadʊ", "obɾiɡɐdu", ["oh", "PP", "DD", "ih", "kk", "aa", "DD", "ou"]),
    ("ninho", "nˈiɲʊ", "nĩɲu", ["nn", "ih", "nn", "ou"]),
    ("filho", "fˈiljʊ", "fiʎu", None),
    ("sim", "sˈiŋ", "sĩ", None),
]


@pytest.mark.parametrize("word,espeak,gruut_ipa,expected", WORDS, ids=[w[0] for w in WORDS])
def test_words_map_to_expected_visemes(word, espeak, gruut_ipa, expected):
    for ipa in (espeak, gruut_ipa):
        got = word_visemes(ipa)
        if expected is not None:
            assert got == expected, (word, ipa, got)
        assert "sil" not in got, (word, ipa, got)


def test_diphthongs_split_into_nucleus_and_glide():
    assert split_ipa("pˈɐ̃ʊ̃") == ["p", "ɐ̃", "ʊ̃"]
    assert split_ipa("mɐ̃j̃") == ["m", "ɐ̃", "j̃"]
    # the mouth travels: open nucleus, then rounded (pão) or spread (mãe) glide
    assert mouth_open(viseme_weights("ɐ̃")) > mouth_open(viseme_weights("ʊ̃")) + 0.15
    assert top("w̃") == "ou" and top("j̃") == "ih"


def test_nasal_vowels_close_the_jaw_a_little_and_keep_their_vowel():
    for oral, nasal in (("a", "ã"), ("e", "ẽ"), ("i", "ĩ"), ("o", "õ"), ("u", "ũ"), ("ɐ", "ɐ̃")):
        assert top(oral) == top(nasal)
        assert mouth_open(viseme_weights(nasal)) < mouth_open(viseme_weights(oral)) or top(oral) in ("ou", "ih")
        assert viseme_weights(nasal)[VISEMES.index("nn")] > 0
    assert is_vowel("ɐ̃") and is_vowel("ˈa") and not is_vowel("ɲ") and not is_vowel("j")


def test_palatals_and_r_sounds():
    assert top("ɲ") == "nn" and top("ʎ") == "DD"
    assert viseme_weights("ɲ")[VISEMES.index("ih")] > 0  # "ninho" spreads the lips
    for r_forte in ("x", "ʁ", "h"):  # Brazilian "carro", "rio": no lip rounding
        assert top(r_forte) == "kk"
    assert top("ɾ") == "DD"
    assert word_visemes("tʃˈiæ")[0] == "CH" and word_visemes("t͡ʃia")[0] == "CH"


def test_silence_and_unknown_symbols_rest():
    for s in ("_", " ", "ˈ", "sil", "?", "☃"):
        w = viseme_weights(s)
        assert w[0] == 1.0 and sum(w) == pytest.approx(1.0)
    assert split_ipa("olá, tudo") == ["o", "l", "á", "_", "t", "u", "d", "o"]
    assert top("á") == "aa"
    assert split_ipa("  ") == ["_"]


def test_weights_are_a_partition_for_every_symbol():
    for s in "abdefɡijklmnoprstuvwxzɐɛɔʃʒɲʎɾʁŋʊyæ" + "ãẽĩõũ":
        w = viseme_weights(s)
        assert len(w) == 15 and min(w) >= 0 and sum(w) == pytest.approx(1.0), s


def test_blendshapes_from_visemes():
    rest = blendshapes_for(viseme_weights("_"))
    assert rest == {}
    aa = blendshapes_for(viseme_weights("a"))
    pp = blendshapes_for(viseme_weights("p"))
    ou = blendshapes_for(viseme_weights("u"))
    assert aa["jawOpen"] > 0.5 and pp.get("jawOpen", 0) == 0 and pp["mouthPressLeft"] > 0.3
    assert ou["mouthPucker"] > 0.5
    assert all(0.0 < v <= 1.0 for v in {**aa, **pp, **ou}.values())
    with pytest.raises(ValueError, match="15"):
        blendshapes_for([1.0, 0.0])


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_espeak_ng_output_of_a_sentence_has_no_unknown_symbols():
    text = "Olá, bom dia! O pão e a mãe estão no ninho do filho. Sim, obrigado, carro, trabalho, muito."
    ipa = subprocess.run(["espeak-ng", "-v", "pt-br", "--ipa", "-q", text], capture_output=True, text=True,
                         check=True).stdout
    tokens = [t for t in split_ipa(ipa) if t != "_"]
    assert len(tokens) > 40
    unknown = [t for t in tokens if viseme_weights(t)[0] == 1.0]
    assert unknown == []
