"""Build the shared model backends from settings, once per process.

Why here: `asr/ llm/ tts/` never import `server/`; this module is the one place that knows which class serves
which `kind`, and it imports a backend's module only when that backend is chosen (vLLM pulls in torch).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from asr.endpoint import EndOfTurnPolicy
from falante.config import Settings, VadSettings
from falante.types import EndOfTurnDetector, LanguageModel, ListenerEvent, SpeechRecognizer, SpeechSynthesizer
from llm.conversation import token_counter_for

if TYPE_CHECKING:
    from llm.knowledge import KnowledgeBase

log = logging.getLogger("falante.backends")


class Listener(Protocol):
    """Per-session VAD + streaming ASR (asr.listener.Listener in production, scripted fakes in fast tests)."""

    def events(self, chunks: AsyncIterator[np.ndarray]) -> AsyncIterator[ListenerEvent]: ...

    def reset(self) -> None: ...


@dataclass
class Backends:
    """The process-wide models every session shares. Sessions never mutate them."""

    recognizer: SpeechRecognizer
    llm: LanguageModel
    tts: SpeechSynthesizer
    # (vad settings, language, semantic_vad policy or None) → a new per-session Listener
    make_listener: Callable[[VadSettings, str, EndOfTurnPolicy | None], Listener]
    loaders: list[Callable[[], None]] = field(default_factory=list)  # blocking loads run once at start-up
    load_seconds: dict[str, float] = field(default_factory=dict)
    end_of_turn: EndOfTurnDetector | None = None  # semantic_vad's text signal; None: timing only (remote LLM)
    knowledge: KnowledgeBase | None = None  # the operator's facts (llm/knowledge.py), indexed once, read-only

    async def start(self) -> None:
        """Load every model once, off the event loop, then start the LLM engine."""
        async def timed(name: str, fn: Callable[[], Any]) -> None:
            t0 = time.perf_counter()
            await asyncio.to_thread(fn)
            self.load_seconds[name] = time.perf_counter() - t0
            log.info("loaded %s in %.1f s", name, self.load_seconds[name])

        for i, loader in enumerate(self.loaders):
            await timed(getattr(loader, "__qualname__", f"loader{i}"), loader)
        t0 = time.perf_counter()
        await self.llm.start()
        self.load_seconds["llm"] = time.perf_counter() - t0
        if self.knowledge is not None:  # the context is fitted in the LLM's own tokens, counted once here
            await asyncio.to_thread(self.knowledge.count_tokens_with, token_counter_for(self.llm))

    async def close(self) -> None:
        """Shut every shared model down (server exit): each one's failure is logged, the others still close."""
        try:
            await self.llm.close()
        except Exception:
            log.exception("closing the LLM failed")
        closers = [self.recognizer.close, self.tts.close]
        if self.knowledge is not None:
            closers.append(self.knowledge.close)
        if (detector_close := getattr(self.end_of_turn, "close", None)) is not None:
            closers.append(detector_close)
        for close in closers:
            try:
                await asyncio.to_thread(close)
            except Exception:
                log.exception("closing %s failed", getattr(close, "__qualname__", close))


def build_backends(settings: Settings) -> Backends:
    """Construct (cheaply, nothing loaded yet) the backends the settings name."""
    from asr.listener import Listener as AsrListener
    from asr.vad import SileroVadModel
    from asr.whisper import FasterWhisperRecognizer

    recognizer = FasterWhisperRecognizer(settings.asr)
    vad = SileroVadModel()
    llm = build_llm(settings)
    tts = build_tts(settings)

    def make_listener(vad_settings: VadSettings, language: str, end_of_turn: EndOfTurnPolicy | None) -> Listener:
        asr_settings = settings.asr.model_copy(update={"vad": vad_settings, "language": language})
        return AsrListener(recognizer, vad, asr_settings, end_of_turn=end_of_turn)

    detector = build_end_of_turn(settings, llm)
    loaders = [recognizer.load, vad.load, tts.load]
    if hasattr(detector, "load"):
        loaders.append(detector.load)
    return Backends(recognizer=recognizer, llm=llm, tts=tts, make_listener=make_listener, loaders=loaders,
                    end_of_turn=detector, knowledge=build_knowledge(settings))


def build_knowledge(settings: Settings) -> KnowledgeBase | None:
    """The BM25 index of `knowledge.file` (built here, once: a facts file indexes in milliseconds)."""
    cfg = settings.knowledge
    if not cfg.file:
        return None
    from llm.knowledge import KnowledgeBase
    kb = KnowledgeBase.from_file(cfg.file, top_k=cfg.top_k, min_score=cfg.min_score,
                                 relative_score=cfg.relative_score, max_context_tokens=cfg.max_context_tokens,
                                 rules=cfg.rules)
    log.info("knowledge: %d sections from %s", len(kb.sections), cfg.file)
    return kb


def build_end_of_turn(settings: Settings, llm: LanguageModel) -> EndOfTurnDetector | None:
    """The end-of-turn detector on the LLM in memory; None (semantic_vad = timing only) for a remote LLM."""
    if not settings.turns.detector:
        return None
    if settings.llm.kind == "llama-cpp":
        from llm.end_of_turn import LlamaCppEndOfTurn
        return LlamaCppEndOfTurn(settings.llm, threads=settings.turns.detector_threads)
    if settings.llm.kind == "vllm":
        from llm.end_of_turn import VllmEndOfTurn
        return VllmEndOfTurn(llm)
    return None


# kind → (module, class); the module is imported only when its backend is chosen.
LLM_BACKENDS = {"vllm": ("llm.vllm_engine", "VllmLanguageModel"),
                "llama-cpp": ("llm.llamacpp", "LlamaCppLanguageModel"),
                "openai": ("llm.remote", "OpenAICompatLanguageModel")}


def _construct(table: dict[str, tuple[str, str]], cfg: Any) -> Any:
    module, name = table[cfg.kind]
    return getattr(importlib.import_module(module), name)(cfg)


def build_llm(settings: Settings) -> LanguageModel:
    return _construct(LLM_BACKENDS, settings.llm)


def build_tts(settings: Settings) -> SpeechSynthesizer:
    from tts.factory import build_synthesizer  # imports the chosen backend's module only
    return build_synthesizer(settings.tts)
