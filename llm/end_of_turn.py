"""End-of-turn detectors (falante.types.EndOfTurnDetector) from the chat LLM already in memory.

The signal (as LiveKit's turn detector, with the chat model itself): in the model's own chat template, the
probability that the user's sentence ends right after the transcript — the next token is the end-of-message token
(`<|im_end|>` for Qwen) or a `.`/`?`/`!`:  P(end | t) + Σ_p P(p | t). A sentence end, not the message end: after a
finished statement the model expects the user to go on ("… Guarulhos." then `<|im_end|>` ≈ 0.01), but someone who
pauses between sentences may be answered. Finished phrases score ~0.01-0.96, unfinished ones ("Eu queria saber se
vocês") ≤ 0.002 (scripts/eval_end_of_turn.py). One short prefill (~20 tokens) per score.

- llama.cpp: its own small context on the same GGUF (the weights are mmapped, so shared), on its own thread, so
  scoring never waits behind a reply being generated and never blocks the event loop.
- vLLM: four 1-token requests (words + end / . / ? / !) with `prompt_logprobs` on the shared engine (batched with
  the replies); the same quantity.
- The `openai` remote backend has no detector: semantic_vad degrades to timing only (docs/protocol.md).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from falante.config import LlamaCppSettings
from llm.errors import LLMError
from llm.weights import resolve_gguf

log = logging.getLogger(__name__)

SYSTEM = "Você é uma assistente virtual brasileira."  # the scoring context: a user talking to an assistant
SENTINEL = "\ufff0FALANTE\ufff0"
PUNCTUATION = (".", "?", "!")


def template_parts(render: Callable[[list[dict[str, str]]], str]) -> tuple[str, str]:
    """(text before the user's words, text after them) in a chat template, e.g. ('…<|im_start|>user\\n', '<|im_end|>\\n')."""
    rendered = render([{"role": "system", "content": SYSTEM}, {"role": "user", "content": SENTINEL}])
    if rendered.count(SENTINEL) != 1:
        raise LLMError("the chat template does not render a user message verbatim", code="llm_start_failed")
    before, after = rendered.split(SENTINEL)
    if not after.strip():
        raise LLMError("the chat template has no end-of-message marker", code="llm_start_failed")
    return before, after


def transcript_body(text: str) -> str:
    """The words to score: a final '.', '...' or '!' is dropped (Whisper ends fragments with them too; the words
    decide). Kept, a '...' reads as a finished sentence ("Vou precisar de uma mesa para..." 0.56, bare 0.0004) and a
    '!' as a message to be continued ("Oi, bom dia!" 0.000, bare 0.956)."""
    return " ".join(text.split()).rstrip(".…!").rstrip()


def _softmax_at(logits: np.ndarray, ids: list[int]) -> list[float]:
    top = float(logits.max())
    total = float(np.exp(logits - top).sum())
    return [math.exp(float(logits[i]) - top) / total for i in ids]


class LlamaCppEndOfTurn:
    """Scores with a second llama.cpp context on the LLM's GGUF. `load()` is blocking (a start-up loader)."""

    def __init__(self, settings: LlamaCppSettings, threads: int = 1, n_ctx: int = 512) -> None:
        self.settings, self.threads, self.n_ctx = settings, threads, n_ctx
        self._llm: Any = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="end-of-turn")
        self._prefix: list[int] = []
        self._end = -1
        self._punct: list[int] = []

    def load(self) -> None:
        if self._llm is not None:
            return
        from jinja2.sandbox import ImmutableSandboxedEnvironment
        from llama_cpp import Llama

        # n_threads_batch too: llama-cpp-python otherwise prefills on every core of the machine
        llm = Llama(model_path=str(resolve_gguf(self.settings.model)), n_ctx=self.n_ctx, n_threads=self.threads,
                    n_threads_batch=self.threads, n_gpu_layers=self.settings.n_gpu_layers, verbose=False)
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise LLMError("the GGUF has no chat template: no end-of-turn signal", code="llm_start_failed")
        jinja = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(template)
        before, after = template_parts(lambda messages: jinja.render(messages=messages, add_generation_prompt=False))
        tokenize = lambda s, special: llm.tokenize(s.encode(), add_bos=False, special=special)
        self._prefix = tokenize(before, True)
        self._end = tokenize(after, True)[0]
        self._punct = [tokenize(p, False)[0] for p in PUNCTUATION]
        self._llm = llm

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()

    async def end_probability(self, text: str) -> float:
        if self._llm is None:
            raise LLMError("the end-of-turn detector is not loaded", code="llm_not_started")
        body = transcript_body(text)
        if not body:
            return 0.0
        cancelled = threading.Event()
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._score, body, cancelled)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            cancelled.set()  # still queued: skipped; already running: one short prefill finishes unseen
            raise

    def _score(self, body: str, cancelled: threading.Event) -> float:
        """Worker thread: prefill prefix + words (the common prefix with the last call is reused), read the logits."""
        if cancelled.is_set():
            return 0.0
        llm = self._llm
        words = llm.tokenize(body.encode(), add_bos=False, special=False)
        ids = self._prefix + words[-(self.n_ctx - len(self._prefix) - 2):]  # a long turn: its last words
        cached = llm.input_ids[: llm.n_tokens].tolist()
        keep = 0
        while keep < min(len(cached), len(ids) - 1) and cached[keep] == ids[keep]:
            keep += 1
        llm.n_tokens = keep
        llm.eval(ids[keep:])
        return min(1.0, sum(_softmax_at(self._logits(llm), [self._end, *self._punct])))

    @staticmethod
    def _logits(llm: Any) -> np.ndarray:
        import llama_cpp

        pointer = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(llm.n_vocab(),)).copy()


class VllmEndOfTurn:
    """Scores on the shared vLLM engine of a started `llm.vllm_engine.VllmLanguageModel`."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self._parts: tuple[list[int], int, list[int]] | None = None

    def _template(self) -> tuple[list[int], int, list[int]]:
        if self._parts is None:
            tok = self.llm.tokenizer
            before, after = template_parts(lambda messages: tok.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=False))
            encode = lambda s: tok.encode(s, add_special_tokens=False)
            self._parts = (encode(before), encode(after)[0], [encode(p)[0] for p in PUNCTUATION])
        return self._parts

    async def end_probability(self, text: str) -> float:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        body = transcript_body(text)
        if not body:
            return 0.0
        prefix, end, punct = self._template()
        ids = prefix + self.llm.tokenizer.encode(body, add_special_tokens=False)
        engine = self.llm.engine
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        prompts = [ids + [token] for token in (end, *punct)]  # each one's last prompt logprob
        request_ids = [f"falante-eot-{uuid.uuid4().hex}" for _ in prompts]

        async def logprob(prompt: list[int], request_id: str) -> float:
            final = None
            async for out in engine.generate(TokensPrompt(prompt_token_ids=prompt), params, request_id):
                final = out
            if final is None or final.prompt_logprobs is None:
                raise LLMError("vLLM returned no prompt logprobs", code="llm_error")
            return final.prompt_logprobs[len(ids)][prompt[len(ids)]].logprob  # the appended token's

        try:
            results = await asyncio.gather(*(logprob(p, r) for p, r in zip(prompts, request_ids)))
        except asyncio.CancelledError:
            for request_id in request_ids:
                await engine.abort(request_id)
            raise
        return min(1.0, sum(math.exp(logprob) for logprob in results))
