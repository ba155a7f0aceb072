"""llama.cpp backend (llama-cpp-python): GGUF directly, for small machines and kiosks without a GPU.

One `Llama` per process on a single worker thread (llama.cpp contexts are not thread-safe and decode one
sequence at a time; sessions queue). The token loop runs in the worker and checks a stop flag between tokens,
so cancelling the consumer stops decoding within one token. Backpressure: the worker runs at most
`TOKEN_BUFFER` tokens ahead of the consumer, so a turn that stops reading (it waits for its first audio, server/turn.py)
gives the CPU to the TTS. llama.cpp reuses the KV cache of the common prompt prefix (the persona).

Function calling (Qwen2.5/Hermes format): the prompt is the GGUF's own chat template rendered with the tools; the
model decides freely whether to call (its `<tool_call>` token stops the free text), then the call body is decoded
under a grammar made from the tools' JSON schemas (`llm.tools.call_schema`), so its arguments always validate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from falante.config import LlamaCppSettings
from falante.types import ChatMessage, ToolCall, ToolChoice, ToolSpec
from llm.errors import LLMError
from llm.prompting import as_dicts, has_tool_turns
from llm.tools import (
    MAX_CALLS_PER_RESPONSE,
    TOOL_CHOICES,
    call_opening_ids,
    call_schema,
    offered,
    openai_tools,
    opens_call,
    parse_call_body,
)
from llm.weights import resolve_gguf

log = logging.getLogger(__name__)
_DONE = object()
TOKEN_BUFFER = 8  # deltas decoded ahead of the consumer before the worker waits for it
TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"  # the Qwen2.5 / Hermes chat templates' markers


class LlamaCppLanguageModel:
    """`falante.types.LanguageModel` on llama-cpp-python. Construct cheaply; `await start()` loads the GGUF."""

    def __init__(self, settings: LlamaCppSettings) -> None:
        self.settings = settings
        self.model_path: str | None = None
        self._llm: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._formatter: Any = None  # the GGUF's chat template (jinja2), for prompts with tools
        self._tool_token: int | None = None  # id of `<tool_call>` when the vocabulary has it as one token
        self._no_call_ids: Any = None  # tokens that would open a call (`_no_calls`), found once
        self._grammars: dict[str, Any] = {}  # call schema (JSON text) → LlamaGrammar, built once
        self.generating = 0  # generations running in the worker right now (0 or 1)
        self.queued = 0  # requests submitted to the worker that it has not started yet (other sessions)
        self._queued_lock = threading.Lock()  # `queued` changes on the event loop and on the worker thread
        self.deltas_decoded = 0  # all deltas the worker produced (tests check the backpressure with it)

    async def start(self) -> None:
        if self._llm is not None:
            return
        path = await asyncio.to_thread(resolve_gguf, self.settings.model)
        self.model_path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama-cpp")
        try:
            self._llm = await asyncio.get_running_loop().run_in_executor(self._executor, self._load)
        except ImportError as exc:
            raise LLMError("llama-cpp-python is not installed: pip install 'falante[llamacpp]'",
                           code="llm_start_failed") from exc
        except Exception as exc:
            raise LLMError(f"llama.cpp failed to load {self.model_path}: {exc}", code="llm_start_failed") from exc

    def _load(self) -> Any:
        from llama_cpp import Llama

        s = self.settings
        # n_threads_batch too: llama-cpp-python otherwise prefills on every core (the detector and TTS need some)
        return Llama(model_path=self.model_path, n_ctx=s.n_ctx, n_threads=s.n_threads, n_threads_batch=s.n_threads,
                     n_gpu_layers=s.n_gpu_layers, verbose=False)

    async def close(self) -> None:
        llm, self._llm = self._llm, None
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
        if llm is not None:
            llm.close()

    def _require(self) -> Any:
        if self._llm is None or self._executor is None:
            raise LLMError("the llama.cpp model is not started: await start() first", code="llm_not_started")
        return self._llm

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` in the model's vocabulary (for the history budget)."""
        return len(self._require().tokenize(text.encode("utf-8"), add_bos=False, special=False))

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 256, temperature: float = 0.7,
        tools: Sequence[ToolSpec] = (), tool_choice: ToolChoice = "auto",
    ) -> AsyncIterator[str | ToolCall]:
        """Stream text deltas (and ToolCalls); closing or cancelling the iterator stops decoding at the next token."""
        llm = self._require()
        chat = as_dicts(messages)
        usable = offered(tools, tool_choice)
        if tools and tool_choice not in TOOL_CHOICES and not usable:
            raise LLMError(f"tool_choice names {tool_choice!r}, which is not among the tools", code="invalid_request")
        if max_tokens < 1 or temperature < 0:
            raise LLMError(f"bad sampling options max_tokens={max_tokens} temperature={temperature}",
                           code="invalid_request")
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()
        credits = threading.Semaphore(TOKEN_BUFFER)
        with self._queued_lock:
            self.queued += 1
        if usable or has_tool_turns(messages):
            forced = bool(usable) and tool_choice != "auto"
            loop.run_in_executor(self._executor, self._generate_tools, llm, chat, usable, forced, max_tokens,
                                 temperature, stop, credits, loop, queue)
        else:
            loop.run_in_executor(self._executor, self._generate, llm, chat, max_tokens, temperature,
                                 stop, credits, loop, queue)
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, LLMError):
                    raise item
                credits.release()
                yield item
        finally:
            # decoding stops at the next token. Not awaited: on a busy CPU one token can take a second and the
            # barge-in must not wait for it; the next request queues behind it on the single-worker executor.
            stop.set()

    def _generate(self, llm: Any, chat: list[dict[str, str]], max_tokens: int, temperature: float,
                  stop: threading.Event, credits: threading.Semaphore, loop: asyncio.AbstractEventLoop,
                  queue: asyncio.Queue[Any]) -> None:
        """Worker thread: consume llama.cpp's lazy stream here, never on the event loop."""

        def put(item: Any) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(queue.put_nowait, item)

        with self._worker(put, "generation"):
            if stop.is_set():
                return  # cancelled while queued behind another session
            stream = llm.create_chat_completion(messages=chat, max_tokens=max_tokens, temperature=temperature,
                                                stream=True)
            try:
                for chunk in stream:
                    if stop.is_set():
                        break
                    delta = chunk["choices"][0]["delta"].get("content")
                    if not delta:
                        continue
                    if not self._paced(credits, stop):
                        return
                    self.deltas_decoded += 1
                    put(delta)
            finally:
                stream.close()

    def _paced(self, credits: threading.Semaphore, stop: threading.Event) -> bool:
        """Wait while the consumer is TOKEN_BUFFER deltas behind (a reply paced by its voice leaves the CPU to TTS),
        but never while another session's request waits for the single worker: then decode on, so a slow speaker
        holds the model for its decode time only (before, B's reply waited for A's whole speech). False: stop."""
        while not credits.acquire(timeout=0.05):
            if stop.is_set():
                return False
            if self.queued:
                return True
        return True

    @contextlib.contextmanager
    def _worker(self, put: Callable[[Any], None], what: str) -> Iterator[None]:
        """A generation on the worker thread: every failure reaches the consumer as LLMError, then the end."""
        with self._queued_lock:
            self.queued -= 1
        self.generating += 1
        try:
            yield
        except LLMError as exc:
            put(exc)
        except ValueError as exc:  # llama-cpp-python raises ValueError for prompts over n_ctx
            code = "context_length_exceeded" if "context" in str(exc) else "invalid_request"
            put(LLMError(f"llama.cpp rejected the request: {exc}", code=code))
        except Exception as exc:
            log.exception("llama.cpp %s failed", what)
            put(LLMError(f"llama.cpp generation failed: {exc}"))
        finally:
            self.generating -= 1
            put(_DONE)

    # ------------------------------------------------------------------------------------------ tools
    def _tool_prompt(self, llm: Any, chat: list[dict[str, Any]], tools: Sequence[ToolSpec]) -> str:
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            template = llm.metadata.get("tokenizer.chat_template", "")
            ids = llm.tokenize(TOOL_CALL_OPEN.encode(), add_bos=False, special=True)
            if "tools" not in template or len(ids) != 1:
                raise LLMError("this GGUF's chat template has no <tool_call> format (use a Qwen2.5/Hermes model)",
                               code="tools_unsupported")
            self._tool_token = ids[0]
            self._formatter = Jinja2ChatFormatter(template, eos_token="<|im_end|>", bos_token="")
        return self._formatter(messages=chat, tools=openai_tools(tools) if tools else None).prompt

    def _no_calls(self, llm: Any) -> Any:
        """Logits processor that forbids opening a call (`llm.tools.call_opening_ids`), for replies that may not
        call but whose history has calls."""
        import numpy as np
        from llama_cpp import LogitsProcessorList

        if self._no_call_ids is None:  # once, on the worker thread
            self._no_call_ids = np.array(call_opening_ids(llm.n_vocab(), lambda i: llm.detokenize([i]),
                                                          self._tool_token), dtype=np.intc)
        banned = self._no_call_ids

        def forbid(_input_ids: Any, scores: Any) -> Any:
            scores[banned] = -np.inf
            return scores

        return LogitsProcessorList([forbid])

    def _grammar(self, tools: Sequence[ToolSpec]) -> Any:
        import json

        from llama_cpp import LlamaGrammar

        key = json.dumps(call_schema(tools), sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
        return self._grammars[key]

    def _generate_tools(self, llm: Any, chat: list[dict[str, Any]], tools: Sequence[ToolSpec], forced: bool,
                        max_tokens: int, temperature: float, stop: threading.Event, credits: threading.Semaphore,
                        loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any]) -> None:
        """Worker thread: free text until the model opens a call, then grammar-constrained call bodies."""
        from llama_cpp import StoppingCriteriaList

        def put(item: Any) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(queue.put_nowait, item)

        opened = [False]

        def at_tool_call(input_ids: Any, _logits: Any) -> bool:
            opened[0] = opened[0] or (len(input_ids) > 0 and int(input_ids[-1]) == self._tool_token)
            return stop.is_set() or opened[0]

        def free_text(prompt: str, budget: int) -> str | None:
            """Stream free text into the queue; None if cancelled."""
            text = ""
            lead: str | None = ""  # held until its first non-space character shows whether a call opens
            stream = llm.create_completion(prompt, max_tokens=budget, temperature=temperature, stream=True,
                                           stopping_criteria=StoppingCriteriaList([at_tool_call]),
                                           logits_processor=None if tools else self._no_calls(llm))
            try:
                for chunk in stream:
                    if stop.is_set():
                        return None
                    delta = chunk["choices"][0]["text"]
                    if not delta:
                        continue
                    if lead is not None:
                        lead += delta
                        if not lead.strip():
                            continue
                        if tools and opens_call(lead):  # the 0.5B often writes the call body without the marker
                            opened[0] = True
                            return text
                        delta, lead = lead, None
                    if not self._paced(credits, stop):
                        return None
                    text += delta
                    self.deltas_decoded += 1
                    put(delta)
            finally:
                stream.close()
            return text

        with self._worker(put, "tool generation"):
            if stop.is_set():
                return
            prompt = self._tool_prompt(llm, chat, tools)
            if not tools:  # history with calls, but nothing to call now: plain text
                free_text(prompt, max_tokens)
                return
            if not forced:
                text = free_text(prompt, max_tokens)
                if text is None or not opened[0]:
                    return
                prompt += text
            for _ in range(MAX_CALLS_PER_RESPONSE):
                if stop.is_set():
                    return
                prompt += TOOL_CALL_OPEN + "\n"
                out = llm.create_completion(prompt, max_tokens=max_tokens, temperature=temperature,
                                            grammar=self._grammar(tools))
                body = out["choices"][0]["text"]
                try:
                    put(parse_call_body(body))
                except ValueError:  # cut by max_tokens: the server retries once, then apologises
                    put(LLMError(f"llama.cpp produced an unfinished tool call: {body[:80]!r}", code="invalid_tool_call"))
                    return
                prompt += body + "\n" + TOOL_CALL_CLOSE + "\n"
                if forced or stop.is_set():
                    return  # tool_choice required / a name: one call
                opened[0] = False
                nxt = llm.create_completion(prompt, max_tokens=1, temperature=temperature,
                                            stopping_criteria=StoppingCriteriaList([at_tool_call]))
                if not (opened[0] or opens_call(nxt["choices"][0]["text"])):
                    return  # the model ended its turn instead of opening another call
