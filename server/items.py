"""The conversation as the client sees it: item ids, the `previous_item_id` chain, each item's wire shape (for
`conversation.item.retrieve`), and what of each reply the history keeps (all of it, what was heard, or nothing).

Kept apart from `session.py` (audio, turn-taking, dispatch): this is the state behind the `conversation.item.*`
events, and the one place that decides what the LLM's history (`llm.conversation.Conversation`) holds.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from falante.types import ToolCall
from llm.conversation import Conversation
from server import events
from server import protocol as p

if TYPE_CHECKING:
    from server.turn import Turn

PAST_TURNS = 16  # finished replies a client may still truncate (what it played of them)


class ConversationItems:
    def __init__(self, conversation: Conversation, max_items: int, max_text_chars: int) -> None:
        self.conversation = conversation
        self.max_items, self.max_text_chars = max_items, max_text_chars
        self.last_id: str | None = None  # the newest item (`previous_item_id` of the next one)
        self._ids: set[str] = set()  # every item id of this session (a set: the check runs per item)
        self._wire: OrderedDict[str, dict[str, Any]] = OrderedDict()  # newest items as sent, bounded like history
        self._past_turns: dict[str, Turn] = {}  # item_id → finished reply, for conversation.item.truncate
        self._unheard: set[str] = set()  # cancelled replies nobody heard: not in history unless truncate says so

    # ------------------------------------------------------------------------------------------ adding
    def add(self, item: dict[str, Any]) -> str | None:
        """Record a new item (its wire shape as sent); returns the item before it."""
        previous, self.last_id = self.last_id, item["id"]
        self._ids.add(item["id"])
        self.remember(item)
        return previous

    def remember(self, item: dict[str, Any]) -> None:
        """Keep the item's wire shape for retrieve (a copy: later updates change only ours)."""
        self._wire[item["id"]] = {**item, "content": [dict(part) for part in item.get("content", ())]}
        self._wire.move_to_end(item["id"])
        while len(self._wire) > self.max_items:
            self._wire.popitem(last=False)

    def set_transcript(self, item_id: str, text: str) -> None:
        """A spoken item's transcript, once it is known (or cut to what was heard)."""
        if (wire := self._wire.get(item_id)) and wire["content"]:
            wire["content"][0]["transcript"] = text

    def create(self, item: p.Item | p.FunctionCallItem | p.FunctionCallOutputItem) -> dict[str, Any]:
        """A client's conversation.item.create: checked, added to the history; returns its wire shape."""
        if isinstance(item, (p.FunctionCallItem, p.FunctionCallOutputItem)):
            return self._create_function_item(item)
        text = " ".join(part.text or part.transcript or "" for part in item.content).strip()
        if any(part.audio for part in item.content):
            raise p.ProtocolError("unsupported_content", "audio content in conversation.item.create is not "
                                  "supported; stream it with input_audio_buffer.append", param="item.content")
        if not text:
            raise p.ProtocolError("empty_item", "the item has no text", param="item.content")
        self._check_length(text, "item.content")
        item_id = self._new_id(item.id)
        if item.role == "system":
            self.conversation.set_persona(instructions=text)
        else:
            self.conversation.add(item.role, text, item_id)
        return events.message_item(item_id, item.role, "completed", [events.text_part(item.role, text)])

    def _create_function_item(self, item: p.FunctionCallItem | p.FunctionCallOutputItem) -> dict[str, Any]:
        """A function_call_output (the result of a call), or a function_call the client replays into history."""
        if isinstance(item, p.FunctionCallOutputItem):
            self._check_length(item.output, "item.output")
            item_id = self._new_id(item.id)
            try:
                self.conversation.add_call_output(item.call_id, item.output, item_id)
            except KeyError:
                raise p.ProtocolError("invalid_value", f"no function_call with call_id {item.call_id!r} in the "
                                      "conversation (unknown, or dropped by the history budget)",
                                      param="item.call_id") from None
            return events.function_call_output_item(item_id, item.call_id, item.output)
        self._check_length(item.arguments, "item.arguments")
        item_id = self._new_id(item.id)
        call = ToolCall(item.call_id, item.name, item.arguments)
        self.conversation.add_call(call, item_id)
        return events.function_call_item(item_id, call, "completed")

    def _check_length(self, text: str, param: str) -> None:
        if len(text) > self.max_text_chars:
            raise p.ProtocolError("text_too_long", f"item text exceeds {self.max_text_chars} characters",
                                  param=param)

    def _new_id(self, given: str | None) -> str:
        item_id = given or p.new_id("item")
        if item_id in self._ids:
            raise p.ProtocolError("item_create_duplicate_item_id", f"item id {item_id!r} already exists", param="item.id")
        return item_id

    # ------------------------------------------------------------------------------------------ replies
    def reply_finished(self, turn: Turn) -> None:
        """What the history keeps of a reply: all of a completed one, what was heard of a cut one; the calls of
        a completed reply (a cancelled reply's calls are incomplete: not to be run, not kept)."""
        self._past_turns[turn.item_id] = turn
        while len(self._past_turns) > PAST_TURNS:
            self._past_turns.pop(next(iter(self._past_turns)))
        if turn.message_index is not None:  # a reply that only called functions has no message item
            self._ids.add(turn.item_id)
            self.last_id = turn.item_id
        heard = turn.text.strip() if turn.status == "completed" else turn.heard_text(turn.heard_samples())
        if heard:
            self.conversation.add_assistant(heard, turn.item_id)
        elif turn.status == "cancelled":
            self._unheard.add(turn.item_id)
        if turn.status == "completed":
            for made in turn.calls:
                self.conversation.add_call(made.call, made.item_id)
                self._ids.add(made.item_id)
                self.last_id = made.item_id
                self.remember(events.function_call_item(made.item_id, made.call, "completed"))

    def truncate(self, item_id: str, audio_end_ms: int, current: Turn | None) -> int:
        """The client played only `audio_end_ms` of a reply: the history keeps the words heard. Returns the
        audio end actually kept (at most what was sent)."""
        turn = self._past_turns.get(item_id) or (current if current and current.item_id == item_id else None)
        if turn is None:
            raise p.ProtocolError("item_not_found", f"no assistant audio item {item_id!r}", param="item_id")
        samples = min(turn.samples_sent, audio_end_ms * turn.options.out_rate // 1000)
        heard = turn.heard_text(samples)
        if item_id in self._unheard:
            if heard:
                self._unheard.discard(item_id)
                self.conversation.add_assistant(heard, item_id)
        elif any(i.id == item_id for i in self.conversation.items):
            self.conversation.truncate_assistant(item_id, heard)
        self.set_transcript(item_id, heard)
        return samples * 1000 // turn.options.out_rate

    def delete(self, item_id: str) -> None:
        try:
            self.conversation.delete(item_id)
        except (KeyError, ValueError):
            raise p.ProtocolError("item_not_found", f"no conversation item {item_id!r}", param="item_id") from None
        self._wire.pop(item_id, None)

    def retrieve(self, item_id: str) -> dict[str, Any]:
        item = self._wire.get(item_id)
        if item is None:
            raise p.ProtocolError("item_retrieve_invalid_item_id", f"no conversation item {item_id!r}",
                                  param="item_id")
        return item
