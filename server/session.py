"""One Session per websocket connection: its config, conversation, audio input and the current Turn.

Control overtakes data: client events are handled as they arrive; a barge-in cancels the running Turn at once
and the Outbox drops that turn's queued audio. Nothing here is shared between sessions except the read-only
`Backends` (models) and `Metrics`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from asr.endpoint import EndOfTurnPolicy
from falante.audio import AudioFormatError, StreamResampler, decode_pcm16_base64
from falante.config import Settings
from falante.g711 import decode_g711
from falante.types import (
    ASR_SAMPLE_RATE,
    ChatMessage,
    SpeculativeFinal,
    SpeechResumed,
    SpeechStarted,
    SpeechStopped,
    Transcript,
)
from llm.conversation import Conversation, token_counter_for
from server import protocol as p
from server.backends import Backends
from server.config_state import SessionConfig
from server.limits import TokenBucket
from server.metrics import Metrics
from server.outbox import Outbox
from server.speculation import Gate, Speculation
from server.turn import Turn, TurnOptions

log = logging.getLogger("falante.session")

MIN_COMMIT_MS = 100
AUDIO_QUEUE_CHUNKS = 256  # ~25 s of 100 ms appends between the websocket and the listener


class Session:
    def __init__(self, backends: Backends, settings: Settings, metrics: Metrics,
                 send_text: Callable[[str], Awaitable[None]]) -> None:
        self.id = p.new_id("sess")
        self.backends, self.settings, self.metrics = backends, settings, metrics
        self.outbox = Outbox(send_text)
        self.config = SessionConfig.defaults(settings)
        self.conversation = Conversation(settings.chat.persona, budget_tokens=settings.chat.history_tokens,
                                         count_tokens=token_counter_for(backends.llm),
                                         max_items=settings.limits.max_history_items)
        self.bucket = TokenBucket(settings.limits.max_events_per_second, settings.limits.burst_events)
        self.turn: Turn | None = None
        self._turn_runner: asyncio.Task | None = None
        self._past_turns: dict[str, Turn] = {}  # item_id → finished turn, for conversation.item.truncate
        self._unheard: set[str] = set()  # cancelled replies nobody heard: not in history unless truncate says so
        self._item_ids: set[str] = set()  # every item id of this session (a set: the check runs per item)
        self._last_item_id: str | None = None
        # audio input (16 kHz clock, counted from the session start)
        self._resampler = StreamResampler(self.config.input_rate, ASR_SAMPLE_RATE)
        self.samples_in = 0
        self._pending: list[np.ndarray] = []  # audio since the last committed utterance, for manual commits
        self._pending_samples = 0
        self._arrivals: deque[tuple[int, float]] = deque(maxlen=2000)  # (sample count after append, wall time)
        self._audio_queue: asyncio.Queue[np.ndarray | None] | None = None
        self._listener_task: asyncio.Task | None = None
        self._listener_base = 0
        self._speech: tuple[str, int] | None = None  # (item_id, start sample) while the user speaks
        self._t_speech_stopped = 0.0
        self._partial_sent = ""  # partial transcript text already sent as deltas
        self._end_of_turn: dict[str, Any] | None = None  # how the last user turn ended (falante.response.metrics)
        self._speculation: Speculation | None = None  # a reply held back until the turn's final confirms it

    # --------------------------------------------------------------------------------------------- lifecycle
    async def open(self) -> None:
        await self.emit({"type": "session.created", "session": self.config.describe(self.id, self.backends.tts.voices())})
        self._restart_listener()

    async def close(self) -> None:
        self._drop_speculation()
        await self._interrupt("session_closed", notify=False)
        if self._listener_task:
            self._listener_task.cancel()
            await asyncio.gather(self._listener_task, return_exceptions=True)

    async def emit(self, event: dict[str, Any]) -> None:
        if event["type"] == "error":
            self.metrics.client_errors.labels(code=event["error"]["code"]).inc()
        await self.outbox.put(event)

    async def error(self, exc: p.ProtocolError) -> None:
        await self.emit(exc.to_event())

    # --------------------------------------------------------------------------------------------- input
    async def handle_message(self, message: str | bytes) -> None:
        """Validate and dispatch one websocket message; every client mistake becomes an `error` event."""
        try:
            if not self.bucket.take():
                raise p.ProtocolError("rate_limited", "too many events: the session's rate limit is "
                                      f"{self.settings.limits.max_events_per_second:g}/s; this event was dropped",
                                      type="rate_limit_error")
            if isinstance(message, bytes):
                raise p.ProtocolError("binary_not_supported", "send events as JSON text frames")
            # surrogatepass: a str with a lone surrogate (never from a websocket) is refused below as invalid_text
            if len(message.encode("utf-8", "surrogatepass")) > self.settings.limits.max_message_bytes:
                raise p.ProtocolError("message_too_large", f"message exceeds the limit of "
                                      f"{self.settings.limits.max_message_bytes} bytes; split audio into smaller "
                                      "appends")
            try:
                raw = json.loads(message)
            except (ValueError, RecursionError) as exc:  # ValueError: also ints over 4300 digits
                raise p.ProtocolError("invalid_json", f"message is not valid JSON: {exc}") from None
            event = p.parse_client_event(raw)
            handler = getattr(self, "_on_" + event.type.replace(".", "_"))
            try:
                await handler(event)
            except p.ProtocolError as exc:
                exc.event_id = exc.event_id or event.event_id
                raise
        except p.ProtocolError as exc:
            await self.error(exc)
        except Exception as exc:  # a server bug: report it, keep the session and the server alive
            log.exception("session %s: unhandled error", self.id)
            await self.error(p.ProtocolError("internal_error", f"internal error: {type(exc).__name__}: {exc}",
                                             type="server_error"))

    def _check_instructions(self, instructions: str | None, param: str) -> None:
        limit = self.settings.limits.max_instructions_chars
        if instructions and len(instructions) > limit:
            raise p.ProtocolError("instructions_too_long", f"instructions exceed {limit} characters", param=param)

    async def _on_session_update(self, event: p.SessionUpdateEvent) -> None:
        self._check_instructions(event.session.instructions, "session.instructions")
        old_rate, old_vad = self.config.input_rate, self.config.vad_key()
        self.config = self.config.updated(event.session, voices=self.backends.tts.voices())
        if event.session.instructions is not None:
            self.conversation.set_persona(instructions=event.session.instructions)
        if self.config.input_rate != old_rate:
            self._resampler = StreamResampler(self.config.input_rate, ASR_SAMPLE_RATE)
        if self.config.vad_key() != old_vad:
            self._restart_listener()
        await self.emit({"type": "session.updated", "session": self.config.describe(self.id, self.backends.tts.voices())})

    async def _on_input_audio_buffer_append(self, event: p.AppendEvent) -> None:
        try:
            if self.config.input_codec == "audio/pcm":
                audio = decode_pcm16_base64(event.audio)
            else:
                audio = decode_g711(event.audio, self.config.input_codec)
        except AudioFormatError as exc:
            raise p.ProtocolError("invalid_audio", str(exc), param="audio") from None
        if not audio.size:
            return
        limit = int(self.settings.limits.max_buffer_seconds * ASR_SAMPLE_RATE)
        chunk = self._resampler(audio)
        if self.config.turn_detection is None and self._pending_samples + len(chunk) > limit:
            raise p.ProtocolError("input_audio_buffer_full", f"the input buffer holds at most "
                                  f"{self.settings.limits.max_buffer_seconds:g} s; commit or clear it first")
        self.samples_in += len(chunk)
        self._arrivals.append((self.samples_in, time.perf_counter()))
        self.metrics.audio_seconds_in.inc(len(chunk) / ASR_SAMPLE_RATE)
        self._pending.append(chunk)
        self._pending_samples += len(chunk)
        while self._pending_samples > limit and len(self._pending) > 1:  # server VAD: keep the newest audio
            self._pending_samples -= len(self._pending.pop(0))
        if self._audio_queue is not None:
            if self._audio_queue.full():
                raise p.ProtocolError("audio_backlog", "speech recognition is behind; this chunk was dropped — "
                                      "send audio in real time", type="server_error")
            self._audio_queue.put_nowait(chunk)
        await self._maybe_barge_in()

    async def _on_input_audio_buffer_commit(self, event: p.CommitEvent) -> None:
        if self._pending_samples < MIN_COMMIT_MS * ASR_SAMPLE_RATE // 1000:
            raise p.ProtocolError("input_audio_buffer_commit_empty", f"buffer too small: expected at least "
                                  f"{MIN_COMMIT_MS} ms of audio, got {self._pending_samples * 1000 // ASR_SAMPLE_RATE} ms")
        audio = np.concatenate(self._pending)
        end = self.samples_in
        self._clear_pending()
        if self._listener_task:
            self._restart_listener()
        item_id = self._speech[0] if self._speech else p.new_id("item")
        self._speech = None
        await self._committed(item_id)
        t0 = time.perf_counter()
        text = await self.backends.recognizer.transcribe(audio, language=self.config.language)
        self.metrics.observe("asr_final", time.perf_counter() - t0)
        await self._transcribed(item_id, text, t_trigger=self._arrival_time(end))

    async def _on_input_audio_buffer_clear(self, event: p.ClearEvent) -> None:
        self._drop_speculation()
        self._clear_pending()
        self._speech = None
        if self._listener_task:
            self._restart_listener()
        await self.emit({"type": "input_audio_buffer.cleared"})

    async def _on_conversation_item_create(self, event: p.ItemCreateEvent) -> None:
        item = event.item
        text = " ".join(part.text or part.transcript or "" for part in item.content).strip()
        if any(part.audio for part in item.content):
            raise p.ProtocolError("unsupported_content", "audio content in conversation.item.create is not "
                                  "supported; stream it with input_audio_buffer.append", param="item.content")
        if not text:
            raise p.ProtocolError("empty_item", "the item has no text", param="item.content")
        if len(text) > self.settings.limits.max_text_chars:
            raise p.ProtocolError("text_too_long", f"item text exceeds {self.settings.limits.max_text_chars} "
                                  "characters", param="item.content")
        item_id = item.id or p.new_id("item")
        if item_id in self._item_ids:
            raise p.ProtocolError("duplicate_item_id", f"item id {item_id!r} already exists", param="item.id")
        if item.role == "system":
            self.conversation.set_persona(instructions=text)
        else:
            self.conversation.add(item.role, text, item_id)
        await self._item_added(item_id, item.role, [{"type": item.content[0].type, "text": text}])

    async def _on_conversation_item_truncate(self, event: p.ItemTruncateEvent) -> None:
        turn = self._past_turns.get(event.item_id) or (self.turn if self.turn and self.turn.item_id ==
                                                        event.item_id else None)
        if turn is None:
            raise p.ProtocolError("item_not_found", f"no assistant audio item {event.item_id!r}", param="item_id")
        samples = min(turn.samples_sent, event.audio_end_ms * turn.options.out_rate // 1000)
        heard = turn.heard_text(samples)
        if event.item_id in self._unheard:
            if heard:
                self._unheard.discard(event.item_id)
                self.conversation.add_assistant(heard, event.item_id)
        elif any(i.id == event.item_id for i in self.conversation.items):
            self.conversation.truncate_assistant(event.item_id, heard)
        await self.emit({"type": "conversation.item.truncated", "item_id": event.item_id,
                         "content_index": event.content_index, "audio_end_ms": samples * 1000 // turn.options.out_rate})

    async def _on_conversation_item_delete(self, event: p.ItemDeleteEvent) -> None:
        try:
            self.conversation.delete(event.item_id)
        except (KeyError, ValueError):
            raise p.ProtocolError("item_not_found", f"no conversation item {event.item_id!r}",
                                  param="item_id") from None
        await self.emit({"type": "conversation.item.deleted", "item_id": event.item_id})

    async def _on_response_create(self, event: p.ResponseCreateEvent) -> None:
        if self.turn is not None:
            raise p.ProtocolError("conversation_already_has_active_response",
                                  f"response {self.turn.response_id} is still in progress; cancel it first")
        self._check_instructions(event.response and event.response.instructions, "response.instructions")
        await self._start_turn(time.perf_counter(), event.response)

    async def _on_response_cancel(self, event: p.ResponseCancelEvent) -> None:
        if self.turn is None or (event.response_id and event.response_id != self.turn.response_id):
            raise p.ProtocolError("response_cancel_not_active", "there is no active response to cancel",
                                  param="response_id")
        await self._interrupt("client_cancelled")

    # --------------------------------------------------------------------------------------------- listening
    def _restart_listener(self) -> None:
        self._drop_speculation()
        if self._listener_task:
            self._listener_task.cancel()
        self._listener_task, self._audio_queue = None, None
        if self.config.turn_detection is None:
            return
        self._audio_queue = asyncio.Queue(AUDIO_QUEUE_CHUNKS)
        self._listener_base = self.samples_in
        eager = self.config.eagerness
        policy = EndOfTurnPolicy(eager, self.backends.end_of_turn) if eager is not None else None
        listener = self.backends.make_listener(self.config.listener_vad(), self.config.language, policy)
        self._listener_task = asyncio.create_task(self._listen(listener, self._audio_queue), name=f"listen-{self.id}")

    async def _listen(self, listener: Any, queue: asyncio.Queue[np.ndarray | None]) -> None:
        async def chunks():
            while (chunk := await queue.get()) is not None:
                yield chunk
        try:
            async for ev in listener.events(chunks()):
                await self._on_listener_event(ev)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a recognizer failure must not kill the session silently
            log.exception("listener failed in session %s", self.id)
            await self.error(p.ProtocolError("asr_failed", f"speech recognition failed: {exc}", type="server_error"))

    async def _on_listener_event(self, ev: Any) -> None:
        ms = lambda sample: (self._listener_base + sample) * 1000 // ASR_SAMPLE_RATE
        if isinstance(ev, SpeechStarted):
            self._speech = (p.new_id("item"), self._listener_base + ev.sample)
            self._partial_sent = ""
            await self.emit({"type": "input_audio_buffer.speech_started", "audio_start_ms": ms(ev.sample),
                             "item_id": self._speech[0]})
            await self.emit({"type": "falante.avatar.state", "state": "listening", "expression": "neutral"})
            await self._maybe_barge_in()
        elif isinstance(ev, SpeechStopped) and self._speech:
            item_id = self._speech[0]
            self._t_speech_stopped = time.perf_counter()
            self.metrics.observe("endpoint", self._t_speech_stopped - self._arrival_time(self._listener_base + ev.sample))
            self._end_of_turn = self._turn_ended(ev)
            await self.emit({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": ms(ev.sample),
                             "item_id": item_id})
            await self._committed(item_id)
        elif isinstance(ev, SpeculativeFinal) and self._speech:
            self._speculate(ev)
        elif isinstance(ev, SpeechResumed):
            self._drop_speculation()
        elif isinstance(ev, Transcript) and self._speech:
            if not ev.final:
                # OpenAI deltas only append; a partial may revise its tail, so `text` (extension) has it whole.
                sent = self._partial_sent
                delta = ev.text[len(sent):] if ev.text.startswith(sent) else ""
                self._partial_sent = ev.text if delta or not sent else sent
                await self.emit({"type": "conversation.item.input_audio_transcription.delta",
                                 "item_id": self._speech[0], "content_index": 0, "delta": delta, "text": ev.text})
                return
            item_id, _ = self._speech
            self._speech = None
            self._clear_pending()
            self.metrics.observe("asr_final", time.perf_counter() - self._t_speech_stopped)
            await self._transcribed(item_id, ev.text, self._arrival_time(self._listener_base + ev.end_sample),
                                    end_of_turn=self._end_of_turn, end_sample=ev.end_sample)

    def _turn_ended(self, ev: SpeechStopped) -> dict[str, Any]:
        """How the turn ended (decision, score, silence waited), counted in Prometheus and kept for the response."""
        td = self.config.turn_detection
        waited = ev.waited_ms if ev.waited_ms is not None else self.config.listener_vad().silence_ms
        info = {"type": td.type if td else "server_vad", "decision": ev.decision, "score": ev.score,
                "waited_ms": waited}
        self.metrics.turn_ended(info["type"], ev.decision, ev.score, waited / 1000)
        return info

    async def _maybe_barge_in(self) -> None:
        if not (self._speech and self.turn and self.config.interrupt_response):
            return
        spoken = self.samples_in - self._speech[1]
        if spoken * 1000 >= self.config.vad.barge_in_min_ms * ASR_SAMPLE_RATE:
            await self._interrupt("barge_in")

    async def _committed(self, item_id: str) -> None:
        previous = self._last_item_id
        await self.emit({"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": previous})
        await self._item_added(item_id, "user", [{"type": "input_audio", "transcript": None}])

    async def _transcribed(self, item_id: str, text: str, t_trigger: float,
                           end_of_turn: dict[str, Any] | None = None, end_sample: int | None = None) -> None:
        text = text.strip()
        spec, self._speculation = self._speculation, None
        if spec is not None and not (spec.matches(text, end_sample) and self.config.create_response
                                     and self.turn is None):
            spec.turn.cancel()  # the final differs (or a reply is already running): the held reply goes
            spec = None
        await self.emit({"type": "conversation.item.input_audio_transcription.completed", "item_id": item_id,
                         "content_index": 0, "transcript": text})
        if not text:
            return  # noise or a cough: nothing to answer
        self.conversation.add_user(text, item_id)
        if self.config.create_response and self.turn is None:
            if spec is not None:
                self._promote(spec, t_trigger)
            else:
                await self._start_turn(t_trigger, None)
            if self.turn is not None:
                self.turn.end_of_turn = end_of_turn

    async def _item_added(self, item_id: str, role: str, content: list[dict[str, Any]]) -> None:
        self._item_ids.add(item_id)
        self._last_item_id = item_id
        item = {"id": item_id, "type": "message", "object": "realtime.item", "role": role, "status": "completed",
                "content": content}
        await self.emit({"type": "conversation.item.added", "item": item})
        await self.emit({"type": "conversation.item.done", "item": item})

    def _clear_pending(self) -> None:
        self._pending.clear()
        self._pending_samples = 0

    def _arrival_time(self, sample: int) -> float:
        for end, t in self._arrivals:
            if end >= sample:
                return t
        return time.perf_counter()

    # --------------------------------------------------------------------------------------------- responses
    def _make_turn(self, t_trigger: float, options: p.ResponseOptions | None, messages: list[ChatMessage],
                   emit: Any) -> Turn:
        cfg = self.config.for_response(options, self.backends.tts.voices())
        if options and options.instructions:
            messages[0] = type(messages[0])("system", f"{messages[0].content}\n\n{options.instructions}")
        query = next((m.content for m in reversed(messages) if m.role == "user"), "")
        return Turn(response_id=p.new_id("resp"), item_id=p.new_id("item"), messages=messages,
                    options=TurnOptions(voice=cfg.voice, speed=cfg.speed, out_rate=cfg.output_rate,
                                        audio=cfg.audio_out, codec=cfg.output_codec, max_tokens=cfg.max_tokens,
                                        temperature=self.settings.chat.temperature),
                    llm=self.backends.llm, tts=self.backends.tts, settings=self.settings, emit=emit,
                    t_trigger=t_trigger, knowledge=self.backends.knowledge, query=query)

    def _history(self) -> list[ChatMessage]:
        """The turn's prompt: persona + the history that fits beside the knowledge context it will get."""
        kb = self.backends.knowledge
        return self.conversation.messages(reserve_tokens=kb.max_context_tokens if kb is not None else 0)

    def _speculate(self, ev: SpeculativeFinal) -> None:
        """semantic_vad scored the speculative final as finished: start the reply (LLM, first TTS piece), held."""
        self._drop_speculation()
        if not ev.text.strip() or not self.config.create_response or self.turn is not None:
            return
        gate = Gate(self.emit)
        messages = [*self._history(), ChatMessage("user", ev.text.strip())]
        turn = self._make_turn(time.perf_counter(), None, messages, gate.emit)
        turn.start()
        self._speculation = Speculation(ev.text, ev.end_sample, turn, gate)

    def _drop_speculation(self) -> None:
        """The user went on speaking (or the session changed): the held reply goes, nothing of it was sent."""
        spec, self._speculation = self._speculation, None
        if spec is not None:
            spec.turn.cancel()

    def _promote(self, spec: Speculation, t_trigger: float) -> None:
        """The final confirmed the speculative text: the held reply becomes the response, its events flow."""
        from server.responses import run_turn
        spec.turn.t_trigger = t_trigger
        self.turn = spec.turn
        self._turn_runner = asyncio.create_task(run_turn(self, spec.turn, True, gate=spec.gate),
                                                name=f"respond-{self.id}")

    async def _start_turn(self, t_trigger: float, options: p.ResponseOptions | None) -> None:
        from server.responses import run_turn  # the response event sequence lives beside the turn
        turn = self._make_turn(t_trigger, options, self._history(), self.emit)
        self.turn = turn
        keep_history = not (options and options.conversation == "none")
        self._turn_runner = asyncio.create_task(run_turn(self, turn, keep_history), name=f"respond-{self.id}")

    def finish_turn(self, turn: Turn, keep_history: bool) -> None:
        """Called by run_turn when a response ends: history gets what was heard."""
        if self.turn is turn:
            self.turn = None
        if not keep_history:
            return
        self._past_turns[turn.item_id] = turn
        while len(self._past_turns) > 16:
            self._past_turns.pop(next(iter(self._past_turns)))
        self._item_ids.add(turn.item_id)
        self._last_item_id = turn.item_id
        heard = turn.text.strip() if turn.status == "completed" else turn.heard_text(turn.heard_samples())
        if turn.status == "completed" and not turn.options.audio:
            heard = turn.text.strip()
        if heard:
            self.conversation.add_assistant(heard, turn.item_id)
        elif turn.status == "cancelled":
            self._unheard.add(turn.item_id)

    async def _interrupt(self, reason: str, notify: bool = True) -> None:
        turn, runner = self.turn, self._turn_runner
        if turn is None or runner is None:
            return
        turn.cancel_reason = reason
        turn.cancel()
        self.outbox.drop_response(turn.response_id)
        if not notify:
            runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
