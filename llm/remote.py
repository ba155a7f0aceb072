"""OpenAI-compatible remote backend: streaming chat completions from a vLLM server (or a cluster behind a proxy).

The scale-out path for the LLM (docs/deploy.md): many falante nodes share one vLLM deployment. Each attempt has a
connect timeout, a deadline for its first token and a read timeout between chunks; an attempt that fails before
its first token (connection refused, 5xx, 429, deadline) is retried on a fresh request (a proxy may route it to
another replica), never one that already streamed text: the caller has spoken it. What still fails becomes
`LLMError` with a clear message; cancelling the consumer closes the HTTP stream, which makes vLLM abort the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from falante.config import OpenAISettings
from falante.types import ChatMessage, ToolCall, ToolChoice, ToolSpec
from llm.errors import LLMError
from llm.prompting import as_dicts
from llm.tools import TOOL_CHOICES, new_call_id, offered, openai_tools

log = logging.getLogger("falante.llm.remote")


class _Retryable(Exception):
    """An attempt failed before its first token in a way another attempt may not (the LLMError it would be)."""

    def __init__(self, error: LLMError) -> None:
        super().__init__(str(error))
        self.error = error


class OpenAICompatLanguageModel:
    """`falante.types.LanguageModel` over `openai.AsyncOpenAI`. `start()` checks the server and picks the model."""

    def __init__(self, settings: OpenAISettings) -> None:
        self.settings = settings
        self.model = settings.model
        self._client: Any = None
        self.attempts = 0  # requests sent by complete() (retries included), for metrics and tests

    async def start(self) -> None:
        if self._client is not None:
            return
        try:
            import httpx
            import openai
        except ImportError as exc:
            raise LLMError("the openai package is not installed: pip install 'falante[remote]'",
                           code="llm_start_failed") from exc
        s = self.settings
        timeout = httpx.Timeout(s.timeout_s, connect=s.connect_timeout_s)
        client = openai.AsyncOpenAI(base_url=s.base_url, api_key=s.api_key, timeout=timeout, max_retries=0)
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
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 256, temperature: float = 0.7,
        tools: Sequence[ToolSpec] = (), tool_choice: ToolChoice = "auto",
    ) -> AsyncIterator[str | ToolCall]:
        """Stream text deltas (and ToolCalls, passed through from the server's own tool calling); closing or
        cancelling the iterator closes the HTTP stream."""
        if self._client is None:
            raise LLMError("the remote LLM client is not started: await start() first", code="llm_not_started")
        s = self.settings
        request: dict[str, Any] = {"model": self.model, "messages": as_dicts(messages, arguments_as_text=True),
                                   "max_tokens": max_tokens, "temperature": temperature, "stream": True}
        if offered(tools, tool_choice):
            request["tools"] = openai_tools(tools)
            request["tool_choice"] = tool_choice if tool_choice in TOOL_CHOICES else {
                "type": "function", "function": {"name": tool_choice}}
        for attempt in range(s.retries + 1):
            try:
                async with contextlib.aclosing(self._attempt(request)) as deltas:  # closed at once on cancel
                    async for delta in deltas:
                        yield delta
                return
            except _Retryable as failed:
                if attempt == s.retries:
                    tries = f" after {attempt + 1} attempts" if attempt else ""
                    raise LLMError(f"{failed.error}{tries}", code=failed.error.code) from failed.error.__cause__
                log.warning("remote LLM attempt %d failed before its first token (%s); retrying", attempt + 1,
                            failed.error)
                await asyncio.sleep(s.retry_backoff_s * 2 ** attempt)

    async def _attempt(self, request: dict[str, Any]) -> AsyncIterator[str | ToolCall]:
        """One request. Failures before the first token raise `_Retryable`, after it `LLMError`. Tool calls
        stream in pieces (id and name first) and are yielded whole when the reply ends."""
        import openai

        url = self.settings.base_url
        self.attempts += 1
        stream = None
        streamed = False
        calls: dict[int, list[str]] = {}  # index → [id, name, arguments so far]
        try:
            try:
                async with asyncio.timeout(self.settings.first_token_timeout_s):
                    stream = await self._client.chat.completions.create(**request)
                    chunks = aiter(stream)
                    chunk = await _first_chunk(chunks)
            except TimeoutError:
                raise _Retryable(LLMError(f"remote LLM {url} gave no token within "
                                          f"{self.settings.first_token_timeout_s:g} s (llm.first_token_timeout_s)",
                                          code="llm_timeout")) from None
            finished = False
            while chunk is not None:
                if chunk.choices:
                    choice = chunk.choices[0]
                    finished = choice.finish_reason is not None
                    if choice.delta.content:
                        streamed = True
                        yield choice.delta.content
                    for part in choice.delta.tool_calls or ():  # streamed in pieces: id and name first
                        call = calls.setdefault(part.index, ["", "", ""])
                        call[0] = call[0] or part.id or ""
                        if part.function is not None:
                            call[1] += part.function.name or ""
                            call[2] += part.function.arguments or ""
                chunk = None if finished else await anext(chunks, None)
            if not finished:  # the connection closed cleanly but the reply was cut (server or proxy died)
                error = LLMError(f"remote LLM {url} closed the stream before the reply finished", code="llm_unavailable")
                if not streamed:
                    raise _Retryable(error)
                raise error
            for index in sorted(calls):
                call_id, name, arguments = calls[index]
                yield ToolCall(call_id or new_call_id(), name, arguments or "{}")
        except openai.OpenAIError as exc:
            error = LLMError(f"remote LLM {url} failed: {_describe(exc)}", code=_code(exc))
            error.__cause__ = exc
            if not streamed and _retryable(exc):
                raise _Retryable(error) from exc
            raise error from exc
        finally:
            if stream is not None:
                await asyncio.shield(stream.close())  # runs on cancel too: the server sees the disconnect


async def _first_chunk(chunks: AsyncIterator[Any]) -> Any:
    """The first chunk that carries text, a tool call or the finish; None if the stream ended without one."""
    async for chunk in chunks:
        if chunk.choices:
            choice = chunk.choices[0]
            if choice.delta.content or choice.delta.tool_calls or choice.finish_reason is not None:
                return chunk
    return None


def _retryable(exc: Exception) -> bool:
    import openai

    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500 or exc.status_code == 429  # a 4xx request error fails the same way again
    return isinstance(exc, openai.APIConnectionError)  # includes APITimeoutError


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
