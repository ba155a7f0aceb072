"""llama.cpp backend (llama-cpp-python): GGUF directly, for small machines and kiosks without a GPU.

One `Llama` per process on a single worker thread (llama.cpp contexts are not thread-safe and decode one
sequence at a time; sessions queue). The token loop runs in the worker and checks a stop flag between tokens,
so cancelling the consumer stops decoding within one token. Backpressure: the worker runs at most
`TOKEN_BUFFER` tokens ahead of the consumer, so a turn that stops reading (it waits for its first audio, server/turn.py)
gives the CPU to the TTS. llama.cpp reuses the KV cache of the common prompt prefix (the persona).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from falante.config import LlamaCppSettings
from falante.types import ChatMessage
from llm.errors import LLMError
from llm.prompting import as_dicts
from llm.weights import resolve_gguf

log = logging.getLogger(__name__)
_DONE = object()
TOKEN_BUFFER = 8  # deltas decoded ahead of the consumer before the worker waits for it


class LlamaCppLanguageModel:
    """`falante.types.LanguageModel` on llama-cpp-python. Construct cheaply; `await start()` loads the GGUF."""

    def __init__(self, settings: LlamaCppSettings) -> None:
        self.settings = settings
        self.model_path: str | None = None
        self._llm: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self.generating = 0  # generations running in the worker right now (0 or 1)
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
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 256, temperature: float = 0.7
    ) -> AsyncIterator[str]:
        """Stream text deltas; closing or cancelling the iterator stops decoding at the next token."""
        llm = self._require()
        chat = as_dicts(messages)
        if max_tokens < 1 or temperature < 0:
            raise LLMError(f"bad sampling options max_tokens={max_tokens} temperature={temperature}",
                           code="invalid_request")
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()
        credits = threading.Semaphore(TOKEN_BUFFER)
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

        self.generating += 1
        try:
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
                    while not credits.acquire(timeout=0.05):  # the consumer is TOKEN_BUFFER deltas behind
                        if stop.is_set():
                            return
                    self.deltas_decoded += 1
                    put(delta)
            finally:
                stream.close()
        except ValueError as exc:  # llama-cpp-python raises ValueError for prompts over n_ctx
            code = "context_length_exceeded" if "context" in str(exc) else "invalid_request"
            put(LLMError(f"llama.cpp rejected the request: {exc}", code=code))
        except Exception as exc:
            log.exception("llama.cpp generation failed")
            put(LLMError(f"llama.cpp generation failed: {exc}"))
        finally:
            self.generating -= 1
            put(_DONE)
