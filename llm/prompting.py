"""Input checks shared by every backend, so bad input is a clear `LLMError`, never a crash deep in an engine."""

from __future__ import annotations

from collections.abc import Sequence

from falante.types import ChatMessage
from llm.errors import LLMError

ROLES = frozenset({"system", "user", "assistant"})


def validate_messages(messages: Sequence[ChatMessage]) -> Sequence[ChatMessage]:
    """Non-empty, known roles, string contents; returns `messages` unchanged."""
    if not messages:
        raise LLMError("no messages to complete", code="invalid_request")
    for i, m in enumerate(messages):
        if m.role not in ROLES:
            raise LLMError(f"message {i} has unknown role {m.role!r} (use system/user/assistant)",
                           code="invalid_request")
        if not isinstance(m.content, str):
            raise LLMError(f"message {i} content must be text, got {type(m.content).__name__}",
                           code="invalid_request")
    return messages


def as_dicts(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """OpenAI-style chat dicts, the shape chat templates and HTTP APIs take."""
    return [{"role": m.role, "content": m.content} for m in validate_messages(messages)]
