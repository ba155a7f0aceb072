"""pt-BR normalization, one group of cases per category the TTS must speak."""

import pytest

from tts.normalize import normalize, number_to_words, strip_markup


def check(cases):
    for written, spoken in cases:
        assert normalize(written) == spoken, written


def test_cardinals_thousands_decimals_and_signs():
    check([
        ("Tenho 3 filhos", "Tenho três filhos"),
        ("São 21 dias", "São vinte e um dias"),
        ("Custou 1.234 votos", "Custou mil duzentos e trinta e quatro votos"),
        ("1.000.000", "um milhão"),
        ("3,5", "três vírgula cinco"),
        ("0,05", "zero vírgula zero cinco"),
        ("Fez -5 graus", "Fez menos cinco graus"),
        ("Custa 1.5 dólares", "Custa um vírgula cinco dólares"),
        ("2025", "dois mil e vinte e cinco"),
    ])
    assert number_to_words("101") == "cento e um"


def test_feminine_agreement_for_counted_nouns():
    check([
        ("2 pessoas", "duas pessoas"), ("1 pessoa", "uma pessoa"), ("200 pessoas", "duzentas pessoas"),
        ("em 10 vezes", "em dez vezes"), ("2 dias", "dois dias"), ("são 2 casas", "são duas casas"),
    ])


def test_long_digit_strings_are_read_digit_by_digit():
    assert normalize("Ligue 11987654321") == "Ligue um um nove oito sete seis cinco quatro três dois um"


def test_ordinals():
    check([("1º lugar", "primeiro lugar"), ("2ª vez", "segunda vez"), ("3.º andar", "terceiro andar"),
           ("23º", "vigésimo terceiro"), ("3° andar", "terceiro andar"), ("1ª classe", "primeira classe")])


@pytest.mark.parametrize("written, spoken", [
    ("O combo sai por R$ 25,90?", "O combo sai por vinte e cinco reais e noventa centavos?"),
    ("R$ 1,00", "um real"),
    ("R$ 1.299 em dez vezes", "mil duzentos e noventa e nove reais em dez vezes"),
    ("R$ 149,99 no Pix", "cento e quarenta e nove reais e noventa e nove centavos no Pix"),
    ("com R$50 para", "com cinquenta reais para"),
    ("R$ 0,05", "cinco centavos"),
    ("R$ 2,01", "dois reais e um centavo"),
    ("R$ 2 milhões", "dois milhões de reais"),
    ("R$ 1.000.000,00", "um milhão de reais"),
    ("R$ 3 mil", "três mil reais"),
    ("US$ 10", "dez dólares"),
    ("€ 1", "um euro"),
])
def test_money(written, spoken):
    assert normalize(written) == spoken


def test_dates():
    check([
        ("para 3 de abril.", "para três de abril."),
        ("15 de novembro de 2025?", "quinze de novembro de dois mil e vinte e cinco?"),
        ("03/04/2025", "três de abril de dois mil e vinte e cinco"),
        ("1º de maio", "primeiro de maio"),
        ("1/1", "primeiro de janeiro"),
        ("25/12/24", "vinte e cinco de dezembro de dois mil e vinte e quatro"),
        ("35/13/2025", "trinta e cinco/treze/dois mil e vinte e cinco"),  # not a date: numbers only
    ])


def test_times():
    check([
        ("às 14h30.", "às catorze e trinta."), ("às 7h15?", "às sete e quinze?"), ("às 20h?", "às vinte horas?"),
        ("até as 22h?", "até as vinte e duas horas?"), ("1h", "uma hora"), ("9h", "nove horas"),
        ("14:30", "catorze e trinta"), ("12:00", "doze horas"), ("21h05", "vinte e uma e cinco"),
        ("10h30min", "dez e trinta"),
    ])


def test_percentages():
    check([("15%", "quinze por cento"), ("3,5%", "três vírgula cinco por cento"), ("100 %", "cem por cento")])


def test_abbreviations():
    check([
        ("Sr. Silva", "Senhor Silva"), ("a Sra. Costa", "a Senhora Costa"), ("o Dr. João", "o Doutor João"),
        ("a Dra. Ana", "a Doutora Ana"), ("na Av. Paulista", "na Avenida Paulista"),
        ("na av. Brasil", "na avenida Brasil"), ("frutas, legumes etc.", "frutas, legumes etcétera"),
        ("nº 5", "número cinco"), ("Nº 12", "número doze"), ("Prof. Lima", "Professor Lima"),
    ])


def test_units():
    check([
        ("5 km", "cinco quilômetros"), ("1 km", "um quilômetro"), ("2 kg", "dois quilos"),
        ("10 min", "dez minutos"), ("30 km/h", "trinta quilômetros por hora"), ("tenho 3kg", "tenho três quilos"),
        ("25°C", "vinte e cinco graus Celsius"), ("2 g", "duas gramas"), ("1,80 m", "um vírgula oitenta metros"),
        ("500 ml", "quinhentos mililitros"), ("1 l", "um litro"),
    ])


def test_urls_and_emails():
    check([
        ("Veja https://www.exemplo.com.br/path?q=1 agora", "Veja exemplo ponto com ponto br agora"),
        ("Escreva para joao.silva@empresa.com.br", "Escreva para joao ponto silva arroba empresa ponto com ponto br"),
        ("visite falante.com.br hoje", "visite falante ponto com ponto br hoje"),
    ])


def test_markdown_and_emojis_removed():
    check([
        ("**Olá!** 😀 Tudo _bem_?", "Olá! Tudo bem?"),
        ("# Título\n- item um\n- item dois", "Título. item um. item dois"),
        ("Veja o [site](http://x.com) 👍🏽", "Veja o site"),
        ("Use `pip` e ~~não~~ *isso*", "Use pip e não isso"),
        ("Bandeira 🇧🇷 e coração ❤️", "Bandeira e coração"),
        ("```python\nprint(1)\n```\nPronto.", "Pronto."),
        ("| a | b |\n|---|---|\n| 1 | 2 |", "a, b. um, dois"),
    ])
    assert "!" not in strip_markup("![logo](x.png) Oi")


def test_plain_text_is_untouched_and_bad_input_is_rejected():
    assert normalize("Oi, bom dia!") == "Oi, bom dia!"
    assert normalize("") == ""
    with pytest.raises(TypeError):
        normalize(None)  # type: ignore[arg-type]
