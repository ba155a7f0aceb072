import pytest

from avatar import EXPRESSIONS, expression_for
from avatar.expression import EXPRESSION_BLENDSHAPES


@pytest.mark.parametrize("text,expected", [
    ("Que bom! Fico muito feliz em ajudar.", "happy"),
    ("Obrigado pela visita, foi um prazer.", "happy"),
    ("Desculpe, não consegui entender.", "concerned"),
    ("Infelizmente o museu está fechado hoje.", "concerned"),
    ("Não estou feliz com isso.", "concerned"),
    ("Nossa, sério?", "surprised"),
    ("O museu abre às nove horas.", "neutral"),
    ("", "neutral"),
    ("Eu adoro o Rio de Janeiro!", "happy"),  # "adoro" must not match the "dor" (pain) cue
])
def test_expression_for(text, expected):
    assert expression_for(text) == expected


def test_every_expression_has_blendshapes_and_bad_input_is_refused():
    assert set(EXPRESSION_BLENDSHAPES) == set(EXPRESSIONS)
    with pytest.raises(TypeError):
        expression_for(None)
