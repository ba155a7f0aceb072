"""The one writer of a websocket: events go through a bounded queue so stages never write concurrently.

Why: a cancelled response may still have audio queued; `drop_response` makes the writer skip its streaming
events, so nothing of a cancelled turn reaches the client after the cancellation is acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from server import events
from server.protocol import new_id

log = logging.getLogger("falante.outbox")

STREAMING_EVENTS = frozenset({
    "response.output_audio.delta", "response.output_audio_transcript.delta", "response.output_text.delta",
    "falante.avatar.frames",
})


class Outbox:
    def __init__(self, send_text: Callable[[str], Awaitable[None]], maxsize: int = 256, *,
                 extensions: bool = False) -> None:
        self._send_text = send_text
        self.extensions = extensions  # the client opted in to falante.* events and extension fields
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize)
        self._dropped: set[str] = set()
        self.sent = 0

    async def put(self, event: dict[str, Any]) -> None:
        shown = events.for_client(event, self.extensions)
        if shown is None:
            return  # a falante.* event for a client that did not ask for them
        await self._queue.put(shown if "event_id" in shown else {"event_id": new_id("event"), **shown})

    def drop_response(self, response_id: str) -> None:
        self._dropped.add(response_id)

    def close(self) -> None:
        """Ask the writer to stop after what is queued (it is cancelled anyway if the client is gone)."""
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            pass  # the writer is stuck on a dead client; the caller cancels it

    async def run(self) -> None:
        """Write events until `close()`; a send failure (client gone) ends the loop by raising, and is logged."""
        while (event := await self._queue.get()) is not None:
            if event.get("response_id") in self._dropped and event["type"] in STREAMING_EVENTS:
                continue
            text = _serialize(event)
            if text is None:
                continue
            try:
                await self._send_text(text)
            except Exception as exc:
                log.info("writer stopped on a %s event: %s: %s", event["type"], type(exc).__name__, exc)
                raise
            self.sent += 1


def _serialize(event: dict[str, Any]) -> str | None:
    """A bad event (a server bug) is logged, never fatal to the writer and so to the session: text that is not
    valid Unicode (a lone surrogate) goes out \\u-escaped, anything else unserializable is dropped."""
    try:
        text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        if not text.isascii():
            text.encode()  # a lone surrogate would make the websocket's UTF-8 encoding raise inside send
        return text
    except UnicodeEncodeError:
        log.error("event %s has text that is not valid Unicode; sent with \\u escapes", event.get("type"))
        return json.dumps(event, ensure_ascii=True, separators=(",", ":"))
    except (TypeError, ValueError):
        log.exception("event %s cannot be serialized; dropped", event.get("type"))
        return None
