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
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from asr.endpoint import EndOfTurnPolicy
from falante.config import Settings
from falante.fairness import set_owner
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
from server import events
from server import protocol as p
from server.backends import Backends
from server.config_state import SessionConfig
from server.input_audio import InputAudio
from server.items import ConversationItems
from server.limits import TokenBucket
from server.metrics import Metrics
from server.outbox import Outbox
from server.speculation import Gate, Speculation
from server.turn import Turn, TurnOptions

log = logging.getLogger("falante.session")

MAX_PENDING_COMMITS = 2  # manual commits of one session awaiting their decode; more gets `audio_backlog`
AUDIO_QUEUE_CHUNKS = 256  # ~25 s of 100 ms appends between the websocket and the listener


class Session:
    clock: Callable[[], float] = time.monotonic  # the audio budget's clock (tests inject one)

    def __init__(self, backends: Backends, settings: Settings, metrics: Metrics,
                 send_text: Callable[[str], Awaitable[None]], *, extensions: bool = False) -> None:
        self.id = p.new_id("sess")
        self.backends, self.settings, self.metrics = backends, settings, metrics
        self.outbox = Outbox(send_text, extensions=extensions)
        self.config = SessionConfig.defaults(settings)
        self.conversation = Conversation(settings.chat.persona, budget_tokens=settings.chat.history_tokens,
                                         count_tokens=token_counter_for(backends.llm),
                                         max_items=settings.limits.max_history_items)
        self.items = ConversationItems(self.conversation, settings.limits.max_history_items,
                                       settings.limits.max_text_chars)
        self.bucket = TokenBucket(settings.limits.max_events_per_second, settings.limits.burst_events)
        self.turn: Turn | None = None
        self._turn_runner: asyncio.Task | None = None
        self.input = InputAudio(settings.limits, self.config.input_codec, self.config.input_rate, type(self).clock)
        self._audio_queue: asyncio.Queue[np.ndarray | None] | None = None
        self._listener_task: asyncio.Task | None = None
        self._listener_base = 0
        self._speech: tuple[str, int] | None = None  # (item_id, start sample) while the user speaks
        self._t_speech_stopped = 0.0
        self._partial_sent = ""  # partial transcript text already sent as deltas
        self._end_of_turn: dict[str, Any] | None = None  # how the last user turn ended (falante.response.metrics)
        self._speculation: Speculation | None = None  # a reply held back until the turn's final confirms it
        # manual commits: decoded off the receive loop, one after another, in commit order (control overtakes data)
        self._commit_chain: asyncio.Task | None = None
        self._commits_pending = 0
        self._queued_response: asyncio.Task | None = None  # response.create waiting for the pending commits
        self.closing = False  # the server drains (server/drain.py): no new reply starts in this session

    # --------------------------------------------------------------------------------------------- lifecycle
    async def open(self) -> None:
        set_owner(self.id)  # the shared model workers serve sessions in turn (falante/fairness.py)
        await self.emit(events.session_created(self.config.describe(self.id, self.backends.tts.voices())))
        self._restart_listener()

    async def close(self) -> None:
        self._drop_speculation()
        for task in (self._queued_response, self._commit_chain):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self._interrupt("session_closed", notify=False)
        if self._listener_task:
            self._listener_task.cancel()
            await asyncio.gather(self._listener_task, return_exceptions=True)

    async def wait_idle(self, remaining: Callable[[], float]) -> None:
        """Until no reply is running (a drain lets the current one finish) or `remaining()` seconds run out."""
        while self.turn is not None and (runner := self._turn_runner) is not None and not runner.done():
            left = remaining()
            if left <= 0:
                return
            await asyncio.wait({runner}, timeout=left)

    async def drain_close(self) -> None:
        """The drain closes this session: a reply still running is cut and ends with response.done (incomplete)."""
        self.closing = True
        self._drop_speculation()
        await self._interrupt("server_shutdown")

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
        old_vad = self.config.vad_key()
        self.config = self.config.updated(event.session, voices=self.backends.tts.voices())
        if event.session.instructions is not None:
            self.conversation.set_persona(instructions=event.session.instructions)
        self.input.set_format(self.config.input_codec, self.config.input_rate)
        if self.config.vad_key() != old_vad:
            self._restart_listener()
        await self.emit(events.session_updated(self.config.describe(self.id, self.backends.tts.voices())))

    async def _on_input_audio_buffer_append(self, event: p.AppendEvent) -> None:
        chunk = self.input.append(event.audio, manual=self.config.turn_detection is None)
        if not chunk.size:
            return
        self.metrics.audio_seconds_in.inc(len(chunk) / ASR_SAMPLE_RATE)
        if self._audio_queue is not None:
            if self._audio_queue.full():
                raise p.ProtocolError("audio_backlog", "speech recognition is behind; this chunk was dropped — "
                                      "send audio in real time", type="server_error")
            self._audio_queue.put_nowait(chunk)
        await self._maybe_barge_in()

    async def _on_input_audio_buffer_commit(self, event: p.CommitEvent) -> None:
        self.input.check_commit()
        if self._commits_pending >= MAX_PENDING_COMMITS:
            raise p.ProtocolError("audio_backlog", f"speech recognition is behind: {self._commits_pending} commits "
                                  "of this session are still being transcribed; the audio stays in the buffer, "
                                  "commit it later", type="server_error")
        end = self.input.samples
        audio = self.input.take()
        if self._listener_task:
            self._restart_listener()
        item_id = self._speech[0] if self._speech else p.new_id("item")
        self._speech = None
        await self._committed(item_id)
        # the decode runs beside the receive loop, so a response.cancel sent meanwhile is read at once
        self._commits_pending += 1
        self._commit_chain = asyncio.create_task(
            self._transcribe_commit(self._commit_chain, item_id, audio, self.input.arrival_time(end)),
            name=f"commit-{self.id}")

    async def _transcribe_commit(self, previous: asyncio.Task | None, item_id: str, audio: np.ndarray,
                                 t_trigger: float) -> None:
        """Decode one committed buffer after the session's earlier commits (their transcripts keep commit order)."""
        try:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            t0 = time.perf_counter()
            try:
                text = await self.backends.recognizer.transcribe(audio, language=self.config.language)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("commit decode failed in session %s", self.id)
                await self.error(p.ProtocolError("asr_failed", f"speech recognition failed: {exc}",
                                                 type="server_error"))
                return
            self.metrics.observe("asr_final", time.perf_counter() - t0)
            await self._transcribed(item_id, text, t_trigger, len(audio) / ASR_SAMPLE_RATE)
        finally:
            self._commits_pending -= 1

    def _commits_in_flight(self) -> bool:
        return self._commit_chain is not None and not self._commit_chain.done()

    async def _on_input_audio_buffer_clear(self, event: p.ClearEvent) -> None:
        self._drop_speculation()
        self.input.clear()
        self._speech = None
        if self._listener_task:
            self._restart_listener()
        await self.emit(events.cleared())

    async def _on_conversation_item_create(self, event: p.ItemCreateEvent) -> None:
        await self._add_item(self.items.create(event.item))

    async def _on_conversation_item_truncate(self, event: p.ItemTruncateEvent) -> None:
        audio_end_ms = self.items.truncate(event.item_id, event.audio_end_ms, self.turn)
        await self.emit(events.item_truncated(event.item_id, event.content_index, audio_end_ms))

    async def _on_conversation_item_delete(self, event: p.ItemDeleteEvent) -> None:
        self.items.delete(event.item_id)
        await self.emit(events.item_deleted(event.item_id))

    async def _on_conversation_item_retrieve(self, event: p.ItemRetrieveEvent) -> None:
        await self.emit(events.item_retrieved(self.items.retrieve(event.item_id)))

    async def _on_response_create(self, event: p.ResponseCreateEvent) -> None:
        if self.closing:
            raise p.ProtocolError("server_restarting", "the server is restarting and starts no new response; "
                                  "reconnect to continue", type="server_error")
        if self.turn is not None:
            raise p.ProtocolError("conversation_already_has_active_response",
                                  f"response {self.turn.response_id} is still in progress; cancel it first")
        if self._queued_response is not None and not self._queued_response.done():
            raise p.ProtocolError("conversation_already_has_active_response",
                                  "a response is already waiting for the committed audio's transcript")
        self._check_instructions(event.response and event.response.instructions, "response.instructions")
        if self._commits_in_flight():  # the reply must see the committed audio's transcript
            self._queued_response = asyncio.create_task(
                self._respond_after_commits(self._commit_chain, time.perf_counter(), event),
                name=f"queued-response-{self.id}")
            return
        await self._start_turn(time.perf_counter(), event.response)

    async def _respond_after_commits(self, chain: asyncio.Task, t_trigger: float,
                                     event: p.ResponseCreateEvent) -> None:
        await asyncio.gather(chain, return_exceptions=True)
        while self._commits_in_flight():  # commits sent before this response.create chained behind `chain`
            await asyncio.gather(self._commit_chain, return_exceptions=True)
        if self.turn is not None:  # the transcript started its own reply (create_response)
            await self.error(p.ProtocolError(
                "conversation_already_has_active_response", f"response {self.turn.response_id} is already in "
                "progress (started by the committed audio's transcript)", event_id=event.event_id))
            return
        await self._start_turn(t_trigger, event.response)

    async def _on_response_cancel(self, event: p.ResponseCancelEvent) -> None:
        queued = self._queued_response
        if self.turn is None and queued is not None and not queued.done() and not event.response_id:
            queued.cancel()  # a response.create still waiting for its transcript: it never starts
            return
        if self.turn is None or (event.response_id and event.response_id != self.turn.response_id):
            raise p.ProtocolError("response_cancel_not_active", "Cancellation failed: there is no active response",
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
        self._listener_base = self.input.samples
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
            await self.emit(events.speech_started(self._speech[0], ms(ev.sample)))
            await self.emit(events.avatar_state("listening"))
            await self._maybe_barge_in()
        elif isinstance(ev, SpeechStopped) and self._speech:
            item_id = self._speech[0]
            self._t_speech_stopped = time.perf_counter()
            self.metrics.observe("endpoint", self._t_speech_stopped - self.input.arrival_time(self._listener_base + ev.sample))
            self._end_of_turn = self._turn_ended(ev)
            await self.emit(events.speech_stopped(item_id, ms(ev.sample)))
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
                await self.emit(events.transcription_delta(self._speech[0], delta, ev.text))
                return
            item_id, start = self._speech
            self._speech = None
            self.input.clear()
            self.metrics.observe("asr_final", time.perf_counter() - self._t_speech_stopped)
            seconds = max(0, self._listener_base + ev.end_sample - start) / ASR_SAMPLE_RATE
            await self._transcribed(item_id, ev.text, self.input.arrival_time(self._listener_base + ev.end_sample),
                                    seconds, end_of_turn=self._end_of_turn, end_sample=ev.end_sample)

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
        spoken = self.input.samples - self._speech[1]
        if spoken * 1000 >= self.config.vad.barge_in_min_ms * ASR_SAMPLE_RATE:
            await self._interrupt("barge_in")

    async def _committed(self, item_id: str) -> None:
        await self.emit(events.committed(item_id, self.items.last_id))
        await self._add_item(events.message_item(item_id, "user", "completed",
                                                 [{"type": "input_audio", "transcript": None}]))

    async def _transcribed(self, item_id: str, text: str, t_trigger: float, audio_seconds: float,
                           end_of_turn: dict[str, Any] | None = None, end_sample: int | None = None) -> None:
        text = text.strip()
        spec, self._speculation = self._speculation, None
        if spec is not None and not (spec.matches(text, end_sample) and self.config.create_response
                                     and self.turn is None and not self.closing):
            spec.turn.cancel()  # the final differs (or a reply is already running): the held reply goes
            spec = None
        self.items.set_transcript(item_id, text)
        await self.emit(events.transcription_completed(item_id, text, audio_seconds))
        if not text:
            return  # noise or a cough: nothing to answer
        self.conversation.add_user(text, item_id)
        if self.config.create_response and self.turn is None and not self.closing:
            if spec is not None:
                self._promote(spec, t_trigger)
            else:
                await self._start_turn(t_trigger, None)
            if self.turn is not None:
                self.turn.end_of_turn = end_of_turn

    async def _add_item(self, item: dict[str, Any]) -> None:
        previous = self.items.add(item)
        await self.emit(events.item_added(item, previous))
        await self.emit(events.item_done(item, previous))

    # --------------------------------------------------------------------------------------------- responses
    def _make_turn(self, t_trigger: float, options: p.ResponseOptions | None, messages: list[ChatMessage],
                   emit: Any) -> Turn:
        cfg = self.config.for_response(options, self.backends.tts.voices())
        if options and options.instructions:
            messages[0] = type(messages[0])("system", f"{messages[0].content}\n\n{options.instructions}")
        query = next((m.content for m in reversed(messages) if m.role == "user"), "")
        return Turn(response_id=p.new_id("resp"), item_id=p.new_id("item"), messages=messages,
                    options=TurnOptions(voice=cfg.tts_voice, speed=cfg.speed, out_rate=cfg.output_rate,
                                        audio=cfg.audio_out, codec=cfg.output_codec, max_tokens=cfg.max_tokens,
                                        temperature=self.settings.chat.temperature, voice_name=cfg.voice,
                                        tools=cfg.tools, tool_choice=cfg.tool_choice),
                    llm=self.backends.llm, tts=self.backends.tts, settings=self.settings, emit=emit,
                    t_trigger=t_trigger, metadata=options.metadata if options else None,
                    input_tokens=self.conversation.tokens(),
                    knowledge=self.backends.knowledge, query=query)

    def _history(self) -> list[ChatMessage]:
        """The turn's prompt: persona + the history that fits beside the knowledge context it will get."""
        kb = self.backends.knowledge
        return self.conversation.messages(reserve_tokens=kb.max_context_tokens if kb is not None else 0)

    def _speculate(self, ev: SpeculativeFinal) -> None:
        """semantic_vad scored the speculative final as finished: start the reply (LLM, first TTS piece), held."""
        self._drop_speculation()
        if not ev.text.strip() or not self.config.create_response or self.turn is not None or self.closing:
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
        if keep_history:
            self.items.reply_finished(turn)

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
