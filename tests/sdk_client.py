"""Drive a falante server with the official `openai` SDK, as an existing Realtime client would."""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from openai import AsyncOpenAI

from falante.audio import float_to_pcm16_bytes


@dataclass
class Conversation:
    events: list[dict[str, Any]] = field(default_factory=list)
    arrivals: dict[str, float] = field(default_factory=dict)  # event type → perf_counter() of its first arrival
    first_audio_at: float | None = None

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def audio(self) -> bytes:
        return b"".join(base64.b64decode(e["delta"]) for e in self.of("response.output_audio.delta"))


def sdk_client(host: str, api_key: str = "local") -> AsyncOpenAI:
    return AsyncOpenAI(api_key=api_key, websocket_base_url=f"ws://{host}/v1")


async def speak_and_listen(host: str, audio_24k: np.ndarray, *, chunk_ms: int = 100, pace: float = 0.25,
                           timeout: float = 240.0, session: dict[str, Any] | None = None,
                           extensions: bool = True) -> Conversation:
    """Stream `audio_24k` (pace = fraction of real time spent per chunk) and collect events until response.done;
    `extensions`: opt in to falante.* events (`?extensions=falante`)."""
    conv = Conversation()
    query = {"extensions": "falante"} if extensions else {}
    async with sdk_client(host).realtime.connect(model="falante", extra_query=query) as conn:
        if session:
            await conn.session.update(session=session)
        step = 24_000 * chunk_ms // 1000

        async def send() -> None:
            for i in range(0, len(audio_24k), step):
                await conn.input_audio_buffer.append(
                    audio=base64.b64encode(float_to_pcm16_bytes(audio_24k[i:i + step])).decode())
                await asyncio.sleep(chunk_ms / 1000 * pace)

        sender = asyncio.create_task(send())
        try:
            async with asyncio.timeout(timeout):
                async for event in conn:
                    now = time.perf_counter()
                    conv.events.append(event.to_dict())
                    conv.arrivals.setdefault(event.type, now)
                    if event.type == "response.output_audio.delta" and conv.first_audio_at is None:
                        conv.first_audio_at = now
                    if event.type == "response.done":
                        break
        finally:
            sender.cancel()
    return conv
