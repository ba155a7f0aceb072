"""HTTP side of the app: health, Prometheus metrics after a turn, the pages and static files."""

import urllib.request

from tests.conftest import fake_backends, fast_settings


def get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.headers.get("content-type", ""), r.read().decode("utf-8", "replace")


async def test_health_and_metrics_after_a_turn(fake_server, client_for):
    import asyncio
    async with fake_server(fake_backends()) as (url, app), client_for(url) as c:
        base = "http://" + url.split("/")[2]
        status, ctype, body = await asyncio.to_thread(get, base + "/healthz")
        assert status == 200 and '"status":"ok"' in body and '"sessions":1' in body
        await c.send({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Oi"}]}})
        await c.send({"type": "response.create"})
        await c.until("response.done")
        await c.send("{broken")
        await c.until("error")
        _, ctype, metrics = await asyncio.to_thread(get, base + "/metrics")
    assert ctype.startswith("text/plain")
    assert "falante_active_sessions 1.0" in metrics
    assert 'falante_stage_latency_seconds_count{stage="voice_to_voice"} 1.0' in metrics
    assert 'falante_stage_latency_seconds_count{stage="llm_first_token"} 1.0' in metrics
    assert 'falante_responses_total{status="completed"} 1.0' in metrics
    assert 'falante_client_errors_total{code="invalid_json"} 1.0' in metrics


async def test_pages_are_served(fake_server):
    import asyncio
    settings = fast_settings(server__ui=True)
    async with fake_server(fake_backends(), settings) as (url, app):
        base = "http://" + url.split("/")[2]
        status, ctype, kiosk = await asyncio.to_thread(get, base + "/kiosk")
        assert status == 200 and "text/html" in ctype and "falante" in kiosk.lower()
        status, ctype, js = await asyncio.to_thread(get, base + "/static/falante-client.js")
        assert status == 200 and "javascript" in ctype and "/v1/realtime" in js
        status, ctype, chat = await asyncio.to_thread(get, base + "/chat/")
        assert status == 200 and "text/html" in ctype and "gradio" in chat.lower()
