"""Scripted stand-ins for the model backends, for fast tests of the server's streaming logic.

They implement the same Protocols as the real backends (falante.types) and tests/test_contract.py runs one suite
against fakes and real backends alike, so the fakes cannot drift from what the real ones do.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Callable, Sequence

import numpy as np

from asr.endpoint import EndOfTurnPolicy
from falante.config import VadSettings
from falante.types import (
    ASR_SAMPLE_RATE,
    ChatMessage,
    PhonemeTiming,
    SpeculativeFinal,
    SpeechChunk,
    SpeechResumed,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
    ToolSpec,
    Transcript,
)
from llm.errors import LLMError
from llm.tools import TOOL_CHOICES, new_call_id, offered

# a FakeLLM call script: (messages, the tools the model may call now) → (name, arguments) pairs, or none
CallScript = Callable[[Sequence[ChatMessage], Sequence[ToolSpec]], "list[tuple[str, dict | str]] | None"]


def minimal_arguments(schema: dict) -> dict:
    """Arguments that satisfy a simple object schema: each required property's first enum value or a typed default."""
    defaults = {"string": "x", "integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}
    props = schema.get("properties", {})
    return {name: (props.get(name, {}).get("enum") or [defaults.get(props.get(name, {}).get("type"), "x")])[0]
            for name in schema.get("required", [])}


class FakeRecognizer:
    """Answers `text_for(duration_s)`; counts loads and calls."""

    def __init__(self, text_for: Callable[[float], str] = lambda s: "quero saber o horário de funcionamento"):
        self.text_for, self.loads, self.calls, self.closed = text_for, 0, 0, False

    def load(self) -> None:
        self.loads += 1

    def close(self) -> None:
        self.closed = True

    async def transcribe(self, audio: np.ndarray, *, language: str | None = None, partial: bool = False,
                         draft: bool = False) -> str:
        if self.closed:
            raise RuntimeError("the recognizer is closed")
        if not np.all(np.isfinite(audio)):
            raise ValueError("audio contains NaN or inf samples")
        self.calls += 1
        await asyncio.sleep(0.01)
        return self.text_for(len(audio) / ASR_SAMPLE_RATE) if len(audio) >= ASR_SAMPLE_RATE // 10 else ""


class FakeEndOfTurn:
    """Scripted end-of-turn scores: a phrase ending in '?', '!' or '.' on a content word is finished (0.9), anything
    else is not (0.001); '' scores 0.0 like the real detectors. Records the texts it scored."""

    FUNCTION_WORDS = frozenset(["a", "o", "as", "os", "um", "uma", "de", "da", "do", "das", "dos", "em", "no", "na", "para", "pra", "por", "que", "se", "e", "mas", "ou", "com", "sobre", "então", "porque", "quando", "onde"])

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def end_probability(self, text: str) -> float:
        await asyncio.sleep(0)
        self.texts.append(text)
        words = text.strip().split()
        if not words:
            return 0.0
        last = words[-1]
        finished = last[-1] in "?!." and not last.endswith("...") and last.rstrip("?!.").lower() not in \
            self.FUNCTION_WORDS
        return 0.9 if finished else 0.001


SPECULATE_MS = 100  # FakeListener: silence before the final is decoded and scored (the real one: 96 ms)


class FakeListener:
    """Energy VAD (RMS over 20 ms windows) + FakeRecognizer finals, with the real VadSettings semantics.

    semantic_vad (`end_of_turn` policy): after SPECULATE_MS of silence the utterance so far is transcribed and
    scored right there, in audio order, so which silence ends a turn never depends on wall time.
    """

    def __init__(self, recognizer: FakeRecognizer, vad: VadSettings, threshold_rms: float = 0.02,
                 end_of_turn: EndOfTurnPolicy | None = None):
        self.recognizer, self.vad, self.threshold = recognizer, vad, threshold_rms
        self.end_of_turn = end_of_turn

    def reset(self) -> None:
        pass

    async def events(self, chunks: AsyncIterator[np.ndarray]) -> AsyncIterator:
        win = ASR_SAMPLE_RATE // 50
        min_speech = self.vad.min_speech_ms * ASR_SAMPLE_RATE // 1000
        min_silence = self.vad.silence_ms * ASR_SAMPLE_RATE // 1000
        pos, carry = 0, np.zeros(0, np.float32)
        speech_start = last_voice = None
        started = False
        utterance: list[np.ndarray] = []
        policy, scored = self.end_of_turn, None  # scored: (score, text) of the current silence once decoded
        announced = False  # a SpeculativeFinal went out for the current silence
        speculate = SPECULATE_MS * ASR_SAMPLE_RATE // 1000
        async for chunk in chunks:
            carry = np.concatenate([carry, chunk])
            while len(carry) >= win:
                frame, carry = carry[:win], carry[win:]
                voiced = float(np.sqrt(np.mean(frame ** 2))) > self.threshold
                if voiced:
                    speech_start = pos if speech_start is None else speech_start
                    last_voice = pos + win
                    scored = None
                    if announced:
                        announced = False
                        yield SpeechResumed(pos)
                if speech_start is not None:
                    utterance.append(frame)
                    if not started and last_voice - speech_start >= min_speech:
                        started = True
                        yield SpeechStarted(speech_start)
                    silence = pos + win - last_voice
                    stopped = None
                    if started and policy is not None and scored is None and silence >= speculate:
                        text = await self.recognizer.transcribe(np.concatenate(utterance))
                        scored = (await policy.score(text), text)
                        if policy.decision(scored[0]) == "complete":
                            announced = True
                            yield SpeculativeFinal(text, last_voice)
                    if started and scored is not None and silence >= policy.wait_samples(scored[0]):
                        stopped = SpeechStopped(last_voice, policy.decision(scored[0]), scored[0],
                                                silence * 1000 // ASR_SAMPLE_RATE)
                    elif started and silence >= min_silence:
                        stopped = SpeechStopped(last_voice) if policy is None else SpeechStopped(
                            last_voice, "max_silence", scored[0] if scored else None, silence * 1000 // ASR_SAMPLE_RATE)
                    if stopped is not None:
                        yield stopped
                        # the speculative decode is the final when nobody spoke since (as in asr.listener)
                        text = scored[1] if scored else await self.recognizer.transcribe(np.concatenate(utterance))
                        scored, announced = None, False
                        yield Transcript(text, True, speech_start, last_voice)
                        speech_start = last_voice = None
                        started, utterance = False, []
                    elif not started and not voiced and pos - last_voice > min_silence:
                        speech_start, utterance = None, []
                pos += win


class FakeLLM:
    """Streams `reply` word by word with `delay` s between tokens; records requests and aborts.

    Tool calls (scripted): `calls(messages, offered_tools)` returns the calls to make, or None to answer in text.
    Like the real backends: tool_choice "none" (or no tools) never calls; "required"/a name always calls (the
    script's calls, else the chosen tool with minimal valid arguments); each call takes `call_delay` s to decode.
    """

    def __init__(self, reply: str | Callable[[Sequence[ChatMessage]], str] = "Claro! Abrimos às nove horas.",
                 delay: float = 0.005, fail_after: int | None = None, calls: CallScript | None = None,
                 call_delay: float = 0.005):
        self.reply, self.delay, self.fail_after = reply, delay, fail_after
        self.calls, self.call_delay = calls, call_delay
        self.active = 0
        self.aborted = 0
        self.requests: list[list[ChatMessage]] = []
        self.tool_requests: list[tuple[tuple[ToolSpec, ...], str]] = []  # (tools, tool_choice) per request

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def complete(self, messages: Sequence[ChatMessage], *, max_tokens: int = 256, temperature: float = 0.7,
                       tools: Sequence[ToolSpec] = (), tool_choice: str = "auto") -> AsyncIterator[str | ToolCall]:
        self.requests.append(list(messages))
        self.tool_requests.append((tuple(tools), tool_choice))
        usable = offered(tools, tool_choice)
        if tools and tool_choice not in TOOL_CHOICES and not usable:
            raise LLMError(f"tool_choice names {tool_choice!r}, which is not among the tools", code="invalid_request")
        planned = (self.calls(messages, usable) if self.calls and usable else None) or []
        if usable and tool_choice != "auto":
            planned = [c for c in planned if tool_choice in TOOL_CHOICES or c[0] == tool_choice][:1] or [
                (usable[0].name, minimal_arguments(usable[0].parameters))]
        text = self.reply(messages) if callable(self.reply) else self.reply
        self.active += 1
        try:
            if planned:
                for name, arguments in planned:
                    await asyncio.sleep(self.call_delay)
                    yield ToolCall(new_call_id(), name,
                                   arguments if isinstance(arguments, str) else json.dumps(arguments))
                return
            for i, word in enumerate(text.split(" ")[:max_tokens]):
                if self.fail_after is not None and i >= self.fail_after:
                    raise LLMError("scripted engine failure")
                await asyncio.sleep(self.delay)
                yield word if i == 0 else " " + word
        except (asyncio.CancelledError, GeneratorExit):
            self.aborted += 1
            raise
        finally:
            self.active -= 1


class FakeTTS:
    """A 220 Hz tone, `seconds_per_word` long per word, one chunk per call, phonemes spread evenly; RTF `rtf`."""

    sample_rate = 24_000

    def __init__(self, seconds_per_word: float = 0.3, rtf: float = 0.05):
        self.seconds_per_word, self.rtf, self.loads, self.stopped = seconds_per_word, rtf, 0, 0
        self.closed = False

    def load(self) -> None:
        self.loads += 1

    def close(self) -> None:
        self.closed = True

    def voices(self) -> list[str]:
        return ["fake_a", "fake_b"]

    async def synthesize(self, text: str, *, voice: str | None = None, speed: float = 1.0) -> AsyncIterator[SpeechChunk]:
        if self.closed:
            raise RuntimeError("the synthesizer is closed")
        words = text.split()
        if not words:
            return
        n = int(self.sample_rate * self.seconds_per_word * len(words) / speed)
        try:
            await asyncio.sleep(n / self.sample_rate * self.rtf)
        except asyncio.CancelledError:
            self.stopped += 1
            raise
        t = np.arange(n) / self.sample_rate
        audio = (0.3 * np.sin(2 * math.pi * 220 * t) * np.minimum(1, 20 * t)).astype(np.float32)
        letters = [c for c in text.lower() if c.isalpha()] or ["a"]
        step = n // len(letters)
        phonemes = tuple(PhonemeTiming(c, i * step, (i + 1) * step) for i, c in enumerate(letters))
        yield SpeechChunk(audio, self.sample_rate, phonemes, text)
