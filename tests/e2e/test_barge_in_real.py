"""Barge-in with the real models: speaking over the avatar cancels its reply; nothing of it arrives afterwards.

The cancel latency is measured and reported (`latency_ms.cancel`), not gated on wall-clock time here.
"""

import numpy as np
import pytest
import websockets

from tests.conftest import Client, dev_clip

pytestmark = pytest.mark.model


async def test_speech_over_reply_cancels_it(real_server):
    host, _ = real_server
    async with websockets.connect(f"ws://{host}/v1/realtime?extensions=falante", max_size=None) as ws:
        c = Client(ws)
        await c.until("session.created")
        await c.send({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Conte uma história longa sobre o Rio de Janeiro, com muitos detalhes."}]}})
        await c.send({"type": "response.create", "response": {"max_output_tokens": 200}})
        first = await c.until("response.output_audio.delta", timeout=300)
        rid = first["response_id"]
        speech = np.concatenate([dev_clip("d13_jf_alpha.wav"), np.zeros(12_000, np.float32)])
        await c.append(speech, chunk_ms=100)
        done = await c.until(lambda e: e["type"] == "response.done" and e["response"]["id"] == rid, timeout=120)
        assert done["response"]["status"] == "cancelled"
        metrics = [e for e in c.events if e["type"] == "falante.response.metrics" and e["response_id"] == rid][-1]
        assert "cancel" in metrics["latency_ms"], metrics
        # the user's interrupting question is transcribed and answered in a new response
        await c.until("conversation.item.input_audio_transcription.completed", timeout=120)
        # hang bound, not a latency gate: the whole reply (up to max_tokens, spoken) on 2 shared cores took > 120 s
        await c.until(lambda e: e["type"] == "response.done" and e["response"]["id"] != rid, timeout=300)
    after = c.events[c.events.index(done):]
    assert not [e for e in after if e.get("response_id") == rid and e["type"] == "response.output_audio.delta"]
