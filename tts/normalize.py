"""pt-BR text normalization before G2P: LLM output → words a TTS can speak.

Why: G2P engines read "R$ 25,90" or "14h30" badly (or not at all), and LLM replies carry markdown and emojis.
Numbers are spelled by num2words(lang="pt_BR"); the passes run in a fixed order so that money, dates, times and
percentages are read before bare numbers.
"""

from __future__ import annotations

import re
import unicodedata

from num2words import num2words

__all__ = ["normalize", "number_to_words", "strip_markup"]

_MONTHS = ("janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro", "outubro",
           "novembro", "dezembro")

# Feminine nouns that commonly follow numbers ("2 horas" → "duas horas"); other words ending in -a/-as are
# treated as feminine unless listed in _MASCULINE_A.
_FEMININE = {"vez", "vezes", "hora", "horas", "pessoa", "pessoas", "semana", "semanas", "noite", "noites",
             "unidade", "unidades", "criança", "crianças", "mulher", "mulheres", "página", "páginas",
             "opção", "opções", "estação", "estações", "parcela", "parcelas", "garrafa", "garrafas"}
_MASCULINE_A = {"dia", "dias", "problema", "problemas", "mapa", "mapas", "sistema", "sistemas", "programa",
                "programas", "tema", "temas", "idioma", "idiomas", "clima", "planeta", "planetas", "telefonema",
                "cinema", "cinemas", "reais", "metros"}

_ABBREVIATIONS = {  # lower-cased key without the final dot → spoken form
    "sr": "senhor", "sra": "senhora", "srta": "senhorita", "dr": "doutor", "dra": "doutora", "prof": "professor",
    "profa": "professora", "av": "avenida", "etc": "etcétera", "ex": "exemplo", "pág": "página", "tel": "telefone",
    "apto": "apartamento", "depto": "departamento", "ltda": "limitada", "cia": "companhia", "obs": "observação",
    "aprox": "aproximadamente", "vs": "versus", "máx": "máximo", "mín": "mínimo", "núm": "número",
}
# Units are only expanded right after a number: (singular, plural).
_UNITS = {
    "km/h": ("quilômetro por hora", "quilômetros por hora"), "km": ("quilômetro", "quilômetros"),
    "m²": ("metro quadrado", "metros quadrados"), "m2": ("metro quadrado", "metros quadrados"),
    "cm": ("centímetro", "centímetros"), "mm": ("milímetro", "milímetros"), "m": ("metro", "metros"),
    "kg": ("quilo", "quilos"), "g": ("grama", "gramas"), "mg": ("miligrama", "miligramas"),
    "ml": ("mililitro", "mililitros"), "l": ("litro", "litros"), "min": ("minuto", "minutos"),
    "seg": ("segundo", "segundos"), "s": ("segundo", "segundos"), "°c": ("grau Celsius", "graus Celsius"),
    "ºc": ("grau Celsius", "graus Celsius"),
    "°": ("grau", "graus"), "gb": ("gigabyte", "gigabytes"), "mb": ("megabyte", "megabytes"),
}
_CURRENCIES = {"R$": ("real", "reais"), "US$": ("dólar", "dólares"), "$": ("dólar", "dólares"),
               "€": ("euro", "euros"), "£": ("libra", "libras")}

_NUM = r"\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d+(?:,\d+)?"  # 1.234,56 | 1234 | 3,5


# ---------------------------------------------------------------------------------------------- numbers
def _clean(words: str) -> str:
    return words.replace(",", "").replace("  ", " ").strip()


def _feminine(words: str) -> str:
    """Masculine cardinal words → feminine ("dois" → "duas", "duzentos" → "duzentas")."""
    out = []
    for w in words.split():
        if w == "um":
            w = "uma"
        elif w == "dois":
            w = "duas"
        elif w.endswith("entos") and w != "cento":
            w = w[:-2] + "as"
        out.append(w)
    return " ".join(out)


def _parse(number: str) -> tuple[int, str]:
    """"1.234,56" → (1234, "56"); the decimal part keeps leading zeros."""
    integer, _, decimals = number.partition(",")
    return int(integer.replace(".", "")), decimals


def _cardinal(value: int, feminine: bool = False) -> str:
    words = _clean(num2words(value, lang="pt_BR"))
    return _feminine(words) if feminine else words


def number_to_words(number: str, feminine: bool = False) -> str:
    """A pt-BR written number ("1.234", "3,5", "0,05", "-2") → words."""
    sign = ""
    if number.startswith(("-", "−")):
        sign, number = "menos ", number[1:]
    integer, decimals = _parse(number)
    if len(str(integer)) > 15:  # beyond num2words' comfort (and nobody speaks it): read digit by digit
        return sign + " ".join(_cardinal(int(d)) for d in str(integer))
    words = _cardinal(integer, feminine and not decimals)
    if decimals:
        zeros = len(decimals) - len(decimals.lstrip("0"))
        tail = ["zero"] * zeros + ([_cardinal(int(decimals))] if decimals.strip("0") else [])
        words += " vírgula " + " ".join(tail)
    return sign + words


