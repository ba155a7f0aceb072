"""Which session the current work belongs to, so the shared model workers can serve sessions in turn.

Why a context variable: the models' Protocols (falante/types.py) stay session-agnostic, and every task a session
starts (its listener, its turns, its commit decodes) inherits the owner from the task that created it. The
websocket handler sets it once (server/session.py `Session.open`); work with no owner is one more "session".
"""

from __future__ import annotations

from collections.abc import Hashable
from contextvars import ContextVar

current_owner: ContextVar[Hashable | None] = ContextVar("falante_work_owner", default=None)


def set_owner(owner: Hashable | None) -> None:
    """Mark the current task (and the tasks it creates from now on) as `owner`'s work."""
    current_owner.set(owner)
