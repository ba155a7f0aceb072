"""The official `openai` SDK talks to falante unchanged (fast tier: fake models, real server and websocket)."""

import numpy as np

from tests.conftest import dev_clip, fake_backends
from tests.fakes import FakeLLM
from tests.sdk_client import sdk_client, speak_and_listen


async def test_sdk_voice_turn_with_extensions(fake_server):
    async with fake_server(fake_backends(llm=FakeLLM("Bom dia! Posso ajudar?"))) as (url, _app):
        host = url.split("/")[2]
        audio = np.concatenate([dev_clip("d03_jf_alpha.wav"), np.zeros(12_000, np.float32)])
        conv = await speak_and_listen(host, audio, pace=0.0)
    kinds = [e["type"] for e in conv.events]
    assert kinds[0] == "session.created"
    for kind in ("input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
                 "conversation.item.input_audio_transcription.completed", "response.created",
                 "response.output_audio.delta", "falante.avatar.frames", "response.done"):
        assert kind in kinds, kind
    assert conv.of("response.done")[0]["response"]["status"] == "completed"
    frames = conv.of("falante.avatar.frames")[0]  # unknown to the SDK, still delivered with all its fields
    assert frames["frames"] and len(frames["frames"][0]["visemes"]) == 15


async def test_sdk_session_update_and_text_turn(fake_server):
    async with fake_server(fake_backends(llm=FakeLLM("Só texto."))) as (url, _app):
        async with sdk_client(url.split("/")[2]).realtime.connect(model="falante") as conn:
            await conn.session.update(session={"type": "realtime", "output_modalities": ["text"],
                                               "instructions": "Seja breve."})
            await conn.conversation.item.create(item={"type": "message", "role": "user",
                                                      "content": [{"type": "input_text", "text": "Oi"}]})
            await conn.response.create()
            seen = []
            async for event in conn:
                seen.append(event)
                if event.type == "response.done":
                    break
    updated = next(e for e in seen if e.type == "session.updated")
    assert updated.session.output_modalities == ["text"]
    text_done = next(e for e in seen if e.type == "response.output_text.done")
    assert text_done.text == "Só texto."
    assert not any(e.type == "response.output_audio.delta" for e in seen)


async def test_sdk_sets_semantic_vad_and_session_updated_echoes_it(fake_server):
    from openai.types.realtime import RealtimeSessionCreateRequest

    async with fake_server() as (url, _app), sdk_client(url.split("/")[2]).realtime.connect(model="falante") as conn:
        await conn.session.update(session={"type": "realtime", "audio": {"input": {"turn_detection": {
            "type": "semantic_vad", "eagerness": "high", "interrupt_response": False}}}})
        async for event in conn:
            if event.type in ("session.updated", "error"):
                break
    assert event.type == "session.updated", event
    td = event.session.audio.input.turn_detection
    assert type(td).__name__ == "SemanticVad"  # the SDK parsed it as its own semantic_vad type
    assert (td.type, td.eagerness, td.create_response, td.interrupt_response) == ("semantic_vad", "high", True, False)
    assert td.model_dump(exclude_none=True) == {"type": "semantic_vad", "eagerness": "high", "create_response": True,
                                                "interrupt_response": False}  # nothing beyond OpenAI's fields
    RealtimeSessionCreateRequest.model_validate(event.session.model_dump(exclude={"id", "object", "falante"}))