def _is_feminine(word: str) -> bool:
    w = word.lower()
    return w in _FEMININE or (w.endswith(("a", "as")) and w not in _MASCULINE_A and len(w) > 2)


# ---------------------------------------------------------------------------------------------- markup
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\U00002600-\U000027BF\U0001F1E6-\U0001F1FF\u2B00-\u2BFF"
                    "\uFE0E\uFE0F\u200D\u20E3\u2190-\u21FF\u2300-\u23FF\u25A0-\u25FF]+")


def strip_markup(text: str) -> str:
    """Remove markdown and emojis (LLM replies carry them); keep link texts and the words of inline code."""
    text = re.sub(r"```.*?(```|$)", " ", text, flags=re.DOTALL)  # code blocks are not speech
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", text)  # images
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # links → their text
    text = re.sub(r"`([^`]*)`", r"\1", text)
    text = re.sub(r"^\s{0,3}#{1,6}\s*", "", text, flags=re.MULTILINE)  # headings
    text = re.sub(r"^\s*>+\s?", "", text, flags=re.MULTILINE)  # quotes
    text = re.sub(r"^\s*(?:[-*+•]|\d+[.)])\s+", "", text, flags=re.MULTILINE)  # list bullets and numbers
    text = re.sub(r"^[ \t]*\|?(?:[ \t]*:?-{3,}:?[ \t]*\|?)+[ \t]*\n?", "", text, flags=re.MULTILINE)  # table rules
    text = re.sub(r"^[ \t]*\|(.*?)\|?[ \t]*$", lambda m: ", ".join(c.strip() for c in m.group(1).split("|")),
                  text, flags=re.MULTILINE)  # table rows → comma-separated cells
    text = text.replace("|", ", ")
    text = re.sub(r"(\*\*|__|~~)(.+?)\1", r"\2", text)
    text = re.sub(r"(?<![\w*])[*_](?!\s)(.+?)(?<!\s)[*_](?![\w*])", r"\1", text)
    text = re.sub(r"^\s*([-*_])\1{2,}\s*$", "", text, flags=re.MULTILINE)  # horizontal rules
    text = _EMOJI.sub(" ", text)
    text = re.sub(r"(?<=[^\s.!?:;,])[ \t]*\n\s*", ". ", text.strip())  # lines and paragraphs end sentences
    text = re.sub(r"\s*\n\s*", " ", text)
    return text


# ---------------------------------------------------------------------------------------------- passes
def _spell_host(host: str) -> str:
    host = re.sub(r"^www\.", "", host.lower())
    return " ponto ".join(part.replace("-", " hífen ") for part in host.split("."))


def _urls_and_emails(text: str) -> str:
    def email(m: re.Match) -> str:
        user = m.group(1).replace(".", " ponto ").replace("_", " underline ").replace("-", " hífen ")
        return f"{user} arroba {_spell_host(m.group(2))}"

    text = re.sub(r"\b([\w.+-]+)@([\w-]+(?:\.[\w-]+)+)\b", email, text)
    # A URL is spoken as its site name; paths and queries are dropped (nobody wants them read aloud).
    url = r"\b(?:https?://|www\.)([\w-]+(?:\.[\w-]+)+)(?::\d+)?(?:/[^\s]*)?"
    text = re.sub(url, lambda m: _spell_host(m.group(1)), text)
    return re.sub(r"\b([\w-]+\.(?:com|org|net|gov|edu)(?:\.br)?|[\w-]+\.br)\b",
                  lambda m: _spell_host(m.group(1)), text)


def _money(text: str) -> str:
    symbols = "|".join(re.escape(s) for s in _CURRENCIES)

    def say(m: re.Match) -> str:
        one, many = _CURRENCIES[m.group(1)]
        integer, decimals = _parse(m.group(2))
        scale = m.group(3)
        if scale:  # "R$ 2 mil", "R$ 1,5 milhão"
            return f"{number_to_words(m.group(2))} {scale} de {many}" if scale != "mil" else \
                f"{number_to_words(m.group(2))} mil {many}"
        cents = int((decimals + "00")[:2]) if decimals else 0
        parts = []
        if integer or not cents:
            unit = one if integer == 1 else many
            words = _cardinal(integer)
            parts.append(f"{words} de {unit}" if re.search(r"(milhão|milhões|bilhão|bilhões)$", words)
                         else f"{words} {unit}")
        if cents:
            parts.append(f"{_cardinal(cents)} {'centavo' if cents == 1 else 'centavos'}")
        return " e ".join(parts)

    return re.sub(rf"({symbols})\s?({_NUM})(?:\s+(mil|milhões|milhão|bilhões|bilhão)\b)?", say, text)


