"""Issue 12 hardening: what one client sends must not stall or silently kill sessions, nor open the server."""

from __future__ import annotations

import asyncio

import pytest

from falante.config import load_settings
from server.app import ConfigError, check_settings, is_loopback
from tests.conftest import fake_backends, fast_settings
from tests.fakes import FakeLLM


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
    async with fake_server(fake_backends(llm=llm), settings) as (url, app), client_for(url) as c:
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
