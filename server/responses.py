"""The OpenAI Realtime event sequence around one Turn: created → items/parts → deltas → done.

Kept apart from `turn.py` (the work) and `session.py` (the dispatch) so each reads on its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from llm.errors import LLMError
from llm.language import is_portuguese, score_language
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
    return {"id": turn.item_id, "type": "message", "object": "realtime.item", "role": "assistant",
            "status": status, "content": [part] if status != "in_progress" else []}


def _rounded(info: dict[str, Any] | None) -> dict[str, Any] | None:
    if info is None:
        return None
    score = info.get("score")
    return {**info, "score": round(score, 4) if score is not None else None}


async def run_turn(session: Session, turn: Turn, keep_history: bool, gate: Gate | None = None) -> None:
    """The response's events around `turn`; `gate`: the turn already runs (speculative), its held events follow."""
    emit = session.emit
    audio = turn.options.audio
    part_type = "audio" if audio else "text"
    await emit({"type": "response.created", "response": {
        "id": turn.response_id, "object": "realtime.response", "status": "in_progress", "output": [],
        "output_modalities": ["audio" if audio else "text"]}})
    await emit({"type": "response.output_item.added", "response_id": turn.response_id, "output_index": 0,
                "item": _item(turn, "in_progress")})
    await emit({"type": "conversation.item.added", "item": _item(turn, "in_progress")})
    await emit({"type": "response.content_part.added", "response_id": turn.response_id, "item_id": turn.item_id,
                "output_index": 0, "content_index": 0, "part": {"type": part_type, "transcript": ""}})
    await emit({"type": "falante.avatar.state", "state": "thinking", "expression": "neutral"})
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
            raise
    except LLMError as exc:  # chat.error_reply is empty (else the turn said it and sent the error itself)
        await emit(llm_failed_event(exc))
    except Exception as exc:  # a backend bug ends this response, never the session
        log.exception("response %s failed", turn.response_id)
        turn.status = "failed"
        await emit({"type": "error", "error": {"type": "server_error", "code": "response_failed",
                                               "message": f"the response failed: {type(exc).__name__}: {exc}",
                                               "param": None, "event_id": None}})
    if turn.t_cancel is not None:
        turn.timings["cancel"] = time.perf_counter() - turn.t_cancel  # decision → LLM and TTS stopped
    if turn.status == "in_progress":
        turn.status = "failed"
    await _finish(session, turn, keep_history)


async def _finish(session: Session, turn: Turn, keep_history: bool) -> None:
    emit, rid = session.emit, turn.response_id
    status = turn.status
    item_status = "completed" if status == "completed" else "incomplete"
    if status == "completed":
        if turn.options.audio:
            await emit({"type": "response.output_audio.done", "response_id": rid, "item_id": turn.item_id,
                        "output_index": 0, "content_index": 0})
            await emit({"type": "response.output_audio_transcript.done", "response_id": rid,
                        "item_id": turn.item_id, "output_index": 0, "content_index": 0,
                        "transcript": turn.text.strip()})
        else:
            await emit({"type": "response.output_text.done", "response_id": rid, "item_id": turn.item_id,
                        "output_index": 0, "content_index": 0, "text": turn.text.strip()})
        part = _item(turn, "completed")["content"][0]
        await emit({"type": "response.content_part.done", "response_id": rid, "item_id": turn.item_id,
                    "output_index": 0, "content_index": 0, "part": part})
    item = _item(turn, item_status)
    await emit({"type": "response.output_item.done", "response_id": rid, "output_index": 0, "item": item})
    session.finish_turn(turn, keep_history)
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
    await emit({"type": "falante.response.metrics", "response_id": rid, "language": language,
                "latency_ms": {k: round(v * 1000, 1) for k, v in turn.timings.items()},
                "audio_ms": turn.samples_sent * 1000 // turn.options.out_rate,
                "end_of_turn": _rounded(turn.end_of_turn)})
    await emit({"type": "response.done", "response": {
        "id": rid, "object": "realtime.response", "status": status, "status_details": details, "output": [item],
        "output_modalities": ["audio" if turn.options.audio else "text"],
        "usage": None, "metadata": None}})
    await emit({"type": "falante.avatar.state", "state": "idle", "expression": "neutral"})
