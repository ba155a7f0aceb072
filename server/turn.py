"""One bot reply = one Turn = one cancellation scope: LLM → sentence splitter → TTS → avatar timeline → client.

Barge-in is `Turn.cancel()`: the task is cancelled, every backend aborts its own work in its CancelledError path
(vLLM `abort`, TTS stops), and events of this response still queued for the client are dropped by the Outbox.
The stages are joined by a bounded queue so the LLM never runs far ahead of speech.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from avatar import Timeline, expression_for, frames_to_wire
from falante.audio import StreamResampler, encode_pcm16_base64
from falante.config import Settings
from falante.g711 import encode_g711
from falante.types import ChatMessage, LanguageModel, SpeechSynthesizer, ToolCall, ToolSpec
from llm.errors import LLMError
from llm.knowledge import with_context
from llm.sentences import SentenceSplitter
from llm.tools import offered, validation_error
from server import events
from server.protocol import new_id

if TYPE_CHECKING:
    from llm.knowledge import KnowledgeBase

log = logging.getLogger("falante.turn")

DELTA_MS = 200  # audio per `response.output_audio.delta`: small enough that a barge-in drops little
SENTENCE_QUEUE = 4  # sentences the LLM may run ahead of the voice
# spoken when the model's function call fails validation twice (the client also gets an `invalid_tool_call` error)
TOOL_APOLOGY = "Desculpe, não consegui fazer isso agora."


def llm_failed_event(exc: LLMError) -> dict[str, Any]:
    return events.error("llm_failed", f"the language model failed: {exc}", type="server_error")


class InvalidToolCall(Exception):
    """The model's call names no offered tool or its arguments do not validate: it is never sent to the client."""


@dataclass
class MadeCall:
    """A function call this response sent to the client, with its place in the response's output."""

    call: ToolCall
    item_id: str
    output_index: int


@dataclass
class Spoken:
    """A piece of reply audio on the response clock and the text it speaks (for 'what was heard')."""

    start: int
    end: int
    text: str


@dataclass
class TurnOptions:
    voice: str | None
    speed: float
    out_rate: int
    audio: bool  # output_modalities == ["audio"]
    max_tokens: int
    temperature: float
    codec: str = "audio/pcm"  # or G.711 "audio/pcmu" / "audio/pcma"
    voice_name: str | None = None  # the voice as the client named it (an OpenAI name maps to `voice`)
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str = "auto"

    @property
    def calls_possible(self) -> bool:
        return bool(offered(self.tools, self.tool_choice))