def _dates(text: str) -> str:
    def day(d: int) -> str:
        return "primeiro" if d == 1 else _cardinal(d)

    def numeric(m: re.Match) -> str:
        d, mo, y = int(m.group(1)), int(m.group(2)), m.group(3)
        if not (1 <= d <= 31 and 1 <= mo <= 12):
            return m.group(0)
        out = f"{day(d)} de {_MONTHS[mo - 1]}"
        if y:
            year = int(y) + (2000 if len(y) == 2 else 0)
            out += f" de {_cardinal(year)}"
        return out

    text = re.sub(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{4}|\d{2}))?\b", numeric, text)
    months = "|".join(_MONTHS)
    return re.sub(rf"\b(\d{{1,2}})(?:º|°)?(?= de (?:{months})\b)", lambda m: day(int(m.group(1))), text,
                  flags=re.IGNORECASE)


def _times(text: str) -> str:
    def say(m: re.Match) -> str:
        h, mins = int(m.group(1)), int(m.group(2) or 0) if m.re.groups > 1 else 0
        if h > 24 or mins > 59:
            return m.group(0)
        hours = _cardinal(h, feminine=True)
        if not mins:
            return f"{hours} {'hora' if h == 1 else 'horas'}"
        return f"{hours} e {_cardinal(mins)}"

    text = re.sub(r"\b(\d{1,2})h(\d{2})(?:min)?\b", say, text)
    text = re.sub(r"\b(\d{1,2})h\b", say, text)
    return re.sub(r"\b(\d{1,2}):(\d{2})(?::\d{2})?\b(?:\s?h\b)?", say, text)


def _percent(text: str) -> str:
    return re.sub(rf"(-?(?:{_NUM}))\s?%", lambda m: f"{number_to_words(m.group(1))} por cento", text)


def _ordinals(text: str) -> str:
    def say(m: re.Match) -> str:
        words = _clean(num2words(int(m.group(1)), lang="pt_BR", to="ordinal"))
        if m.group(2) in ("ª", "a"):
            words = " ".join(w[:-1] + "a" if w.endswith("o") else w for w in words.split())
        return words

    return re.sub(r"\b(\d+)\.?([ºª]|°(?= [a-zà-ú]))", say, text)


def _abbreviations(text: str) -> str:
    text = re.sub(r"\b[nN][º°o]\.?\s*(?=\d)", "número ", text)
    text = re.sub(r"\b[nN]º", "número", text)

    def say(m: re.Match) -> str:
        word = _ABBREVIATIONS[m.group(1).lower()]
        return word.capitalize() if m.group(1)[0].isupper() else word

    keys = "|".join(sorted(map(re.escape, _ABBREVIATIONS), key=len, reverse=True))
    return re.sub(rf"(?<![\w.])({keys})\.(?!\w)", say, text, flags=re.IGNORECASE)


def _units(text: str) -> str:
    keys = "|".join(sorted(map(re.escape, _UNITS), key=len, reverse=True))

    def say(m: re.Match) -> str:
        number = m.group(1)
        one, many = _UNITS[m.group(2).lower()]
        singular = number in ("1", "-1")
        return f"{number_to_words(number, feminine=one.endswith('a'))} {one if singular else many}"

    return re.sub(rf"(-?(?:{_NUM}))\s?({keys})(?![\w/²])", say, text, flags=re.IGNORECASE)


def _numbers(text: str) -> str:
    def say(m: re.Match) -> str:
        number, after = m.group(1), m.group(2)
        if len(number) > 9 and number.isdigit():  # phone numbers, codes: digit by digit
            return " ".join(_cardinal(int(d)) for d in number) + after
        nxt = re.match(r"\s+(\w+)", text[m.end(1):])
        feminine = bool(nxt) and _is_feminine(nxt.group(1))
        return number_to_words(number.replace(".", ",", 1) if re.fullmatch(r"\d+\.\d{1,2}", number) else number,
                               feminine) + after

    text = re.sub(r"(?<![\w.,])(\d+)([^\W\d_])", r"\1 \2", text)  # "2a" → "2 a"
    text = re.sub(rf"(?<![\w,.])(-?(?:\d+\.\d{{1,2}}(?!\d)|{_NUM}))(?![\d])(\s?)", say, text)
    return text


def _symbols(text: str) -> str:
    text = text.replace("&", " e ").replace("+", " mais ").replace("=", " igual a ").replace("@", " arroba ")
    text = re.sub(r"[*_#~^<>{}\[\]\\]", " ", text)
    text = re.sub(r"[\"“”«»]", "", text)
    text = re.sub(r"\s+([,.!?;:])", r"\1", text)
    text = re.sub(r"([,.!?;:])(?=[^\s\d])", r"\1 ", text)
    return re.sub(r"\s+", " ", text).strip()


def normalize(text: str) -> str:
    """Spoken-form pt-BR text: markup and emojis removed, numbers and symbols spelled out."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    text = unicodedata.normalize("NFC", text).replace("\u00a0", " ")
    text = strip_markup(text)
    for step in (_urls_and_emails, _money, _dates, _times, _percent, _ordinals, _abbreviations, _units, _numbers,
                 _symbols):
        text = step(text)
    return text
