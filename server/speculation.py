"""A reply prepared on a speculative final (semantic_vad) before the turn is confirmed.

Why: the LLM's first sentence and its first TTS piece take most of voice-to-voice; starting them while the last
silence is still being waited out hides that time. Nothing of it may reach the client or the history before the
turn's final confirms the text: the Turn's events go into a `Gate` that holds them, and is either opened (flushed in
order, then passes through) or dropped with the Turn (nothing was ever sent, the conversation was never touched).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from server.turn import Turn


class Gate:
    """Holds a Turn's events until `open()`; then flushes them in order and passes later ones straight through."""

    def __init__(self, target: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self.target = target
        self.held: deque[dict[str, Any]] = deque()  # a reply's audio deltas: popped from the left, O(1) each
        self.is_open = False

    async def emit(self, event: dict[str, Any]) -> None:
        if self.is_open:
            await self.target(event)
        else:
            self.held.append(event)

    async def open(self) -> None:
        while self.held:  # the Turn may add events while earlier ones are being sent
            await self.target(self.held.popleft())
        self.is_open = True


@dataclass
class Speculation:
    """The held reply and the transcript it answers (`end_sample`: the speech end that transcript covers)."""

    text: str
    end_sample: int
    turn: Turn
    gate: Gate

    def matches(self, text: str, end_sample: int) -> bool:
        """The final says the same words about the same speech. Case and punctuation may differ: the speculative
        text is a greedy draft (asr/listener.py), the final a beam search, and they often differ only there."""
        return self.end_sample == end_sample and _words(self.text) == _words(text)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())
