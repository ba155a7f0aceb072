"""Bad client input: every kind gets an `error` event with a clear code, and the session keeps working."""

import asyncio
import base64
import json

import pytest

from tests.conftest import fake_backends, fast_settings
from tests.fakes import FakeLLM

B64_1S = base64.b64encode(b"\x00\x00" * 24_000).decode()
USER_OI = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Oi"}]}
SETTINGS = fast_settings(limits__max_message_bytes=64 * 1024, limits__max_text_chars=200)

BAD_INPUT = [  # (what is sent, expected error code)
    ("{not json", "invalid_json"),
    ("[1, 2, 3]", "invalid_event"),
    ('"session.update"', "invalid_event"),
    ("42", "invalid_event"),
    ("null", "invalid_event"),
    ({"event_id": "x"}, "missing_type"),
    ({"type": 123}, "missing_type"),
    ({"type": "response.explode"}, "unknown_event"),
    ({"type": "session.update"}, "invalid_value"),
    ({"type": "session.update", "session": {"type": "realtime", "colour": "blue"}}, "unknown_parameter"),
    ({"type": "session.update", "session": {"output_modalities": ["video"]}}, "invalid_value"),
    ({"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 5000}}}}},
     "invalid_value"),
    ({"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/pcmu", "rate": 16000}}}}},
     "invalid_value"),
    ({"type": "session.update", "session": {"audio": {"output": {"voice": "nobody"}}}}, "unknown_voice"),
    ({"type": "session.update", "session": {"audio": {"output": {"speed": 9}}}}, "invalid_value"),
    ({"type": "session.update", "session": {"audio": {"input": {"turn_detection": {"threshold": 2}}}}},
     "invalid_value"),
    ({"type": "session.update", "session": {"instructions": "x" * 9000}}, "instructions_too_long"),
    ({"type": "session.update", "session": {"max_output_tokens": 0}}, "invalid_value"),
    ({"type": "input_audio_buffer.append"}, "invalid_value"),
    ({"type": "input_audio_buffer.append", "audio": 123}, "invalid_value"),
    ({"type": "input_audio_buffer.append", "audio": "!!!not base64!!!"}, "invalid_audio"),
    ({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\x01\x02\x03").decode()}, "invalid_audio"),
    ({"type": "input_audio_buffer.append", "audio": "A" * (70 * 1024)}, "message_too_large"),
    (b"\x00\x01binary", "binary_not_supported"),
    ({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": []}},
     "invalid_value"),
    ({"type": "conversation.item.create", "item": {"role": "robot", "content": [{"type": "input_text", "text": "a"}]}},
     "invalid_value"),
    ({"type": "conversation.item.create", "item": {"role": "user", "content": [{"type": "input_text", "text": " "}]}},
     "empty_item"),
    ({"type": "conversation.item.create", "item": {"role": "user", "content": [{"type": "input_text",
                                                                                "text": "a" * 300}]}},
     "text_too_long"),
    ({"type": "conversation.item.create", "item": {"role": "user", "content": [{"type": "input_audio",
                                                                                "audio": B64_1S}]}},
     "unsupported_content"),
    ({"type": "conversation.item.truncate", "item_id": "item_nope", "content_index": 0, "audio_end_ms": 10},
     "item_not_found"),
    ({"type": "conversation.item.truncate", "item_id": "x", "content_index": 0, "audio_end_ms": -5},
     "invalid_value"),
    ({"type": "conversation.item.delete", "item_id": "item_nope"}, "item_not_found"),
    ({"type": "response.cancel"}, "response_cancel_not_active"),
    ({"type": "response.create", "response": {"max_output_tokens": 0}}, "invalid_value"),
    ({"type": "response.create", "response": {"output_modalities": ["audio", "text"]}}, "invalid_value"),
    ({"type": "response.create", "event_id": 5}, "invalid_value"),
    ({"type": "input_audio_buffer.commit", "extra": 1}, "unknown_parameter"),
    ("[" * 100_000 + "]" * 100_000, "message_too_large"),
    ('{"type": "input_audio_buffer.clear", "n": ' + "9" * 5000 + "}", "invalid_json"),  # over int's 4300 digits
    ({"type": "response.create", "response": {"audio": {"output": {"voice": "nobody"}}}}, "unknown_voice"),
    ({"type": "response.create", "response": {"instructions": "x" * 9000}}, "instructions_too_long"),
    ('{"type": "input_audio_buffer.clear", "event_id": "e\\ud800"}', "invalid_text"),  # a lone surrogate
    ("[" * 20_000 + "]" * 20_000, "invalid_json"),
]


@pytest.fixture(scope="module")
async def shared_server():
    from server.app import create_app
    from server.run import running
    app = create_app(SETTINGS, fake_backends(llm=FakeLLM("Tudo certo por aqui.")))
    async with running(app, SETTINGS) as host:
        yield f"ws://{host}/v1/realtime"


async def _works(c) -> None:
    """The session still answers: a typed turn completes."""
    await c.send({"type": "conversation.item.create", "item": USER_OI})
    await c.send({"type": "response.create"})
    done = await c.until("response.done")
    assert done["response"]["status"] == "completed"


@pytest.mark.parametrize("payload,code", BAD_INPUT, ids=[f"{i:02d}-{c}" for i, (_, c) in enumerate(BAD_INPUT)])
async def test_bad_input_gets_error_and_session_survives(shared_server, client_for, payload, code):
    # the error names the client's event, unless the event set its own id or was refused unparsed (too large)
    names_event = isinstance(payload, dict) and "event_id" not in payload and code != "message_too_large"
    async with client_for(shared_server) as c:
        if isinstance(payload, dict):
            payload = {"event_id": "evt_bad", **payload}
        await c.send(payload if isinstance(payload, (str, bytes)) else json.dumps(payload))
        err = await c.until("error")
        assert err["error"]["code"] == code, err
        assert err["error"]["message"]
        if names_event:
            assert err["error"]["event_id"] == "evt_bad", err
        await _works(c)


async def test_error_names_the_offending_event_id(shared_server, client_for):
    async with client_for(shared_server) as c:
        await c.send({"type": "conversation.item.delete", "item_id": "nope", "event_id": "evt_42"})
        err = await c.until("error")
    assert err["error"]["event_id"] == "evt_42" and err["error"]["param"] == "item_id"


async def test_commit_on_empty_buffer_with_vad_off(shared_server, client_for):
    async with client_for(shared_server) as c:
        await c.send({"type": "session.update", "session": {"audio": {"input": {"turn_detection": None}}}})
        updated = await c.until("session.updated")
        assert updated["session"]["audio"]["input"]["turn_detection"] is None
        await c.send({"type": "input_audio_buffer.commit", "event_id": "evt_c"})
        err = await c.until("error")
        assert err["error"]["code"] == "input_audio_buffer_commit_empty" and err["error"]["event_id"] == "evt_c"
        await _works(c)


async def test_response_create_while_active(shared_server, client_for):
    async with client_for(shared_server) as c:
        await c.send({"type": "conversation.item.create", "item": USER_OI})
        await c.send({"type": "response.create"})
        await c.send({"type": "response.create", "event_id": "evt_twice"})
        err = await c.until("error")
        assert err["error"]["code"] == "conversation_already_has_active_response"
        await c.until("response.done")


async def test_rate_limit(client_for, fake_server):
    settings = fast_settings(limits__max_events_per_second=1.0, limits__burst_events=5)
    async with fake_server(fake_backends(), settings) as (url, app), client_for(url) as c:
        for _ in range(8):
            await c.send({"type": "input_audio_buffer.clear"})
        codes = [(await c.until(lambda e: e["type"] in ("error", "input_audio_buffer.cleared")))["type"]
                 for _ in range(8)]
        assert codes.count("input_audio_buffer.cleared") == 5 and codes.count("error") == 3
        assert c.of_type("error")[0]["error"]["code"] == "rate_limited"


async def test_max_sessions_refused_with_reason(client_for, fake_server):
    import websockets
    settings = fast_settings(limits__max_sessions=1)
    async with fake_server(fake_backends(), settings) as (url, app), client_for(url):
        async with websockets.connect(url) as ws2:
            err = json.loads(await ws2.recv())
            assert err["type"] == "error" and err["error"]["code"] == "server_full"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws2.recv(), 5)
        assert closed.value.rcvd.code == 1013 and "server full" in closed.value.rcvd.reason


async def test_auth_token(client_for, fake_server):
    import websockets
    settings = fast_settings(server__auth_token="s3cret")
    async with fake_server(fake_backends(), settings) as (url, app):
        async with websockets.connect(url) as ws:
            assert json.loads(await ws.recv())["error"]["code"] == "unauthorized"
        async with client_for(url, additional_headers={"Authorization": "Bearer s3cret"}) as c:
            await _works(c)
        async with client_for(url, subprotocols=["realtime", "openai-insecure-api-key.s3cret"]) as c:
            await _works(c)


def test_public_bind_requires_token():
    from server.app import ConfigError, check_settings
    with pytest.raises(ConfigError, match="auth_token"):
        check_settings(fast_settings(server__host="0.0.0.0"))
    check_settings(fast_settings(server__host="0.0.0.0", server__auth_token="t"))
    check_settings(fast_settings(server__host="0.0.0.0", server__allow_no_auth=True))


async def test_backend_failure_mid_turn_is_an_error_not_a_crash(fake_server, client_for):
    llm = FakeLLM("Vou falar algumas palavras e depois falhar no meio.", fail_after=4)
    async with fake_server(fake_backends(llm=llm)) as (url, app), client_for(url) as c:
        await c.send({"type": "conversation.item.create", "item": USER_OI})
        await c.send({"type": "response.create"})
        err = await c.until("error")
        assert err["error"]["code"] == "llm_failed" and "scripted engine failure" in err["error"]["message"]
        done = await c.until("response.done")
        assert done["response"]["status"] == "failed"
        llm.fail_after = None
        await _works(c)


def test_bad_input_table_is_large():
    assert len(BAD_INPUT) >= 30
