"""Incremental sentence splitting over streamed LLM deltas, so TTS can start on the first sentence.

Why incremental: voice-to-voice latency is dominated by the wait for the first speakable text. A boundary is
emitted as soon as it is certain — a terminator followed by whitespace and the first character of the next word —
and a long sentence without an end is cut at a clause (",", ";", ":") once it has `clause_words` words. The
reply's first piece is cut at its first clause of `first_clause_words` words: the voice starts on a short clause
while the model writes the rest (Kokoro takes ~0.15 s per word on 2 cores, so every word of the first piece counts).
Never split: abbreviations ("Sr.", "Dra.", "etc." before a lowercase word), initials ("J. Silva"), numbers
("3.500", "2.5", "R$ 2,50"), ellipses followed by a lowercase word.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Abbreviations that are never the end of a sentence (lowercased, without the dot).
_TITLES = _words(
    "sr sra srta dr dra drs dras prof profa profs sto sta exmo exma ilmo ilma av r al pç dna d "
    "p pp pág págs ex obs tel cel fax nº n núm no aprox vs cf cap art arts inc ltda cia depto dept "
    "min máx seg jan fev mar abr mai jun jul ago set out nov dez séc vol ed est"
)
# Abbreviations that may end a sentence: split only when the next word starts in uppercase.
_SOFT_ABBREVIATIONS = _words("etc hs h km kg cm mm ml m g l")

_TERMINATORS = ".!?…"
_CLOSERS = "\"'”»)]"
_OPENERS = "(\"'“«["
_CLAUSE = re.compile(r"[,;:](?=\s)|\s[-–—]\s")
_WORD_BEFORE = re.compile(r"(\S+)$")


def _word_count(text: str) -> int:
    return len(text.split())


class SentenceSplitter:
    """Feed deltas with `push()`, get complete sentences back; call `flush()` at the end of the stream."""

    def __init__(self, *, clause_words: int = 12, min_clause_words: int = 4,
                 first_clause_words: int | None = None) -> None:
        if min_clause_words < 1 or clause_words < min_clause_words:
            raise ValueError("need 1 <= min_clause_words <= clause_words")
        if first_clause_words is not None and first_clause_words < 1:
            raise ValueError("need first_clause_words >= 1")
        self.clause_words = clause_words
        self.min_clause_words = min_clause_words
        self.first_clause_words = clause_words if first_clause_words is None else first_clause_words
        self._buffer = ""
        self._emitted = False

    def push(self, delta: str) -> list[str]:
        """Add a delta; return the sentences (or long clauses) that are now complete."""
        self._buffer += delta
        out: list[str] = []
        while True:
            cut = self._find_boundary()
            if cut is None:
                break
            piece, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
            if piece:
                out.append(piece)
                self._emitted = True
        return out

    def flush(self) -> list[str]:
        """The rest of the text once the stream has ended (may be empty); the splitter is then ready for a new reply."""
        rest, self._buffer, self._emitted = self._buffer.strip(), "", False
        return [rest] if rest else []

    # ------------------------------------------------------------------------------------------- internals
    def _find_boundary(self) -> int | None:
        text = self._buffer
        newline = text.find("\n")
        limit = newline if newline != -1 else len(text)
        cut = next((c for i in range(limit) if text[i] in _TERMINATORS
                    if (c := self._sentence_end(text, i)) is not None), None)
        if cut is None and newline != -1:
            cut = newline + 1
        if self._first_piece():  # the reply's first clause may come before its first sentence end
            clause = self._clause_boundary(text if cut is None else text[:cut])
            if clause is not None and (cut is None or clause < cut):
                return clause
        return cut if cut is not None else self._clause_boundary(text)

    def _first_piece(self) -> bool:
        return not self._emitted and self.first_clause_words < self.clause_words

    def _sentence_end(self, text: str, i: int) -> int | None:
        """Where the sentence ending at the terminator `text[i]` is cut, or None if it does not end (yet)."""
        j = i + 1
        while j < len(text) and text[j] in _TERMINATORS + _CLOSERS:
            j += 1  # "?!", "...", closing quotes and brackets belong to this sentence
        k = j
        while k < len(text) and text[k].isspace():
            k += 1
        if k == j or k >= len(text):
            return None  # "3.500", "2.5", or the next word has not arrived yet
        nxt = text[k]
        run = text[i:j]
        if "!" in run or "?" in run:
            return j
        if "…" in run or ".." in run or (i > 0 and text[i - 1] == "."):
            return j if not nxt.islower() else None  # "Bem... acho que sim" stays one sentence
        word = _WORD_BEFORE.search(text[:i])
        before = word.group(1).lower().lstrip(_OPENERS) if word else ""
        if before.isdigit() and not text[:i].strip()[: -len(before)].strip():
            return None  # "1. Abra o app": a list number at the start, not a sentence
        if before in _TITLES or (len(before) == 1 and before.isalpha()):
            return None  # "Sr. Silva", "J. Silva", "p. 3"
        if before in _SOFT_ABBREVIATIONS or "." in before:  # "etc.", "p.ex.", "a.C."
            return j if nxt.isupper() else None
        return j if not nxt.islower() else None

    def _clause_boundary(self, text: str) -> int | None:
        first = self._first_piece()
        if _word_count(text) < (self.first_clause_words if first else self.clause_words):
            return None
        best = None
        for m in _CLAUSE.finditer(text):
            end = m.end() if text[m.start()] in ",;:" else m.start()
            if first and _word_count(text[:end]) >= self.first_clause_words:
                return end  # the earliest clause long enough: speech starts as soon as possible
            if not first and _word_count(text[:end]) >= self.min_clause_words:
                best = end
        return best


async def split_sentences(deltas: AsyncIterator[str], **kwargs: int) -> AsyncIterator[str]:
    """Async adapter: sentences out of an async iterator of deltas (e.g. `LanguageModel.complete`)."""
    splitter = SentenceSplitter(**kwargs)
    async for delta in deltas:
        for sentence in splitter.push(delta):
            yield sentence
    for sentence in splitter.flush():
        yield sentence
