"""OpenAI-compatible remote backend: streaming chat completions from a vLLM server (or a cluster behind a proxy).

The path for users who outgrow one machine. Network failures, timeouts and 5xx become `LLMError` with a clear
message; cancelling the consumer closes the HTTP stream, which makes vLLM's server abort the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from falante.config import OpenAISettings
from falante.types import ChatMessage
from llm.errors import LLMError
from llm.prompting import as_dicts


class OpenAICompatLanguageModel:
    """`falante.types.LanguageModel` over `openai.AsyncOpenAI`. `start()` checks the server and picks the model."""

    def __init__(self, settings: OpenAISettings) -> None:
        self.settings = settings
        self.model = settings.model
        self._client: Any = None

    async def start(self) -> None:
        if self._client is not None:
            return
        try:
            import openai
        except ImportError as exc:
            raise LLMError("the openai package is not installed: pip install 'falante[remote]'",
                           code="llm_start_failed") from exc
        s = self.settings
        client = openai.AsyncOpenAI(base_url=s.base_url, api_key=s.api_key, timeout=s.timeout_s, max_retries=0)
        try:
            models = [m.id async for m in client.models.list()]
        except openai.OpenAIError as exc:
            await client.close()
            raise LLMError(f"LLM server at {s.base_url} is not reachable: {_describe(exc)}",
                           code="llm_start_failed") from exc
        if not self.model:
            if not models:
                await client.close()
                raise LLMError(f"LLM server at {s.base_url} serves no model", code="llm_start_failed")
            self.model = models[0]
        elif self.model not in models:
            await client.close()
            raise LLMError(f"LLM server at {s.base_url} does not serve {self.model!r} (it serves {models})",
                           code="llm_start_failed")
        self._client = client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 256, temperature: float = 0.7
    ) -> AsyncIterator[str]:
        """Stream text deltas; closing or cancelling the iterator closes the HTTP stream."""
        import openai

        if self._client is None:
            raise LLMError("the remote LLM client is not started: await start() first", code="llm_not_started")
        chat = as_dicts(messages)
        stream = None
        try:
            stream = await self._client.chat.completions.create(
                model=self.model, messages=chat, max_tokens=max_tokens, temperature=temperature, stream=True
            )
            finished = False
            async for chunk in stream:
                if chunk.choices:
                    choice = chunk.choices[0]
                    finished = finished or choice.finish_reason is not None
                    if choice.delta.content:
                        yield choice.delta.content
            if not finished:  # the connection closed cleanly but the reply was cut (server or proxy died)
                raise LLMError(f"remote LLM {self.settings.base_url} closed the stream before the reply finished",
                               code="llm_unavailable")
        except openai.OpenAIError as exc:
            raise LLMError(f"remote LLM {self.settings.base_url} failed: {_describe(exc)}",
                           code=_code(exc)) from exc
        finally:
            if stream is not None:
                await asyncio.shield(stream.close())  # runs on cancel too: the server sees the disconnect


def _describe(exc: Exception) -> str:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "timed out (raise llm.timeout_s or check the server load)"
    if isinstance(exc, openai.APIConnectionError):
        return f"connection failed ({exc.__cause__ or exc})"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {exc.message}"
    return str(exc)


def _code(exc: Exception) -> str:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "llm_timeout"
    if isinstance(exc, openai.APIStatusError):
        return "llm_server_error" if exc.status_code >= 500 else "llm_bad_request"
    return "llm_unavailable"
