"""Portuguese guard and markup check on short replies."""

from __future__ import annotations

import pytest

from llm.language import has_markup, is_portuguese, score_language


@pytest.mark.parametrize("text", [
    "A capital do Brasil é Brasília.",
    "Claro, posso ajudar você com isso.",
    "O museu abre às nove horas e fecha às seis da tarde.",
    "Olá! Como posso ajudar hoje?",
    "Não sei, mas posso perguntar para a equipe.",
    "Sim!",  # too short to judge: passes
])
def test_portuguese_passes(text: str) -> None:
    assert is_portuguese(text)


@pytest.mark.parametrize(("text", "language"), [
    ("The museum opens at nine and closes at six.", "en"),
    ("Sorry, I can only answer in English.", "en"),
    ("La capital de Brasil es Brasilia y tiene muchos parques.", "es"),
    ("Hola, ¿cómo estás? Puedo ayudarte hoy.", "es"),
    ("巴西的首都是巴西利亚。", "zh"),
])
def test_other_languages_are_caught(text: str, language: str) -> None:
    assert not is_portuguese(text)
    assert score_language(text).language == language


@pytest.mark.parametrize(("text", "markup"), [
    ("**Olá**, tudo bem?", True),
    ("1. Abra o aplicativo", True),
    ("- item da lista", True),
    ("## Título", True),
    ("Veja [o site](http://x.com)", True),
    ("Oi 😀", True),
    ("Use `pip install`", True),
    ("O ingresso custa R$ 2,50 e a entrada é às 9h.", False),
    ("Em 2024, vieram 3.500 pessoas - um recorde.", False),
])
def test_has_markup(text: str, markup: bool) -> None:
    assert has_markup(text) is markup
