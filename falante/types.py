"""The small, frozen values and backend Protocols every stage agrees on.

Audio conventions (why: one clock for everything):
- ASR input is mono float32 in [-1, 1] at 16 kHz (`ASR_SAMPLE_RATE`); the server resamples client audio.
- TTS output is mono float32 at the backend's own `sample_rate` (Kokoro: 24 kHz); the server resamples to the
  session's output rate and counts output samples — that count is the clock avatar frames are stamped with.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

ASR_SAMPLE_RATE = 16_000


# ----------------------------------------------------------------------------------------------- ASR
@dataclass(frozen=True)
class SpeechStarted:
    """VAD saw speech that lasted at least the configured minimum. `sample` = 16 kHz offset of its start."""

    sample: int


@dataclass(frozen=True)
class SpeechStopped:
    """The turn ended. `sample` = 16 kHz offset where speech ended.

    Why the turn ended (for metrics): `decision` "silence" (server_vad: the fixed silence), "complete" (semantic_vad:
    the detector called the phrase finished), "max_silence" (semantic_vad's hard cap), "timing" (semantic_vad with
    no text signal). `score`: the end-of-turn probability used, if any; `waited_ms`: silence before the decision.
    """

    sample: int
    decision: str = "silence"
    score: float | None = None
    waited_ms: int | None = None


@dataclass(frozen=True)
class Transcript:
    """A recognition result for the current utterance; `final=False` are partials that may still change."""

    text: str
    final: bool
    start_sample: int = 0
    end_sample: int = 0


@dataclass(frozen=True)
class SpeculativeFinal:
    """semantic_vad: the speculative final scored as finished before the turn ended; a reply may be prepared on
    `text` but shown only if the turn's final is this text (same `end_sample`). Listeners without it never send it."""

    text: str
    end_sample: int


@dataclass(frozen=True)
class SpeechResumed:
    """The user went on speaking after a SpeculativeFinal: whatever was prepared on it must go, without a trace."""

    sample: int


ListenerEvent = SpeechStarted | SpeechStopped | Transcript | SpeculativeFinal | SpeechResumed


@runtime_checkable
class SpeechRecognizer(Protocol):
    """One shared model per process. `load` is blocking and called once at start-up (in a thread)."""

    def load(self) -> None: ...

    def close(self) -> None:
        """Blocking; stop the workers after queued jobs and free the model (server shutdown, called in a thread)."""
        ...

    async def transcribe(self, audio: np.ndarray, *, language: str | None = None, partial: bool = False,
                         draft: bool = False) -> str:
        """Transcribe 16 kHz float32 mono audio. Runs the model off the event loop; cancellation-safe.

        `partial`: a cheap draft while the user speaks; `draft`: the cheapest one, ahead of everything queued, for
        semantic_vad's end-of-turn decision."""
        ...


# ----------------------------------------------------------------------------------------------- LLM
@dataclass(frozen=True)
class ToolSpec:
    """A function the client offers the model (OpenAI `{"type": "function", name, description, parameters}`)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True)
class ToolCall:
    """The model asks the client to run `name`; `arguments` is JSON text (an object) as the protocol carries it."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ChatMessage:
    """A chat turn. role "assistant" may carry `tool_calls`; role "tool" answers the call `tool_call_id`."""

    role: str  # "system" | "user" | "assistant" | "tool"
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


# tool_choice: "auto" (the model decides), "none" (never calls), "required" (calls some tool), or a tool's name
# (calls that one). Tool names "auto"/"none"/"required" are refused by the protocol, so the values never collide.
ToolChoice = str


@runtime_checkable
class LanguageModel(Protocol):
    """One shared engine per process. `start`/`close` are async because engines (vLLM) own event-loop tasks."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 256, temperature: float = 0.7,
        tools: Sequence[ToolSpec] = (), tool_choice: ToolChoice = "auto",
    ) -> AsyncIterator[str | ToolCall]:
        """Stream text deltas, and a `ToolCall` for each whole call the model makes (after any text).

        With `tools` empty or `tool_choice="none"` only text comes. "required"/a tool's name: only calls come.
        Closing/cancelling the iterator aborts the generation in the engine.
        """
        ...


@runtime_checkable
class EndOfTurnDetector(Protocol):
    """P(the user's message ends right after `text`), from a text model. One shared per process.

    Why a text signal: a pause after "Eu queria saber se vocês" is a hesitation, after "Vocês abrem no domingo?" it
    is the end of the turn; the silence alone cannot tell them apart. Runs off the event loop; cancellation-safe.
    Empty text scores 0.0.
    """

    async def end_probability(self, text: str) -> float: ...


# ----------------------------------------------------------------------------------------------- TTS
@dataclass(frozen=True)
class PhonemeTiming:
    """One phoneme (IPA symbol(s)) and the samples of its chunk it covers, in the chunk's sample rate."""

    phoneme: str
    start_sample: int
    end_sample: int


@dataclass(frozen=True)
class SpeechChunk:
    """A piece of synthesized speech plus the phoneme timings the avatar needs, aligned to `audio`."""

    audio: np.ndarray  # float32 mono
    sample_rate: int
    phonemes: tuple[PhonemeTiming, ...] = ()
    text: str = ""  # the text this chunk speaks (for transcripts and history truncation)


@runtime_checkable
class SpeechSynthesizer(Protocol):
    """One shared model per process; voices are chosen per call so sessions never mutate shared state."""

    sample_rate: int

    def load(self) -> None: ...

    def close(self) -> None:
        """Blocking; stop the synthesis workers (server shutdown, called in a thread). Later calls fail."""
        ...

    def voices(self) -> list[str]: ...

    def synthesize(self, text: str, *, voice: str | None = None, speed: float = 1.0) -> AsyncIterator[SpeechChunk]:
        """Stream chunks for `text` (one sentence or clause each). Cancelling stops the remaining work."""
        ...


# -------------------------------------------------------------------------------------------- avatar
@dataclass(frozen=True)
class AvatarFrame:
    """Face pose at output-audio sample `sample` (session output clock). Weights are 0..1.

    `visemes`: the 15 Oculus visemes in `avatar.VISEMES` order. `blendshapes`: ARKit-52 names → weight
    (only the non-zero mouth/jaw/eye ones are sent).
    """

    sample: int
    visemes: tuple[float, ...]
    blendshapes: dict[str, float] = field(default_factory=dict)
    expression: str = "neutral"
