"""Per-session chat history with a token budget: persona always kept, oldest turns dropped first.

Why here and not in the server: the history is what the LLM sees, so its budget is counted in the model's own
tokens when the backend can count them, and barge-in truncation (`truncate_assistant`) keeps only what the
user actually heard — the model must not believe it said words that were cut off.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from falante.types import ChatMessage, ToolCall

TokenCounter = Callable[[str], int]
MESSAGE_OVERHEAD_TOKENS = 4  # role markers of a chat template (<|im_start|>role\n … <|im_end|>\n)
_ROLES = ("user", "assistant")


def estimate_tokens(text: str) -> int:
    """Rough count when no tokenizer is at hand: Portuguese averages ~1.5 BPE tokens per word."""
    return math.ceil(len(text.split()) * 1.5)


def token_counter_for(model: object) -> TokenCounter:
    """The backend's own `count_tokens` when it has one (after `start()`), else `estimate_tokens`."""
    counter = getattr(model, "count_tokens", None)
    return counter if callable(counter) else estimate_tokens


@dataclass
class Item:
    """One history entry; `id` is the protocol's conversation item id.

    `kind` "function_call": the model's call (role assistant, `text` = the JSON arguments, `name`, `call_id`);
    "function_call_output": the client's result for `call_id` (role tool, `text` = the output).
    """

    id: str
    role: str
    text: str
    tokens: int | None = field(default=None, compare=False, repr=False)  # cached count of `text` (+ overhead)
    kind: str = "message"
    call_id: str = ""
    name: str = ""


