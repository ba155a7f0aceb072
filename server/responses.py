"""The OpenAI Realtime event sequence around one Turn: created → items/parts → deltas → done.

Kept apart from `turn.py` (the work) and `session.py` (the dispatch) so each reads on its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from llm.conversation import token_counter_for
from llm.errors import LLMError
from llm.language import is_portuguese, score_language
from server import events
from server.turn import llm_failed_event

if TYPE_CHECKING:
    from server.session import Session
    from server.speculation import Gate
    from server.turn import Turn

log = logging.getLogger("falante.responses")
CANCEL_REASONS = {"barge_in": "turn_detected", "client_cancelled": "client_cancelled"}


def _item(turn: Turn, status: str) -> dict[str, Any]:
    kind = "output_audio" if turn.options.audio else "output_text"
    text = turn.text.strip() if status == "completed" else turn.heard_text(turn.heard_samples())
    part = {"type": kind, "transcript": text} if turn.options.audio else {"type": kind, "text": text}
    return events.message_item(turn.item_id, "assistant", status, [part] if status != "in_progress" else [])


def _response(turn: Turn, status: str, output: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return events.response(turn.response_id, status, modality="audio" if turn.options.audio else "text",
                           output=output, metadata=turn.metadata, voice=turn.options.voice_name,
                           max_output_tokens=turn.options.max_tokens, **fields)


def _rounded(info: dict[str, Any] | None) -> dict[str, Any] | None:
    if info is None:
        return None
    score = info.get("score")
    return {**info, "score": round(score, 4) if score is not None else None}


async def run_turn(session: Session, turn: Turn, keep_history: bool, gate: Gate | None = None) -> None:
    """The response's events around `turn`; `gate`: the turn already runs (speculative), its held events follow."""
    emit = session.emit
    audio = turn.options.audio
    await emit(events.response_created(_response(turn, "in_progress", [])))

    async def open_message(send: Any = emit) -> None:
        await send(events.output_item_added(turn.response_id, _item(turn, "in_progress"), turn.index))
        if keep_history:  # an out-of-band reply (conversation "none") is no conversation item
            turn.previous_item_id = session.items.last_id
            await send(events.item_added(_item(turn, "in_progress"), turn.previous_item_id))
        await send(events.content_part_added(turn.response_id, turn.item_id, audio, turn.index))

    if turn.options.calls_possible and turn.message_index is None:
        turn.open_message = lambda: open_message(turn.emit)  # the model may only call: it opens with its words
    else:
        await turn.ensure_message()
        await open_message()
    await emit(events.avatar_state("thinking", response_id=turn.response_id, item_id=turn.item_id))
    if gate is not None and turn.task is not None:
        await gate.open()
        if turn.t_first_audio is not None:  # held audio reaches the client only now
            turn.t_first_audio = time.perf_counter()
            turn.timings["voice_to_voice"] = turn.t_first_audio - turn.t_trigger
        task = turn.task
    else:
        task = turn.start()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():  # the session itself is closing
            turn.cancel()
            # no response.done can reach a client that is gone; count the reply so /metrics adds up
            session.metrics.responses.labels(status="disconnected").inc()
            raise
    except LLMError as exc:  # chat.error_reply is empty (else the turn said it and sent the error itself)
        await emit(llm_failed_event(exc))
    except Exception as exc:  # a backend bug ends this response, never the session
        log.exception("response %s failed", turn.response_id)
        turn.status = "failed"
        await emit(events.error("response_failed", f"the response failed: {type(exc).__name__}: {exc}",
                                type="server_error"))
    if turn.t_cancel is not None:
        turn.timings["cancel"] = time.perf_counter() - turn.t_cancel  # decision → LLM and TTS stopped
    if turn.status == "in_progress":
        turn.status = "failed"
    await _finish(session, turn, keep_history)


async def _finish(session: Session, turn: Turn, keep_history: bool) -> None:
    emit, rid = session.emit, turn.response_id
    status = turn.status
    item_status = "completed" if status == "completed" else "incomplete"
    index = turn.message_index  # None: the model only called functions (or said nothing when it could have)
    outputs: list[tuple[int, dict[str, Any]]] = []
    if index is not None:
        if status == "completed":
            text = turn.text.strip()
            if turn.options.audio:
                await emit(events.audio_done(rid, turn.item_id, index))
                await emit(events.audio_transcript_done(rid, turn.item_id, text, index))
            else:
                await emit(events.text_done(rid, turn.item_id, text, index))
            await emit(events.content_part_done(rid, turn.item_id, turn.options.audio, text, index))
        item = _item(turn, item_status)
        await emit(events.output_item_done(rid, item, index))
        outputs.append((index, item))
    for made in turn.calls:  # calls already went out whole; a cancelled response's calls are incomplete
        outputs.append((made.output_index, events.function_call_item(made.item_id, made.call, item_status)))
    session.finish_turn(turn, keep_history)
    if keep_history and index is not None:
        session.items.remember(item)
        await emit(events.item_done(item, turn.previous_item_id))
    details: dict[str, Any] | None = None
    if status == "cancelled" and turn.cancel_reason == "server_shutdown":  # cut by a drain, not by anyone's choice
        status = "incomplete"
        details = {"type": "incomplete", "reason": None}
    elif status == "cancelled":
        details = {"type": "cancelled", "reason": CANCEL_REASONS.get(getattr(turn, "cancel_reason", ""),
                                                                    "client_cancelled")}
    elif status == "failed":
        details = {"type": "failed", "error": {"type": "server_error", "code": "response_failed"}}
    metrics = session.metrics
    metrics.responses.labels(status=status).inc()
    for stage, seconds in turn.timings.items():
        if stage != "cancel":
            metrics.observe(stage, seconds)
    metrics.audio_seconds_out.inc(turn.samples_sent / turn.options.out_rate)
    language = score_language(turn.text).language
    if not is_portuguese(turn.text):  # the small model drifted (English, Spanish, Chinese): count it, say it
        metrics.off_language.labels(language=language).inc()
        log.warning("response %s is not Portuguese (%s): %.80r", rid, language, turn.text)
    await emit(events.response_metrics(rid, language, {k: round(v * 1000, 1) for k, v in turn.timings.items()},
                                       turn.samples_sent * 1000 // turn.options.out_rate,
                                       _rounded(turn.end_of_turn)))
    output = [out for _, out in sorted(outputs, key=lambda pair: pair[0])]
    await emit(events.response_done(_response(turn, status, output, status_details=details,
                                              usage=_usage(session, turn))))
    await emit(events.avatar_state("idle"))


def _usage(session: Session, turn: Turn) -> dict[str, Any]:
    """Token counts by the LLM's own tokenizer (an estimate for a remote LLM): the history, the reply."""
    count = token_counter_for(session.backends.llm)
    return events.usage(turn.input_tokens, count(turn.text) if turn.text else 0)
