"""Kiosk knowledge: the operator's facts file, split into sections and retrieved per user turn with BM25.

Why lexical retrieval: a kiosk's facts file is a few dozen short sections written with the words visitors use
("horário", "ingresso", "banheiro"); BM25 (`bm25s`) finds the right one in microseconds on a CPU, needs no
embedding model, and its scores are explainable. pt-BR normalisation makes "horário"/"horario"/"Horários" match:
lowercase, a Portuguese Snowball stem, accents folded, a small stopword list (bm25s' Portuguese list + question
words that carry no topic). The index is built once at start-up and shared, read-only, by every session;
retrieval runs on its own one-thread executor, off the event loop.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bm25s
import snowballstemmer
import yaml
from bm25s.stopwords import STOPWORDS_PORTUGUESE

from falante.types import ChatMessage
from llm.conversation import estimate_tokens

MAX_FILE_BYTES = 512 * 1024  # a facts file, not a library: keeps the index (and each retrieval) small
MAX_SECTIONS = 2000

# Question words and kiosk small talk: in a question they say nothing about the topic ("onde fica o banheiro?").
_QUESTION_WORDS = ("onde fica ficam qual quais quanto quanta quantos quantas como quando posso pode podem tem "
                   "têm ter há existe vocês você voces voce gostaria queria saber favor por oi olá ola bom boa "
                   "dia tarde noite obrigado obrigada aqui hoje me diga dizer sabe alguma algum")
_STOPWORDS = frozenset(w for w in (*STOPWORDS_PORTUGUESE, *_QUESTION_WORDS.split()))
_WORD = re.compile(r"\w+", re.UNICODE)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def fold(text: str) -> str:
    """Lowercase without accents ("Horário" → "horario"): visitors and ASR do not always write them."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))


_FOLDED_STOPWORDS = frozenset(fold(w) for w in _STOPWORDS)


class _Stemmer:
    """Portuguese Snowball stems of accent-folded words: folding first makes "estação" and "estacao" one term."""

    def __init__(self) -> None:
        self._stem = snowballstemmer.stemmer("portuguese").stemWord

    def __call__(self, word: str) -> str:
        return self._stem(fold(word))


def tokenize(text: str, stem: Callable[[str], str]) -> list[str]:
    """Words of `text` as index terms: stopwords dropped (with or without accents), stemmed, folded."""
    return [stem(w) for w in _WORD.findall(text.lower()) if fold(w) not in _FOLDED_STOPWORDS]


@dataclass(frozen=True)
class Section:
    """One retrievable unit: its heading path ("Museu › Horário") and its body text."""

    title: str
    text: str

    def render(self) -> str:
        return f"{self.title}: {self.text}" if self.title else self.text


def parse_markdown(text: str) -> list[Section]:
    """Each heading starts a section titled by its heading path; text before any heading is a section of its own.

    HTML comments are dropped (notes for the operator, not facts). A heading with no body adds only to the path.
    """
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    body: list[str] = []

    def close() -> None:
        content = " ".join(line.strip() for line in body if line.strip())
        if content:
            sections.append(Section(" › ".join(t for _, t in path), content))
        body.clear()

    for line in _COMMENT.sub("", text).splitlines():
        match = _HEADING.match(line)
        if match:
            close()
            level = len(match.group(1))
            path = [(lv, t) for lv, t in path if lv < level] + [(level, match.group(2))]
        else:
            body.append(line.lstrip("-*+ ").rstrip())
    close()
    return sections


def parse_yaml(text: str) -> list[Section]:
    """A mapping of title → text, list of texts, or a nested mapping (its keys extend the title path)."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict):  # a ValueError like every other bad-file case (load_sections' callers catch one)
        raise ValueError("a YAML knowledge file must be a mapping of section title → text")  # noqa: TRY004
    sections: list[Section] = []

    def walk(prefix: list[str], value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk([*prefix, str(key)], sub)
        elif isinstance(value, list):
            walk(prefix, " ".join(str(v).strip() for v in value if v is not None))
        elif value is not None and str(value).strip():
            sections.append(Section(" › ".join(prefix), " ".join(str(value).split())))

    walk([], data)
    return sections


def load_sections(path: str | Path) -> list[Section]:
    """Sections of a `.md`/`.markdown`/`.txt` (Markdown) or `.yaml`/`.yml` file, with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"knowledge file not found: {path}")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(f"knowledge file {path} has {size} bytes; the limit is {MAX_FILE_BYTES}")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        sections = parse_yaml(text)
    elif suffix in (".md", ".markdown", ".txt"):
        sections = parse_markdown(text)
    else:
        raise ValueError(f"knowledge file {path}: use Markdown (.md) or YAML (.yaml/.yml), not {suffix!r}")
    if not sections:
        raise ValueError(f"knowledge file {path} has no sections with text")
    if len(sections) > MAX_SECTIONS:
        raise ValueError(f"knowledge file {path} has {len(sections)} sections; the limit is {MAX_SECTIONS}")
    return sections