class Conversation:
    """History of one session. Not shared between sessions; not thread-safe (one event loop owns it)."""

    _ids = itertools.count(1)

    def __init__(
        self, persona: str, *, budget_tokens: int = 1200, count_tokens: TokenCounter | None = None,
        max_items: int = 1000,
    ) -> None:
        if budget_tokens <= 0 or max_items <= 0:
            raise ValueError("budget_tokens and max_items must be positive")
        self.persona = persona
        self.instructions = ""  # per-session extra instructions (session.update), appended to the persona
        self.budget_tokens = budget_tokens
        self.max_items = max_items  # memory bound: items past it are dropped oldest first, like the budget does
        self._count = count_tokens or estimate_tokens
        self._items: list[Item] = []
        self._system_tokens: tuple[str, int] = ("", 0)  # (prompt, its count): counted again only when it changes

    # ---------------------------------------------------------------------------------------- editing
    def set_persona(self, persona: str | None = None, instructions: str | None = None) -> None:
        """Replace this session's persona and/or instructions (the global default is never mutated)."""
        if persona is not None:
            self.persona = persona
        if instructions is not None:
            self.instructions = instructions

    def add(self, role: str, text: str, item_id: str | None = None) -> str:
        """Append a user or assistant message; returns its item id."""
        if role not in _ROLES:
            raise ValueError(f"role must be one of {_ROLES}, got {role!r}")
        return self._append(Item(item_id or f"item_{next(self._ids)}", role, text))

    def add_call(self, call: ToolCall, item_id: str | None = None) -> str:
        """The model's function call (kept so the model sees what it asked and the client's answer to it)."""
        return self._append(Item(item_id or f"item_{next(self._ids)}", "assistant", call.arguments,
                                 kind="function_call", call_id=call.call_id, name=call.name))

    def add_call_output(self, call_id: str, output: str, item_id: str | None = None) -> str:
        """The client's `function_call_output` for one of the model's calls still in the history."""
        if not self.has_call(call_id):
            raise KeyError(f"no function_call with call_id {call_id!r} in the conversation")
        return self._append(Item(item_id or f"item_{next(self._ids)}", "tool", output,
                                 kind="function_call_output", call_id=call_id))

    def has_call(self, call_id: str) -> bool:
        return any(i.kind == "function_call" and i.call_id == call_id for i in self._items)

    def _append(self, item: Item) -> str:
        if any(i.id == item.id for i in self._items):
            raise ValueError(f"duplicate conversation item id {item.id!r}")
        self._items.append(item)
        if len(self._items) > self.max_items:
            self._drop_oldest(len(self._items) - self.max_items)
        return item.id

    def add_user(self, text: str, item_id: str | None = None) -> str:
        return self.add("user", text, item_id)

    def add_assistant(self, text: str, item_id: str | None = None) -> str:
        return self.add("assistant", text, item_id)

    def truncate_assistant(self, item_id: str, heard_text: str) -> None:
        """After barge-in keep only the words the user heard; an item nobody heard is removed."""
        item = self._find(item_id)
        if item.role != "assistant" or item.kind != "message":
            raise ValueError(f"item {item_id!r} is a {item.role} message, only assistant replies are truncated")
        heard = heard_text.strip()
        if heard:
            item.text, item.tokens = heard, None
        else:
            self._items.remove(item)

    def delete(self, item_id: str) -> None:
        self._items.remove(self._find(item_id))

    def clear(self) -> None:
        self._items.clear()

    @property
    def items(self) -> tuple[Item, ...]:
        return tuple(self._items)

    # ---------------------------------------------------------------------------------------- reading
    def system_prompt(self) -> str:
        return f"{self.persona}\n\n{self.instructions}".strip() if self.instructions else self.persona

    def messages(self, reserve_tokens: int = 0) -> list[ChatMessage]:
        """System prompt + the newest history that fits the budget; older items are dropped for good.

        `reserve_tokens` leaves room in the budget for this turn only (the retrieved knowledge context): the
        oldest items that do not fit beside it are left out of the returned list but kept in the history.
        """
        self._fit_budget()
        items = self._items[self._first_fitting(reserve_tokens):] if reserve_tokens > 0 else self._items
        out = [ChatMessage("system", self.system_prompt())]
        for i in items:
            if i.kind == "function_call":  # consecutive calls are one assistant message, as chat templates expect
                call = ToolCall(i.call_id, i.name, i.text)
                last = out[-1]
                if last.role == "assistant" and last.tool_calls:
                    out[-1] = ChatMessage("assistant", last.content, (*last.tool_calls, call))
                else:
                    out.append(ChatMessage("assistant", "", (call,)))
            elif i.kind == "function_call_output":
                out.append(ChatMessage("tool", i.text, tool_call_id=i.call_id))
            else:
                out.append(ChatMessage(i.role, i.text))
        return out

    def tokens(self) -> int:
        """Tokens of what `messages()` would send now (including per-message template overhead)."""
        return self._prompt_tokens() + sum(self._item_tokens(i) for i in self._items)

    def _prompt_tokens(self) -> int:
        prompt = self.system_prompt()
        if self._system_tokens[0] != prompt:
            self._system_tokens = (prompt, self._count(prompt) + MESSAGE_OVERHEAD_TOKENS)
        return self._system_tokens[1]

    def _item_tokens(self, item: Item) -> int:
        """Each item is tokenized once (tokenizing is slow and runs on the event loop), not on every trim."""
        if item.tokens is None:
            item.tokens = self._count(f"{item.name} {item.text}" if item.name else item.text) + MESSAGE_OVERHEAD_TOKENS
        return item.tokens

    def _fit_budget(self) -> None:
        """Keep the newest items that fit; older items are dropped for good."""
        self._drop_oldest(self._first_fitting(0))

    def _first_fitting(self, reserve_tokens: int) -> int:
        """Index of the oldest item that fits beside the prompt and `reserve_tokens`, walking back from the newest
        (older items are never even counted); the newest is kept even alone over budget, and the window starts
        with a user turn, as chat templates expect."""
        total, start = self._prompt_tokens() + reserve_tokens, len(self._items)
        while start > 0 and total + self._item_tokens(self._items[start - 1]) <= self.budget_tokens:
            start -= 1
            total += self._item_tokens(self._items[start])
        start = max(0, min(start, len(self._items) - 1))
        while 0 < start < len(self._items) - 1 and self._items[start].role != "user":  # not a reply or tool output
            start += 1
        return start

    def _drop_oldest(self, count: int) -> None:
        if count <= 0:
            return
        # history starts with a user turn, as chat templates expect (the newest item is always kept); a call's
        # output never outlives its call
        while count < len(self._items) - 1 and self._items[count].role != "user":
            count += 1
        del self._items[:count]

    def _find(self, item_id: str) -> Item:
        for item in self._items:
            if item.id == item_id:
                return item
        raise KeyError(f"no conversation item {item_id!r} (unknown, or dropped by the history budget)")
