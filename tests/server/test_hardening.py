"""Issue 12 hardening: what one client sends must not stall or silently kill sessions, nor open the server."""

from __future__ import annotations

import asyncio
import json

import pytest

from falante.config import load_settings
from server.app import ConfigError, check_settings, is_loopback
from server.outbox import Outbox
from tests.conftest import fake_backends, fast_settings
from tests.fakes import FakeLLM

USER_OI = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Oi"}]}


class CountingLLM(FakeLLM):
    """A FakeLLM with a tokenizer that counts its calls: tokenizing runs on the event loop, so calls are stalls."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.count_calls = 0

    def count_tokens(self, text: str) -> int:
        self.count_calls += 1
        return len(text.split()) * 2


async def test_many_large_items_then_response_create_still_answers(fake_server, client_for):
    """Regression: 400 items of ~3.9k chars then response.create re-tokenized the history after every dropped item
    (O(N²) counter calls on the event loop: 94.6 s to response.created, /healthz stalled)."""
    n = 400
    llm = CountingLLM("Tudo certo.")
    settings = fast_settings(limits__burst_events=1000)
    text = " ".join(f"palavra{i % 10}" for i in range(400))  # ~3.9k characters
    async with fake_server(fake_backends(llm=llm), settings) as (url, _app), client_for(url) as c:
        async def send_all() -> None:
            for i in range(n):
                await c.send({"type": "conversation.item.create",
                              "item": {"type": "message", "role": "user",
                                       "content": [{"type": "input_text", "text": f"{i} {text}"}]}})
            await c.send({"type": "response.create"})

        sender = asyncio.create_task(send_all())
        done = await c.until("response.done", timeout=120)
        await sender
    assert done["response"]["status"] == "completed"
    assert not c.of_type("error")
    assert llm.count_calls <= n + 5  # each item counted at most once, plus the system prompt
    assert len(llm.requests[0]) <= 3  # persona + what fits the history budget


# ---------------------------------------------------------------------------------------- public bind guard
@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost", "LOCALHOST"])
def test_loopback_hosts(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["", " ", "0.0.0.0", "::", "192.168.0.10", "example.org", "localhost.evil",
                                  "0", "[::1]x"])
def test_everything_else_is_public(host):
    assert not is_loopback(host)


def test_empty_host_in_toml_needs_a_token(tmp_path, monkeypatch):
    """Regression: host = "" made uvicorn serve every interface with no auth (is_loopback("") was true)."""
    monkeypatch.delenv("FALANTE_SERVER__HOST", raising=False)
    monkeypatch.delenv("FALANTE_SERVER__AUTH_TOKEN", raising=False)
    config = tmp_path / "falante.toml"
    config.write_text('[server]\nhost = ""\n')
    settings = load_settings(config)
    assert settings.server.host == ""
    with pytest.raises(ConfigError, match="auth_token"):
        check_settings(settings)


def test_empty_host_from_env_needs_a_token(monkeypatch):
    monkeypatch.delenv("FALANTE_CONFIG", raising=False)
    monkeypatch.delenv("FALANTE_SERVER__AUTH_TOKEN", raising=False)
    monkeypatch.setenv("FALANTE_SERVER__HOST", "")
    settings = load_settings()
    assert settings.server.host == ""
    with pytest.raises(ConfigError, match="auth_token"):
        check_settings(settings)
    monkeypatch.setenv("FALANTE_SERVER__AUTH_TOKEN", "t")
    check_settings(load_settings())


# ---------------------------------------------------------------------------------------- lone surrogates
SURROGATE_EVENTS = [  # json.dumps escapes the unpaired surrogate as "\\ud800", as a client would send it
    {"type": "conversation.item.create", "item": {"role": "user", "content": [{"type": "input_text",
                                                                               "text": "oi \ud800"}]}},
    {"type": "session.update", "session": {"instructions": "fale \ud800"}},
    {"type": "input_audio_buffer.clear", "event_id": "evt_\ud800"},
    {"type": "response.create", "response": {"metadata": {"\ud800": "x"}}},
]


@pytest.mark.parametrize("raw", SURROGATE_EVENTS, ids=["item-text", "instructions", "event_id", "key"])
async def test_lone_surrogate_is_an_error_not_a_dead_session(fake_server, client_for, raw):
    """Regression: the surrogate was echoed, the writer died encoding it and the session closed (1000), no error."""
    async with fake_server(fake_backends(llm=FakeLLM("Tudo certo."))) as (url, _app), client_for(url) as c:
        await c.send(json.dumps(raw))
        err = await c.until("error")
        assert err["error"]["code"] == "invalid_text" and err["error"]["event_id"] is None
        await c.send({"type": "conversation.item.create", "item": USER_OI})
        await c.send({"type": "response.create"})
        assert (await c.until("response.done"))["response"]["status"] == "completed"


def test_valid_pairs_and_non_ascii_text_pass():
    from server.protocol import has_lone_surrogate
    assert not has_lone_surrogate(json.loads('{"t": ["ol\\u00e1 \\ud83d\\ude00", {"k": "ção"}], "a": "AAAA"}'))
    assert has_lone_surrogate(json.loads('[[[{"k": ["x", "\\udc00"]}]]]'))
    assert has_lone_surrogate(json.loads('{"\\ud800": 1}'))


async def test_outbox_writer_survives_a_bad_event(caplog):
    sent: list[str] = []

    async def send_text(text: str) -> None:
        text.encode()  # what the websocket does: UTF-8
        sent.append(text)

    outbox = Outbox(send_text)
    writer = asyncio.create_task(outbox.run())
    await outbox.put({"type": "a", "text": "oi \ud800"})
    await outbox.put({"type": "b", "value": object()})
    await outbox.put({"type": "c", "text": "ção"})
    outbox.close()
    await asyncio.wait_for(writer, 5)
    assert [json.loads(t)["type"] for t in sent] == ["a", "c"]
    assert json.loads(sent[0])["text"] == "oi \ud800" and "ção" in sent[1]
    assert "not valid Unicode" in caplog.text and "cannot be serialized" in caplog.text


# ---------------------------------------------------------------------------------------- metrics at the edges
async def test_response_cut_by_a_disconnect_is_counted(fake_server, client_for):
    """Regression: a response the client hung up on never reached `_finish`, so falante_responses_total missed it
    (the metrics could not be reconciled with what clients received)."""
    llm = FakeLLM(" ".join(["palavra"] * 2000), delay=0.05)  # ~100 s of tokens: still streaming when the client leaves
    async with fake_server(fake_backends(llm=llm), fast_settings(chat__max_tokens=4000)) as (url, app):
        registry = app.state.falante.metrics.registry
        async with client_for(url) as c:
            await c.send({"type": "conversation.item.create", "item": USER_OI})
            await c.send({"type": "response.create"})
            await c.until("response.created")
        for _ in range(500):  # the server notices the close, cancels the reply and counts it
            if registry.get_sample_value("falante_active_sessions") == 0:
                break
            await asyncio.sleep(0.01)
        assert registry.get_sample_value("falante_active_sessions") == 0
        assert registry.get_sample_value("falante_responses_total", {"status": "disconnected"}) == 1.0
        assert not registry.get_sample_value("falante_responses_total", {"status": "completed"})
