"""Sentence splitting over streamed deltas: early first sentence, no splits inside abbreviations or numbers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm.sentences import SentenceSplitter, split_sentences


def split(text: str, step: int = 1, **kwargs: int) -> list[str]:
    splitter = SentenceSplitter(**kwargs)
    out: list[str] = []
    for i in range(0, len(text), step):
        out += splitter.push(text[i : i + step])
    return out + splitter.flush()


@pytest.mark.parametrize("step", [1, 3, 1000])
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Olá! Tudo bem? Posso ajudar.", ["Olá!", "Tudo bem?", "Posso ajudar."]),
        ("O Sr. Silva chegou. A Dra. Ana também.", ["O Sr. Silva chegou.", "A Dra. Ana também."]),
        ("O ingresso custa R$ 2,50. Quer comprar?", ["O ingresso custa R$ 2,50.", "Quer comprar?"]),
        ("Vieram 3.500 pessoas. Foi ótimo.", ["Vieram 3.500 pessoas.", "Foi ótimo."]),
        ("A taxa é 2.5 por cento. Certo?", ["A taxa é 2.5 por cento.", "Certo?"]),
        ("Frutas, legumes, etc. e tal. Pronto.", ["Frutas, legumes, etc. e tal.", "Pronto."]),
        ("Temos frutas, legumes etc. Algo mais?", ["Temos frutas, legumes etc.", "Algo mais?"]),
        ("Bem... acho que sim. Hmm... Vamos lá!", ["Bem... acho que sim.", "Hmm...", "Vamos lá!"]),
        ("Pois é… deixa eu ver. Sim.", ["Pois é… deixa eu ver.", "Sim."]),
        ("Falei com J. Souza ontem. Ok.", ["Falei com J. Souza ontem.", "Ok."]),
        ('Ele disse "oi." Depois saiu.', ['Ele disse "oi."', "Depois saiu."]),
        ("Sério?! Não acredito.", ["Sério?!", "Não acredito."]),
        ("Primeira linha\nSegunda linha", ["Primeira linha", "Segunda linha"]),
        ("1. Abra o app.\n2. Clique em entrar.", ["1. Abra o app.", "2. Clique em entrar."]),
        ("Acesse falante.com.br. Lá tem tudo.", ["Acesse falante.com.br.", "Lá tem tudo."]),
    ],
)
def test_splits(text: str, expected: list[str], step: int) -> None:
    assert split(text, step) == expected


def test_first_sentence_is_emitted_as_soon_as_the_next_word_starts() -> None:
    splitter = SentenceSplitter()
    assert splitter.push("Claro.") == []  # could still be "Claro.com" or an abbreviation
    assert splitter.push(" ") == []  # the next word decides ("etc. e" vs "etc. E")
    assert splitter.push("O") == ["Claro."]
    assert splitter.push(" museu abre às 9h") == []
    assert splitter.flush() == ["O museu abre às 9h"]


def test_long_sentence_is_cut_at_a_clause() -> None:
    text = ("Eu gosto de frutas, legumes e verduras, mas também gosto muito de carne assada no domingo "
            "com a família toda reunida em casa")
    parts = split(text, clause_words=12)
    assert parts[0] == "Eu gosto de frutas, legumes e verduras,"
    assert " ".join(parts) == text


@pytest.mark.parametrize("step", [1, 4, 1000])
def test_the_reply_starts_on_its_first_long_enough_clause(step: int) -> None:
    text = "Claro, posso te ajudar com isso, basta me dizer o nome. Depois eu vejo, sem pressa nenhuma."
    assert split(text, step, first_clause_words=4) == [
        "Claro, posso te ajudar com isso,",  # "Claro," alone is too short to start on
        "basta me dizer o nome.",
        "Depois eu vejo, sem pressa nenhuma.",  # later sentences are cut only past clause_words
    ]
    assert split(text, step) == ["Claro, posso te ajudar com isso, basta me dizer o nome.",
                                 "Depois eu vejo, sem pressa nenhuma."]


def test_flush_makes_the_splitter_ready_for_the_next_reply() -> None:
    splitter = SentenceSplitter(first_clause_words=2)
    assert splitter.push("Bom dia, tudo bem ") == ["Bom dia,"]
    assert splitter.push("com você, amigo ") == []
    assert splitter.flush() == ["tudo bem com você, amigo"]
    assert splitter.push("Boa noite, até amanhã ") == ["Boa noite,"]


def test_no_clause_cut_inside_money() -> None:
    text = "O ingresso inteiro custa R$ 12,50 e a meia entrada custa R$ 6,25 para estudantes e professores"
    parts = split(text, clause_words=8)
    assert any("R$ 12,50" in p for p in parts) and any("R$ 6,25" in p for p in parts)
    assert " ".join(parts) == text


def test_bad_options() -> None:
    with pytest.raises(ValueError):
        SentenceSplitter(clause_words=2, min_clause_words=4)
    with pytest.raises(ValueError):
        SentenceSplitter(first_clause_words=0)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["Olá", "Sr.", "R$", "2,50", "3.500", "etc.", "...", "?", "!", ",", "casa",
                                 "Ele", "disse", ".", "\n", " ", "2.5", "…", "Dra."]), max_size=40),
       st.integers(1, 7))
def test_no_text_is_lost_or_invented(tokens: list[str], step: int) -> None:
    text = " ".join(tokens)
    for parts in (split(text, step), split(text, step, first_clause_words=1)):
        assert "".join(text.split()) == "".join("".join(parts).split())
        assert all(p == p.strip() and p for p in parts)


async def test_async_adapter() -> None:
    async def deltas():
        for piece in ["Oi", ". Tudo", " bem? Sim"]:
            yield piece

    assert [s async for s in split_sentences(deltas())] == ["Oi.", "Tudo bem?", "Sim"]
