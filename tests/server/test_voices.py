"""OpenAI's voice names (the clients' defaults: "ash", "marin", "alloy") speak with the voice the table maps them to."""

import pytest

from falante.config import OPENAI_VOICES, VoiceSettings
from tests.conftest import fake_backends, fast_settings
from tests.fakes import FakeLLM, FakeTTS


class RecordingTTS(FakeTTS):
    def __init__(self) -> None:
        super().__init__()
        self.used: list[str | None] = []

    async def synthesize(self, text, *, voice=None, speed=1.0):
        self.used.append(voice)
        async for chunk in super().synthesize(text, voice=voice, speed=speed):
            yield chunk


def test_every_openai_voice_has_an_entry_and_unknown_names_are_refused_by_the_config():
    assert set(VoiceSettings().openai) == set(OPENAI_VOICES)
    with pytest.raises(ValueError, match="not OpenAI voice names: nova2"):
        VoiceSettings(openai={"nova2": "x"})


async def test_openai_voice_names_map_through_the_table_and_are_echoed(fake_server, client_for):
    tts = RecordingTTS()
    settings = fast_settings(voices__openai={**VoiceSettings().openai, "ash": "fake_b", "marin": "missing"})
    async with fake_server(fake_backends(llm=FakeLLM("Oi."), tts=tts), settings) as (url, _app), client_for(url) as c:
        for name, expected in (("ash", "fake_b"), ("marin", settings.tts.voice), ("fake_a", "fake_a")):
            await c.send({"type": "session.update", "session": {"type": "realtime",
                                                                "audio": {"output": {"voice": name}}}})
            updated = await c.until("session.updated")
            assert updated["session"]["audio"]["output"]["voice"] == name  # the name the client asked for
            await c.send({"type": "conversation.item.create", "item": {
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Oi"}]}})
            await c.send({"type": "response.create"})
            await c.until("response.done")
            assert tts.used[-1] == expected, name
        await c.send({"type": "response.create", "response": {"audio": {"output": {"voice": "nova2"}}}})
        error = await c.until("error")
    assert error["error"]["code"] == "unknown_voice" and "ash" in error["error"]["message"]