@dataclass
class Turn:
    response_id: str
    item_id: str
    messages: list[ChatMessage]
    options: TurnOptions
    llm: LanguageModel
    tts: SpeechSynthesizer
    settings: Settings
    emit: Callable[[dict[str, Any]], Awaitable[None]]
    t_trigger: float = field(default_factory=time.perf_counter)  # speech end (or response.create) wall time
    timings: dict[str, float] = field(default_factory=dict)
    text: str = ""  # everything the LLM said
    spoken: list[Spoken] = field(default_factory=list)
    samples_sent: int = 0
    t_first_audio: float | None = None
    status: str = "in_progress"
    cancel_reason: str = ""
    t_cancel: float | None = None  # when the cancellation was decided (barge-in / response.cancel)
    task: asyncio.Task | None = None
    first_piece_out: asyncio.Event = field(default_factory=asyncio.Event)  # first audio sent (or nothing to say)
    end_of_turn: dict[str, Any] | None = None  # how the user's turn ended: type, decision, score, waited_ms
    metadata: dict[str, str] | None = None  # response.create's metadata, echoed in response.created/done
    input_tokens: int = 0  # the prompt's tokens (response.done usage), counted from the history's cached counts
    previous_item_id: str | None = None  # the conversation item before this reply's
    transcript_sent: int = 0  # characters of the stripped LLM text already sent as transcript/text deltas
    error: LLMError | None = None  # the LLM failed: the client got `llm_failed` and hears chat.error_reply
    knowledge: KnowledgeBase | None = None  # the operator's facts; `query` (the user's turn) retrieves from it
    query: str = ""
    calls: list[MadeCall] = field(default_factory=list)  # function calls sent, in output order
    message_index: int | None = None  # output_index of the assistant message item, once it is open
    outputs: int = 0  # output items opened so far
    open_message: Callable[[], Awaitable[None]] | None = None  # emits the message item's opening events (lazy)

    # ---------------------------------------------------------------------------------------------- control
    def start(self) -> asyncio.Task:
        self.task = asyncio.create_task(self._run(), name=f"turn-{self.response_id}")
        return self.task

    def cancel(self) -> None:
        if self.task and not self.task.done():
            self.status = "cancelled"
            self.t_cancel = time.perf_counter()
            self.task.cancel()

    def heard_samples(self, now: float | None = None) -> int:
        """Server's estimate of what the client has played: real-time playback from the first delta."""
        if self.t_first_audio is None:
            return 0
        elapsed = (now or time.perf_counter()) - self.t_first_audio
        return min(self.samples_sent, int(elapsed * self.options.out_rate))

    def heard_text(self, samples: int) -> str:
        """The words spoken in the first `samples` of the reply audio (a partly heard piece: pro rata by words)."""
        words: list[str] = []
        for piece in self.spoken:
            if samples >= piece.end:
                words += piece.text.split()
            elif samples > piece.start:
                part = piece.text.split()
                words += part[: int(len(part) * (samples - piece.start) / max(1, piece.end - piece.start))]
        return " ".join(words)

    # ---------------------------------------------------------------------------------------------- work
    async def _run(self) -> None:
        sentences: asyncio.Queue[str | None] = asyncio.Queue(SENTENCE_QUEUE)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._think(sentences))
                group.create_task(self._speak(sentences))
            self.status = "failed" if self.error else "completed"
        except* LLMError as errors:
            self.status = "failed"
            raise errors.exceptions[0] from None

    async def _think(self, sentences: asyncio.Queue[str | None]) -> None:
        splitter = SentenceSplitter(first_clause_words=self.settings.chat.first_clause_words)
        t0 = time.perf_counter()
        if self.knowledge is not None and self.query:
            # this turn's prompt only: the history (and later turns) never see the retrieved facts
            self.messages = with_context(self.messages, await self.knowledge.acontext(self.query))
            self.timings["retrieval"] = time.perf_counter() - t0
        try:
            await self._generate(sentences, splitter, t0)
        except LLMError as exc:
            if not self.settings.chat.error_reply:
                raise
            self.error = exc  # say so rather than fall silent: the error event now, the apology after what was said
            await self.emit(llm_failed_event(exc))
            self.text = f"{self.text} {self.settings.chat.error_reply}".strip()  # the transcript is what was said
            splitter = SentenceSplitter(first_clause_words=self.settings.chat.first_clause_words)
            for sentence in splitter.push(self.settings.chat.error_reply):
                await self._queue_sentence(sentences, sentence, t0)
        for sentence in splitter.flush():
            await self._queue_sentence(sentences, sentence, t0)
        await sentences.put(None)

    async def _generate(self, sentences: asyncio.Queue[str | None], splitter: SentenceSplitter, t0: float) -> None:
        try:
            await self._think_once(sentences, splitter, t0, speak=True)
        except InvalidToolCall as first:  # retry once; what was already said is not said again
            log.warning("response %s: invalid tool call, retrying: %s", self.response_id, first)
            try:
                await self._think_once(sentences, splitter, t0, speak=not self.text)
            except InvalidToolCall as second:
                log.warning("response %s: invalid tool call again: %s", self.response_id, second)
                await self.emit(events.error("invalid_tool_call", "the model could not make a valid function "
                                             f"call (asked twice); it was not sent: {second}", type="server_error"))
                for sentence in splitter.flush():
                    await self._queue_sentence(sentences, sentence, t0)
                self.text += (" " if self.text else "") + TOOL_APOLOGY
                await self._queue_sentence(sentences, TOOL_APOLOGY, t0)

    async def _think_once(self, sentences: asyncio.Queue[str | None], splitter: SentenceSplitter, t0: float,
                          speak: bool) -> None:
        """One LLM request: text goes to the splitter (if `speak`), each valid call to the client at once."""
        opts = self.options
        try:
            async for item in self.llm.complete(self.messages, max_tokens=opts.max_tokens,
                                                temperature=opts.temperature, tools=opts.tools,
                                                tool_choice=opts.tool_choice):
                if "llm_first_token" not in self.timings:
                    self.timings["llm_first_token"] = time.perf_counter() - t0
                if isinstance(item, ToolCall):
                    await self._send_call(item)
                    continue
                if not speak:
                    continue
                self.text += item
                for sentence in splitter.push(item):
                    await self._queue_sentence(sentences, sentence, t0)
                    if opts.audio and self.settings.chat.llm_waits_for_first_audio:
                        await self.first_piece_out.wait()  # the LLM (llama.cpp: within 8 tokens) leaves the CPU
        except LLMError as exc:
            if exc.code == "invalid_tool_call":  # the backend's call was cut short (max_tokens): same as invalid
                raise InvalidToolCall(str(exc)) from None
            raise

    async def _send_call(self, call: ToolCall) -> None:
        """Validate the model's call against the offered tools' schemas; only a valid one reaches the client."""
        error = validation_error(call, offered(self.options.tools, self.options.tool_choice), self.options.tool_choice)
        if error:
            raise InvalidToolCall(error)
        if any((m.call.name, m.call.arguments) == (call.name, call.arguments) for m in self.calls):
            return  # the retry repeated a call already sent
        item_id, index = new_id("item"), self.outputs
        self.outputs += 1
        self.calls.append(MadeCall(call, item_id, index))
        rid = self.response_id
        added = events.function_call_item(item_id, call, "in_progress")
        await self.emit(events.output_item_added(rid, added, index))
        await self.emit(events.item_added(added, None))
        for delta in events.arguments_deltas(rid, item_id, index, call):
            await self.emit(delta)
        await self.emit(events.arguments_done(rid, item_id, index, call))
        done = events.function_call_item(item_id, call, "completed")
        await self.emit(events.output_item_done(rid, done, index))
        await self.emit(events.item_done(done, None))

    async def ensure_message(self) -> None:
        """Open the assistant message item (output_item.added …) if it is not open yet."""
        if self.message_index is None:
            self.message_index = self.outputs
            self.outputs += 1
            if self.open_message is not None:
                await self.open_message()

    @property
    def index(self) -> int:
        """The message's output_index (0 until it is open: a reply without calls)."""
        return self.message_index or 0

    async def _queue_sentence(self, sentences: asyncio.Queue[str | None], sentence: str, t0: float) -> None:
        self.timings.setdefault("llm_first_sentence", time.perf_counter() - t0)
        await sentences.put(sentence)

    async def _speak(self, sentences: asyncio.Queue[str | None]) -> None:
        timeline = Timeline(self.settings.avatar.fps, self.options.out_rate, self.settings.avatar.smoothing_ms)
        resampler: StreamResampler | None = None
        frames: list = []  # avatar frames not yet sent: those past the audio sent so far wait for their audio
        first = True
        while (sentence := await sentences.get()) is not None:
            if first:
                first = False
                await self.ensure_message()
                await self.emit(events.avatar_state("speaking", expression_for(sentence),
                                                    response_id=self.response_id, item_id=self.item_id))
            if not self.options.audio:
                await self.emit(events.text_delta(self.response_id, self.item_id, self._transcript_upto(sentence),
                                                  self.index))
                self.spoken.append(Spoken(0, 0, sentence))
                continue
            t_sentence = time.perf_counter()
            async for chunk in self.tts.synthesize(sentence, voice=self.options.voice, speed=self.options.speed):
                if resampler is None or resampler.from_rate != chunk.sample_rate:
                    if resampler is not None:  # another rate: the old stream's tail goes out first
                        frames = await self._send_audio(resampler.flush(), frames)
                    resampler = StreamResampler(chunk.sample_rate, self.options.out_rate)
                audio = resampler(chunk.audio)
                start = self.samples_sent
                frames += timeline.frames_for(chunk, start, self.options.out_rate)
                self.timings.setdefault("tts_first_audio", time.perf_counter() - t_sentence)
                if delta := self._transcript_upto(sentence):  # the LLM's words, on the sentence's first chunk
                    await self.emit(events.audio_transcript_delta(self.response_id, self.item_id, delta, self.index))
                frames = await self._send_audio(audio, frames)
                self.first_piece_out.set()
                self.spoken.append(Spoken(start, self.samples_sent, chunk.text or sentence))
            self.first_piece_out.set()  # a sentence with nothing to say must not hold the LLM
        if rest := self.text.strip()[self.transcript_sent:]:  # e.g. a last sentence with nothing to say
            self.transcript_sent += len(rest)
            await self.ensure_message()
            delta = events.audio_transcript_delta if self.options.audio else events.text_delta
            await self.emit(delta(self.response_id, self.item_id, rest, self.index))
        if self.options.audio:
            if resampler is not None:  # the resampler's filter delay: the reply's last samples and their frames
                start = self.samples_sent
                frames = await self._send_audio(resampler.flush(), frames)
                if self.spoken and self.samples_sent > start:
                    self.spoken[-1].end = self.samples_sent
            tail = [*frames, *timeline.finish(self.samples_sent)]
            if tail:
                await self._emit_frames(tail)

    async def _send_audio(self, audio: np.ndarray, frames: list) -> list:
        """Send `audio` in DELTA_MS deltas, each after the frames it covers; returns the frames still ahead."""
        step = self.options.out_rate * DELTA_MS // 1000
        for offset in range(0, len(audio), step):
            piece = audio[offset: offset + step]
            hi = self.samples_sent + len(piece)
            covered = [f for f in frames if f.sample < hi]
            if covered:
                frames = [f for f in frames if f.sample >= hi]
                await self._emit_frames(covered)
            if self.t_first_audio is None:
                self.t_first_audio = time.perf_counter()
                self.timings["voice_to_voice"] = self.t_first_audio - self.t_trigger
            await self.emit(events.audio_delta(self.response_id, self.item_id, self._encode(piece), self.index))
            self.samples_sent = hi
        return frames

    def _transcript_upto(self, sentence: str) -> str:
        """The LLM's text (as `.done` will carry it) from what was sent up to the end of `sentence`.

        Why not the TTS chunk's text: that is the normalised, spoken form ("vinte e cinco reais" for "R$ 25");
        the transcript is what the LLM wrote, so the deltas add up to the done transcript. The splitter's
        sentences are stripped, verbatim pieces of `text`, in order.
        """
        text = self.text.strip()
        at = text.find(sentence, self.transcript_sent)
        if at < 0:
            return ""
        delta = text[self.transcript_sent: at + len(sentence)]
        self.transcript_sent = at + len(sentence)
        return delta

    def _encode(self, piece: np.ndarray) -> str:
        if self.options.codec == "audio/pcm":
            return encode_pcm16_base64(piece)
        return encode_g711(piece, self.options.codec)

    async def _emit_frames(self, frames: list) -> None:
        await self.emit(events.avatar_frames(self.response_id, self.item_id, self.settings.avatar.fps,
                                             self.options.out_rate, frames_to_wire(frames)))
