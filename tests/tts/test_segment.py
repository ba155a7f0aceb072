"""Sentence and clause splitting under a token limit."""

from tts.segment import fit_pieces, split_sentences


def chars(text: str) -> str:  # a fake "G2P": one token per character
    return text


def test_split_sentences():
    assert split_sentences("Oi. Tudo bem? Sim! Até… logo") == ["Oi.", "Tudo bem?", "Sim!", "Até…", "logo"]
    assert split_sentences("  ") == []


def test_short_sentence_is_one_piece():
    assert fit_pieces("Oi, tudo bem?", chars, len, 50) == [("Oi, tudo bem?", "Oi, tudo bem?")]


def test_long_sentence_splits_at_commas_first():
    text = "Primeiro vamos ao mercado, depois passamos na farmácia, e no fim voltamos para casa."
    pieces = fit_pieces(text, chars, len, 40)
    assert all(len(ph) <= 40 for _, ph in pieces)
    assert " ".join(t for t, _ in pieces) == text
    assert pieces[0][0].endswith(",")


def test_without_punctuation_splits_before_conjunctions():
    text = "Eu queria saber qual é a melhor forma de chegar ao centro mas sem pegar trânsito nenhum"
    pieces = fit_pieces(text, chars, len, 60)
    assert all(len(ph) <= 60 for _, ph in pieces)
    assert any(t.startswith("mas ") for t, _ in pieces)
    assert " ".join(t for t, _ in pieces) == text


def test_a_single_huge_word_is_truncated_not_fatal():
    pieces = fit_pieces("a" * 100, chars, len, 30)
    assert len(pieces) == 1 and len(pieces[0][1]) <= 30


def test_every_piece_fits_for_many_limits():
    text = ("Minha família chega de Salvador no sábado, vocês têm algum passeio de barco pela baía com guia e "
            "almoço incluídos ou eu preciso reservar antes porque é feriado?")
    for limit in (12, 20, 33, 70, 500):
        pieces = fit_pieces(text, chars, len, limit)
        assert all(len(ph) <= limit for _, ph in pieces), limit
        assert " ".join(t for t, _ in pieces).replace(" ", "") == text.replace(" ", "")