class KnowledgeBase:
    """A BM25 index over the sections; `retrieve` is pure and thread-safe (the index is read-only once built)."""

    def __init__(self, sections: Sequence[Section], *, top_k: int = 3, min_score: float = 0.5,
                 relative_score: float = 0.4, max_context_tokens: int = 400, rules: str | None = None,
                 count_tokens: Callable[[str], int] = estimate_tokens) -> None:
        if not sections:
            raise ValueError("a knowledge base needs at least one section")
        self.sections = list(sections)
        self.top_k, self.min_score, self.relative_score = top_k, min_score, relative_score
        self.max_context_tokens = max_context_tokens
        self.rules = rules or KNOWLEDGE_RULES
        self._stem = _Stemmer()
        # the title counts twice: it names the topic in the visitor's words
        corpus = [tokenize(f"{s.title} {s.title} {s.text}", self._stem) for s in self.sections]
        self._index = bm25s.BM25()
        self._index.index(corpus, show_progress=False)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="knowledge")
        self.count_tokens_with(count_tokens)

    def count_tokens_with(self, count: Callable[[str], int]) -> None:
        """Count the rules and each section once (at start-up, with the LLM's tokenizer once it is loaded), so a
        turn's context is fitted to `max_context_tokens` without tokenizing anything while the LLM generates."""
        self._rules_tokens = count(context_block([], self.rules))
        self._section_tokens = [count(_fact_line(s)) + 1 for s in self.sections]

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> KnowledgeBase:
        return cls(load_sections(path), **kwargs)

    def scores(self, query: str) -> list[float]:
        terms = tokenize(query, self._stem)
        if not terms:
            return [0.0] * len(self.sections)
        return [float(s) for s in self._index.get_scores(terms)]

    def retrieve(self, query: str) -> list[Section]:
        """Up to `top_k` sections, best first: score ≥ `min_score` and ≥ `relative_score` × the best score.

        An unrelated question ("qual é a capital do Brasil?") shares no term with the file and gets none.
        """
        return [self.sections[i] for i in self._ranked(query)]

    def _ranked(self, query: str) -> list[int]:
        scores = self.scores(query)
        best = max(scores)
        if best < self.min_score:
            return []
        ranked = sorted(range(len(scores)), key=lambda i: -scores[i])[: self.top_k]
        return [i for i in ranked if scores[i] >= max(self.min_score, self.relative_score * best)]

    def context(self, query: str) -> str:
        """The turn's context block: the rules and the best retrieved sections that fit `max_context_tokens`."""
        kept: list[Section] = []
        total = self._rules_tokens
        for i in self._ranked(query):
            total += self._section_tokens[i]
            if total > self.max_context_tokens:
                break
            kept.append(self.sections[i])
        return context_block(kept, self.rules)

    async def acontext(self, query: str) -> str:
        """`context` on the knowledge base's own thread: the event loop never runs the scoring."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.context, query)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


# The rules the persona follows with the facts; the context block is in one turn's system prompt only.
KNOWLEDGE_RULES = (
    "Você atende visitantes neste local. Para perguntas sobre o local (horários, preços, lugares, serviços, regras), "
    "responda só com as informações do local abaixo, sem inventar nada. Se a resposta não estiver nas informações, "
    "diga que não sabe e ofereça chamar um atendente. Perguntas gerais, fora do local, responda normalmente."
)
# When no section matches the question, the persona gets a sentence to copy: asked only to "say it does not know",
# the bundled models answered "Não tem estacionamento." (invented); given the sentence for every question, they also
# used it on questions the facts answer by a step ("abre na segunda?"). Measured in docs/benchmarks.md.
NOT_IN_FACTS = "Não tenho essa informação, mas posso chamar um atendente."
NO_FACTS = (f"nenhuma sobre esta pergunta. Se ela for sobre o local, responda exatamente: \"{NOT_IN_FACTS}\" "
            "Se for uma pergunta geral, responda normalmente.")


def _fact_line(section: Section) -> str:
    return f"- {section.render()}"


def context_block(sections: Sequence[Section], rules: str = KNOWLEDGE_RULES) -> str:
    """The text appended to the system prompt for one turn: the rules, then the retrieved facts (or none)."""
    if not sections:
        return f"{rules}\n\nInformações do local: {NO_FACTS}"
    facts = "\n".join(_fact_line(s) for s in sections)
    return f"{rules}\n\nInformações do local:\n{facts}"


def with_context(messages: Sequence[ChatMessage], context: str) -> list[ChatMessage]:
    """A copy of `messages` whose system prompt ends with `context` (history items are not touched)."""
    out = list(messages)
    if not context:
        return out
    if out and out[0].role == "system":
        out[0] = ChatMessage("system", f"{out[0].content}\n\n{context}")
    else:
        out.insert(0, ChatMessage("system", context))
    return out
