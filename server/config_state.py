"""A session's own configuration (from `session.update`), on top of the server defaults.

Immutable: `updated()` returns a new object, so a half-applied update never exists and sessions never share
mutable state. `describe()` renders it as the OpenAI `session` object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from falante.config import EagernessSettings, Settings, TurnSettings, VadSettings, VoiceSettings
from falante.g711 import G711_RATE
from falante.types import ToolSpec
from llm.tools import TOOL_CHOICES, check_schema
from server import protocol as p

DEFAULT_RATE = 24_000
# OpenAI GA: server_vad and semantic_vad take different fields; one type's field on the other is refused
SERVER_VAD_ONLY = ("threshold", "prefix_padding_ms", "silence_duration_ms", "idle_timeout_ms")
SEMANTIC_VAD_ONLY = ("eagerness",)


@dataclass(frozen=True)
class SessionConfig:
    instructions: str
    voice: str
    speed: float
    input_codec: str
    input_rate: int
    output_codec: str
    output_rate: int
    turn_detection: p.TurnDetection | None
    vad: VadSettings
    language: str
    modalities: tuple[str, ...]
    max_tokens: int
    turns: TurnSettings = field(default_factory=TurnSettings)
    tts_voice: str = ""  # the TTS voice that speaks `voice` (an OpenAI name maps through `voice_table`)
    default_voice: str = ""  # the TTS's configured voice
    voice_table: VoiceSettings = field(default_factory=VoiceSettings)
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str = "auto"  # "auto" | "none" | "required" | a tool's name (falante.types.ToolChoice)

    @classmethod
    def defaults(cls, settings: Settings) -> SessionConfig:
        vad = settings.asr.vad
        default_voice = getattr(settings.tts, "voice", "default")
        cfg = cls(instructions="", voice=default_voice, tts_voice=default_voice, default_voice=default_voice,
                   voice_table=settings.voices,
                   speed=getattr(settings.tts, "speed", 1.0), input_codec="audio/pcm", input_rate=DEFAULT_RATE,
                   output_codec="audio/pcm", output_rate=DEFAULT_RATE,
                   turn_detection=p.TurnDetection(type="server_vad", threshold=vad.threshold,
                                                  prefix_padding_ms=vad.prefix_padding_ms,
                                                  silence_duration_ms=vad.silence_ms, create_response=True,
                                                  interrupt_response=True),
                   vad=vad, language=settings.asr.language, modalities=("audio",),
                   max_tokens=settings.chat.max_tokens, turns=settings.turns)
        if settings.turns.session_default == "semantic_vad":
            cfg = cfg._with_turn_detection(p.TurnDetection(type="semantic_vad"))
        return cfg

    # ------------------------------------------------------------------------------------------------ update
    def updated(self, s: p.SessionUpdate, voices: list[str]) -> SessionConfig:
        cfg = self
        if s.instructions is not None:
            cfg = replace(cfg, instructions=s.instructions)
        if s.output_modalities is not None:
            cfg = replace(cfg, modalities=tuple(s.output_modalities))
        if s.max_output_tokens is not None:
            cfg = replace(cfg, max_tokens=self.max_tokens if s.max_output_tokens == "inf"
                          else _check_tokens(s.max_output_tokens, "session.max_output_tokens"))
        if s.tools is not None or s.tool_choice is not None:
            tools = _tools(s.tools, "session.tools") if s.tools is not None else cfg.tools
            choice = _tool_choice(s.tool_choice, tools, "session.tool_choice") if s.tool_choice is not None \
                else cfg.tool_choice
            cfg = replace(cfg, tools=tools, tool_choice=_still_offered(choice, tools))
        audio = s.audio
        if audio and audio.input:
            if audio.input.format:
                codec, rate = _format(audio.input.format, "session.audio.input.format")
                cfg = replace(cfg, input_codec=codec, input_rate=rate)
            if "turn_detection" in audio.input.model_fields_set:
                cfg = cfg._with_turn_detection(audio.input.turn_detection)
            if audio.input.transcription and audio.input.transcription.language:
                cfg = replace(cfg, language=audio.input.transcription.language)
        if audio and audio.output:
            cfg = cfg._with_output(audio.output, voices, "session.audio.output")
        return cfg

    def _with_turn_detection(self, td: p.TurnDetection | None) -> SessionConfig:
        """A turn_detection update: merged into the current one of the same type, else it starts afresh."""
        if td is None:
            return replace(self, turn_detection=None)
        given = td.model_dump(exclude_unset=True)
        current = self.turn_detection
        kind = given.get("type") or (current.type if current else "server_vad")
        for name in SERVER_VAD_ONLY if kind == "semantic_vad" else SEMANTIC_VAD_ONLY:
            if name in given:
                where = f"session.audio.input.turn_detection.{name}"
                raise p.ProtocolError("unknown_parameter", f"Unknown parameter: '{where}' ({kind} has no {name})",
                                      param=where)
        base = current if current is not None and current.type == kind else None
        if kind == "semantic_vad":  # the VAD settings stay server_vad's; semantic waits come from [turns]
            base = base or p.TurnDetection(type="semantic_vad", eagerness="auto", create_response=True,
                                           interrupt_response=True)
            return replace(self, turn_detection=base.model_copy(update=given))
        merged = (base or p.TurnDetection()).model_copy(update=given)
        silence = merged.silence_duration_ms or self.vad.silence_ms
        vad = self.vad.model_copy(update={
            "threshold": merged.threshold if merged.threshold is not None else self.vad.threshold,
            "prefix_padding_ms": merged.prefix_padding_ms if merged.prefix_padding_ms is not None
            else self.vad.prefix_padding_ms,
            "silence_ms": silence})
        return replace(self, turn_detection=merged, vad=vad)

    def _with_output(self, out: p.AudioOutput, voices: list[str], where: str) -> SessionConfig:
        cfg = self
        if out.format:
            codec, rate = _format(out.format, f"{where}.format")
            cfg = replace(cfg, output_codec=codec, output_rate=rate)
        if out.voice is not None:
            tts_voice = self.voice_table.resolve(out.voice, voices, self.default_voice)
            if tts_voice is None:
                raise p.ProtocolError("unknown_voice", f"voice {out.voice!r} is not available; voices: "
                                      f"{', '.join(voices)} (or an OpenAI name: "
                                      f"{', '.join(self.voice_table.openai)})", param=f"{where}.voice")
            cfg = replace(cfg, voice=out.voice, tts_voice=tts_voice)
        if out.speed is not None:
            cfg = replace(cfg, speed=out.speed)
        return cfg

    def for_response(self, options: p.ResponseOptions | None, voices: list[str]) -> ResponseConfig:
        cfg = self
        if options and options.audio and options.audio.output:  # same checks as session.update (voice, format)
            cfg = cfg._with_output(options.audio.output, voices, "response.audio.output")
        modalities = tuple(options.output_modalities) if options and options.output_modalities else cfg.modalities
        max_tokens = cfg.max_tokens
        if options and isinstance(options.max_output_tokens, int):
            max_tokens = _check_tokens(options.max_output_tokens, "response.max_output_tokens")
        tools = _tools(options.tools, "response.tools") if options and options.tools is not None else cfg.tools
        choice = cfg.tool_choice if tools is cfg.tools else "auto"
        if options and options.tool_choice is not None:
            choice = _tool_choice(options.tool_choice, tools, "response.tool_choice")
        return ResponseConfig(voice=cfg.voice, tts_voice=cfg.tts_voice, speed=cfg.speed, output_codec=cfg.output_codec,
                              output_rate=cfg.output_rate, audio_out="audio" in modalities, max_tokens=max_tokens,
                              tools=tools, tool_choice=choice)

    # ------------------------------------------------------------------------------------------------ views
    @property
    def create_response(self) -> bool:
        td = self.turn_detection
        return td is None or td.create_response is not False

    @property
    def interrupt_response(self) -> bool:
        td = self.turn_detection
        return td is not None and td.interrupt_response is not False

    @property
    def eagerness(self) -> EagernessSettings | None:
        """semantic_vad's waits (None with server_vad or no turn detection)."""
        td = self.turn_detection
        return self.turns.eagerness(td.eagerness) if td is not None and td.type == "semantic_vad" else None

    def listener_vad(self) -> VadSettings:
        """The VAD the Listener runs: semantic_vad's hard cap replaces the silence, nothing else changes."""
        eager = self.eagerness
        return self.vad if eager is None else self.vad.model_copy(update={"silence_ms": eager.max_ms})

    def vad_key(self) -> tuple:
        eager = self.eagerness
        return (self.turn_detection is None, self.listener_vad(), eager, self.language)

    def describe_turn_detection(self) -> dict[str, Any] | None:
        """turn_detection as OpenAI GA shapes it: each type with its own fields, effective values filled in."""
        td = self.turn_detection
        if td is None:
            return None
        flags = {"create_response": td.create_response is not False,
                 "interrupt_response": td.interrupt_response is not False}
        if td.type == "semantic_vad":
            return {"type": "semantic_vad", "eagerness": td.eagerness or "auto", **flags}
        out = {"type": "server_vad", "threshold": self.vad.threshold, "prefix_padding_ms": self.vad.prefix_padding_ms,
               "silence_duration_ms": self.vad.silence_ms, **flags}
        if td.idle_timeout_ms is not None:
            out["idle_timeout_ms"] = td.idle_timeout_ms
        return out

    def describe(self, session_id: str, voices: list[str] | None = None) -> dict[str, Any]:
        td = self.describe_turn_detection()
        return {
            "id": session_id, "object": "realtime.session", "type": "realtime", "model": "falante",
            "output_modalities": list(self.modalities), "instructions": self.instructions,
            "max_output_tokens": self.max_tokens,
            "audio": {
                "input": {"format": _describe_format(self.input_codec, self.input_rate), "turn_detection": td,
                          "transcription": {"model": "whisper", "language": self.language},
                          "noise_reduction": None},
                "output": {"format": _describe_format(self.output_codec, self.output_rate), "voice": self.voice,
                           "speed": self.speed},
            },
            "tools": [describe_tool(t) for t in self.tools], "tool_choice": describe_tool_choice(self.tool_choice),
            "tracing": None,
            "falante": {"protocol": p.PROTOCOL_VERSION, "barge_in_min_ms": self.vad.barge_in_min_ms,
                        "voices": voices or []},
        }


@dataclass(frozen=True)
class ResponseConfig:
    voice: str  # as the client named it
    tts_voice: str  # the TTS voice that speaks it
    speed: float
    output_codec: str
    output_rate: int
    audio_out: bool
    max_tokens: int
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str = "auto"


def describe_tool(tool: ToolSpec) -> dict[str, Any]:
    return {"type": "function", "name": tool.name, "description": tool.description, "parameters": tool.parameters}


def describe_tool_choice(choice: str) -> str | dict[str, str]:
    return choice if choice in TOOL_CHOICES else {"type": "function", "name": choice}


def _still_offered(choice: str, tools: tuple[ToolSpec, ...]) -> str:
    """A named tool_choice whose tool went away with a tools update falls back to "auto"."""
    return choice if choice in TOOL_CHOICES or any(t.name == choice for t in tools) else "auto"


def _tools(tools: list[p.FunctionTool], where: str) -> tuple[ToolSpec, ...]:
    """Protocol tools → ToolSpecs; a bad schema, a duplicate or a reserved name is the client's error."""
    out: list[ToolSpec] = []
    for i, t in enumerate(tools):
        parameters = t.parameters if t.parameters is not None else {"type": "object", "properties": {}}
        error = check_schema(parameters)
        if error:
            raise p.ProtocolError("invalid_value", f"tool {t.name!r}: {error}", param=f"{where}[{i}].parameters")
        if len(json.dumps(parameters)) + len(t.description or "") > p.MAX_TOOL_SCHEMA_CHARS:
            raise p.ProtocolError("invalid_value", f"tool {t.name!r} is over {p.MAX_TOOL_SCHEMA_CHARS} characters "
                                  "(description + parameters)", param=f"{where}[{i}]")
        if t.name in TOOL_CHOICES:
            raise p.ProtocolError("invalid_value", f"a tool may not be named {t.name!r}", param=f"{where}[{i}].name")
        if any(o.name == t.name for o in out):
            raise p.ProtocolError("invalid_value", f"two tools are named {t.name!r}", param=f"{where}[{i}].name")
        out.append(ToolSpec(t.name, t.description or "", parameters))
    return tuple(out)


def _tool_choice(choice: str | p.ToolChoiceFunction, tools: tuple[ToolSpec, ...], where: str) -> str:
    if isinstance(choice, str):
        return choice
    if all(t.name != choice.name for t in tools):
        raise p.ProtocolError("invalid_value", f"tool_choice names {choice.name!r}, which is not among the tools",
                              param=f"{where}.name")
    return choice.name


def _format(fmt: p.AudioFormat, where: str) -> tuple[str, int]:
    if fmt.type != "audio/pcm":
        if fmt.rate not in (None, G711_RATE):
            raise p.ProtocolError("invalid_value", f"{fmt.type} is 8000 Hz only", param=f"{where}.rate")
        return fmt.type, G711_RATE
    return fmt.type, fmt.rate or DEFAULT_RATE


def _describe_format(codec: str, rate: int) -> dict[str, Any]:
    return {"type": codec, "rate": rate} if codec == "audio/pcm" else {"type": codec}


def _check_tokens(value: int, where: str) -> int:
    if not 1 <= value <= 4096:
        raise p.ProtocolError("invalid_value", "max_output_tokens must be between 1 and 4096 or 'inf'", param=where)
    return value
