"""Configuration: one TOML file + `FALANTE_…` environment overrides (pydantic-settings).

Nested fields use `__` in env names, e.g. `FALANTE_LLM__KIND=openai`, `FALANTE_SERVER__PORT=9000`.
Backends are a discriminated union on `kind`; the server imports a backend's module only when it builds it.
Per-session choices (voice, persona) come in protocol messages and never mutate this object.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

CONFIG_ENV = "FALANTE_CONFIG"  # path of the TOML file; `falante serve --config` sets it


class Section(BaseModel):
    """A config section: unknown keys are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid")


def cache_dir() -> Path:
    """Where assembled model bundles live (override with FALANTE_CACHE_DIR)."""
    return Path(os.environ.get("FALANTE_CACHE_DIR", Path.home() / ".cache" / "falante"))


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = 8000
    auth_token: str | None = None  # bearer token; required when host is not loopback unless allow_no_auth
    allow_no_auth: bool = False
    ui: bool = True  # mount the Gradio chat at /chat and the kiosk at /kiosk
    # Host headers served besides the defaults (the bind host, localhost names, loopback addresses; any IP address
    # when bound to all interfaces): DNS rebinding sends a foreign name. "*.example.org" matches subdomains.
    allowed_hosts: list[str] = []
    # Browser origins (scheme://host[:port]) allowed to open the websocket besides the page's own origin.
    allowed_origins: list[str] = []
    # SIGTERM drain: the longest the running replies may take to finish before sessions close with 1012 (a k8s
    # terminationGracePeriodSeconds must exceed it plus uvicorn's 5 s and the preStop; docs/deploy.md)
    drain_grace_s: float = Field(20.0, ge=0.0, le=3600.0)


class LimitSettings(Section):
    # measured: the largest N whose p95 voice to voice stays within 2x one caller's, on 2 cores (bench_load.py)
    max_sessions: int = 2
    max_message_bytes: int = 1 << 20  # one websocket message (a base64 append of ~0.5 s at 24 kHz is ~32 KiB)
    max_buffer_seconds: float = 120.0  # audio held in one input buffer before it is committed or refused
    max_events_per_second: float = 200.0  # per-session token bucket
    burst_events: int = 400
    max_text_chars: int = 4000  # one conversation.item.create text
    max_instructions_chars: int = 8000
    # audio a session may send ahead of real time: a sustained real-time factor and a burst (a clip sent whole,
    # a client catching up after a stall); past them appends get `audio_backlog`, so one client streaming speech
    # at 10x real time cannot take the shared ASR/LLM/TTS workers from the others (docs/protocol.md)
    audio_realtime_factor: float = Field(1.5, gt=0)
    audio_burst_s: float = Field(30.0, gt=0)
    max_history_items: int = 500  # items kept per session history; past it the oldest are dropped (memory bound)
    idle_timeout_s: float = 600.0  # close a session that sent nothing for this long
    max_header_bytes: int = 32 * 1024  # HTTP request line + headers; over it → 400 and the connection is closed
    header_timeout_s: float = 10.0  # a connection must finish sending its request headers within this
    max_upload_bytes: int = 10 * 1024 * 1024  # one Gradio upload request (POST /chat/gradio_api/upload)


class VadSettings(Section):
    threshold: float = 0.5  # Silero speech probability
    min_speech_ms: int = 250  # speech shorter than this is not a turn (no speech_started)
    silence_ms: int = 700  # end-of-turn silence; pt-BR speakers pause 540-670 ms at commas in the dev set
    prefix_padding_ms: int = 300
    barge_in_min_ms: int = 400  # user speech this long interrupts the avatar ("uhum" does not)


class FasterWhisperSettings(Section):
    kind: Literal["faster-whisper"] = "faster-whisper"
    model: str = "bundled:whisper-base"  # local CT2 folder, "bundled:whisper-base", or a hub id (downloads)
    device: str = "cpu"  # "cuda" in production
    compute_type: str = "int8"  # "float16" on GPU
    cpu_threads: int = 2
    workers: int = 1  # concurrent decodes on the shared model
    beam_size: int = 8  # dev-set WER 0.145 vs 0.157 at 5; finals are decoded speculatively, so the cost hides
    language: str = "pt"
    partial_interval_ms: int = 600  # how often partials are decoded while the user speaks
    batch_finals: bool = False  # GPU: batch the finals of concurrent sessions
    partials: bool = True  # decode partial transcripts while the user speaks
    partial_window_s: float = 15.0  # longer utterances are cut (at a pause) so partial decodes stay cheap
    # silence after which the final is decoded before end-of-turn is certain (dropped if speech resumes). 5 s clips,
    # real time, 2 cores: final after speech_stopped p50 0.11-0.16 s at 96 ms vs 0.27-0.42 s at 160 ms
    speculative_final_ms: int = 96
    # Audio after the VAD's speech end given to the final decode (what has arrived, then digital silence): Whisper
    # ends sentences better with it, and it never delays the speculative launch. Streaming WER, dev-set single
    # clips, beam 8, 2026-12-02 — 30 s window: 160 ms 0.154, 400 ms 0.130, 500 ms 0.136; 20 s window: 400 ms 0.151,
    # 500 ms 0.151, 600 ms 0.148, 700 ms 0.154.
    final_tail_ms: int = Field(600, ge=0, le=2000)
    # Seconds of audio (speech + padding) the encoder sees when the utterance fits; Whisper's own window is 30. On
    # CPU the encoder is most of a decode and its cost follows the window, not the speech (asr/whisper.py): a 5 s
    # clip decodes in 0.67 s at 20 s vs 1.05-1.2 s at 30 s (beam 8, 2 cores), for +0.02 streaming WER (0.148 vs
    # 0.130). 15 s: 0.56 s, WER 0.154-0.159 (over the 0.15 gate).
    encoder_window_s: float = Field(20.0, ge=5.0, le=30.0)
    final_temperatures: list[float] = [0.0, 0.4]  # finals: fallback steps when a decode looks wrong (faster-whisper)
    vad: VadSettings = VadSettings()


class VllmSettings(Section):
    kind: Literal["vllm"] = "vllm"
    model: str = "bundled:qwen2.5-0.5b-instruct"  # HF folder, "bundled:…" (GGUF → HF, cached) or a hub id
    device: str = "cpu"
    gpu_memory_utilization: float = 0.35  # GPU: the share vLLM may take; ASR + TTS fit in the rest
    kv_cache_gib: float = 1.0  # CPU: VLLM_CPU_KVCACHE_SPACE
    max_model_len: int = 2048
    max_num_seqs: int = 8
    enable_prefix_caching: bool = True
    dtype: str = "auto"
    enforce_eager: bool = False  # skip torch.compile/graph capture: faster start-up, slower decode
    cpu_threads_bind: str | None = None  # CPU: VLLM_CPU_OMP_THREADS_BIND; None = "nobind" on <= 4 cores, else "auto"


class LlamaCppSettings(Section):
    kind: Literal["llama-cpp"] = "llama-cpp"
    model: str = "bundled:qwen2.5-0.5b-instruct"  # a .gguf file or "bundled:…"
    n_ctx: int = 2048
    n_threads: int = 2
    n_gpu_layers: int = 0


class OpenAISettings(Section):
    kind: Literal["openai"] = "openai"
    base_url: str = "http://127.0.0.1:8001/v1"
    api_key: str = "EMPTY"
    model: str = ""
    # A shared vLLM tier (docs/deploy.md): each attempt gets `first_token_timeout_s` from the request to its first
    # token (a queued or dead replica), `timeout_s` between two streamed chunks; a failed attempt (connection, 5xx,
    # 429, first-token timeout) is retried `retries` times, only before the first token (a streamed reply is never
    # replayed), `retry_backoff_s` doubling; after that the turn speaks `chat.error_reply` and sends `llm_failed`.
    timeout_s: float = Field(30.0, gt=0)
    connect_timeout_s: float = Field(3.0, gt=0)
    first_token_timeout_s: float = Field(10.0, gt=0)
    retries: int = Field(2, ge=0, le=10)
    retry_backoff_s: float = Field(0.2, ge=0)


class ChatSettings(Section):
    # "Nunca invente": the bundled small models otherwise state wrong facts confidently (docs/benchmarks.md,
    # "Kiosk knowledge": measured against the previous persona in one run)
    persona: str = (
        "Você é a Falante, uma assistente virtual brasileira simpática. Responda sempre em português do Brasil, "
        "em no máximo duas frases curtas e naturais, como numa conversa falada. Não use listas, markdown nem emojis. "
        "Nunca invente fatos: se não souber a resposta, diga que não sabe."
    )
    max_tokens: int = 120
    temperature: float = 0.6
    history_tokens: int = 1200  # history budget; oldest turns are dropped first, the persona is kept
    # the reply's voice starts on its first clause ("Claro, posso ajudar,") once it has this many words, instead of
    # waiting for the sentence end; later sentences are cut at clauses only past 12 words (llm/sentences.py)
    first_clause_words: int = Field(4, ge=1, le=50)
    # once the first piece is queued, the LLM is not read until its audio is out: on a shared CPU a llama.cpp LLM
    # then pauses (backpressure) and Kokoro gets the cores for the first audio; vLLM keeps generating regardless
    llm_waits_for_first_audio: bool = True
    # said when the LLM fails (a remote tier down after its retries, an engine error): the caller hears why the avatar
    # stopped instead of silence; the client also gets an `error` (llm_failed). Empty: say nothing.
    error_reply: str = "Desculpe, estou com um problema técnico e não consegui responder agora. Pode repetir daqui a pouco?"


class KokoroSettings(Section):
    kind: Literal["kokoro"] = "kokoro"
    model: str = "bundled:kokoro-v1.0-int8"  # an .onnx file or "bundled:…"
    voices_file: str | None = None  # voices-v1.0.bin / .npz with pf_dora, pm_alex, pm_santa
    voice: str = "jm_kumo"  # best pt-BR round trip of the bundled voices (docs/benchmarks.md)
    speed: float = 1.0
    device: str = "cpu"  # "cuda" → CUDAExecutionProvider
    threads: int = 2
    workers: int = 2  # GPU only: concurrent pieces on the shared session (CPU always uses 1)
    g2p: Literal["espeak", "piper", "gruut"] = "espeak"  # pt-BR G2P engine (tts/g2p.py)
    max_tokens: int = 510  # phoneme tokens per model call; longer sentences are split at clause boundaries
    model_durations: bool = True  # expose Kokoro's predicted durations (needs `onnx`); else estimate timings
    # onnxruntime graph optimizations ("all" = fused kernels chosen per CPU; "basic"/"none" for a CPU whose fused
    # kernels misbehave). Round-trip WER is the same within the gate's margin at each level (docs/benchmarks.md).
    graph_optimization: Literal["all", "extended", "basic", "none"] = "all"


class PiperSettings(Section):
    kind: Literal["piper"] = "piper"
    model: str = ""  # path to a pt_BR .onnx voice (its .onnx.json beside it)
    speed: float = 1.0
    device: str = "cpu"
    threads: int = 2
    alignments: bool = True  # per-phoneme durations from the model (patched in memory; needs `onnx`)
    max_phonemes: int = 400  # per model call; longer sentences are split at clause boundaries


class EspeakSettings(Section):
    kind: Literal["espeak"] = "espeak"  # explicit non-neural fallback, never chosen silently
    voice: str = "pt-br"
    speed_wpm: int = 160


class EagernessSettings(Section):
    """semantic_vad waits for one eagerness level (asr/endpoint.py). Silences count from the speech end."""

    threshold: float = Field(ge=0.0, le=1.0)  # end-of-turn probability at or above which the phrase is finished
    complete_ms: int = Field(ge=32, le=10_000)  # silence that ends a finished phrase (after its final is scored)
    max_ms: int = Field(ge=100, le=10_000)  # hard cap: this much silence ends any turn, an unfinished phrase too
    timing_ms: int = Field(ge=100, le=10_000)  # no text signal (remote LLM, detector error): plain silence


class TurnSettings(Section):
    """Turn-taking: the session default and semantic_vad's end-of-turn detector and waits (docs/protocol.md)."""

    session_default: Literal["server_vad", "semantic_vad"] = "server_vad"  # what a session starts with
    detector: bool = True  # score transcripts with the LLM in memory (llama.cpp, vLLM); off → timing only
    detector_threads: int = Field(1, ge=1, le=64)  # llama.cpp: threads of the detector's own small context
    # ptbr-turns-dev: hesitation pauses after unfinished phrases last 0.7-1.0 s; max_ms stays above them.
    # Thresholds (scripts/eval_end_of_turn.py, Qwen2.5-0.5B GGUF, P(end)+ΣP(.?!)): unfinished fragments (90 texts,
    # bare / "," / "..." / ".") max 0.0021; finished (184: turns-dev + speech-dev, ± final mark, lowercase; a final
    # "."/"..."/"!" dropped) min 0.007, median 0.29. Finished below the threshold (they wait max_ms): low 30/184,
    # medium 12, high 4; unfinished at or above: 0 for all three (medium: 10x margin).
    low: EagernessSettings = EagernessSettings(threshold=0.05, complete_ms=600, max_ms=4000, timing_ms=1200)
    medium: EagernessSettings = EagernessSettings(threshold=0.02, complete_ms=200, max_ms=2000, timing_ms=700)
    high: EagernessSettings = EagernessSettings(threshold=0.01, complete_ms=100, max_ms=1200, timing_ms=350)

    def eagerness(self, name: str | None) -> EagernessSettings:
        """The waits of an OpenAI eagerness name; "auto" (and None) = medium, as in OpenAI's API."""
        return {"low": self.low, "high": self.high}.get(name or "auto", self.medium)


OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")


class VoiceSettings(Section):
    """OpenAI's built-in voice names → this server's voices, so a client's default ("ash" in openai-agents, "marin"
    in LiveKit, "alloy" in pipecat examples) speaks instead of failing with `unknown_voice`.

    A name the TTS has is used as is; an OpenAI name maps through `openai`; an alias to "" or to a voice the running
    TTS lacks speaks with the TTS's configured voice (`tts.voice`). Any other name is `unknown_voice`. The session
    echoes the name the client asked for.
    """

    # Kokoro's bundled voices: OpenAI's higher-pitched voices → jf_alpha, the lower ones → jm_kumo (the default)
    openai: dict[str, str] = {
        "alloy": "jf_alpha", "coral": "jf_alpha", "sage": "jf_alpha", "shimmer": "jf_alpha", "marin": "jf_alpha",
        "ash": "jm_kumo", "ballad": "jm_kumo", "echo": "jm_kumo", "verse": "jm_kumo", "cedar": "jm_kumo",
    }

    @field_validator("openai")
    @classmethod
    def _only_openai_names(cls, table: dict[str, str]) -> dict[str, str]:
        if unknown := sorted(set(table) - set(OPENAI_VOICES)):
            raise ValueError(f"not OpenAI voice names: {', '.join(unknown)} (known: {', '.join(OPENAI_VOICES)})")
        return table

    def resolve(self, name: str, voices: list[str], default: str) -> str | None:
        """The TTS voice for `name` (None: unknown). An empty `voices` list means the TTS takes any name."""
        if not voices or name in voices:
            return name
        if name in self.openai:
            target = self.openai[name]
            return target if target in voices else default
        return None


class KnowledgeSettings(Section):
    """Kiosk knowledge (llm/knowledge.py): the operator's facts file, retrieved per user turn with BM25."""

    # Markdown (.md: one section per heading) or YAML (.yaml: title → text); a relative path is taken from the
    # working directory, like model paths. None: no knowledge, the persona alone answers.
    file: str | None = None
    top_k: int = Field(3, ge=1, le=20)  # sections retrieved per turn, best first
    # BM25 score a section needs (and a share of the best one's): an unrelated question retrieves nothing
    min_score: float = Field(0.5, ge=0.0)
    relative_score: float = Field(0.4, ge=0.0, le=1.0)
    # the rules + retrieved sections, in LLM tokens: taken out of chat.history_tokens for that turn only
    max_context_tokens: int = Field(400, ge=64, le=8000)
    rules: str | None = None  # how the persona uses the facts; None: the built-in pt-BR rules (llm/knowledge.py)

    @field_validator("file")
    @classmethod
    def _file_exists(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(f"knowledge file not found: {value} (relative paths start at the working directory)")
        return value


class AvatarSettings(Section):
    fps: int = 30
    smoothing_ms: float = 40.0  # coarticulation: how far a viseme bleeds into its neighbours


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FALANTE_", env_nested_delimiter="__", extra="forbid")

    server: ServerSettings = ServerSettings()
    limits: LimitSettings = LimitSettings()
    asr: FasterWhisperSettings = FasterWhisperSettings()
    # CPU default llama.cpp: voice-to-voice p50 3.16 s vs 3.84 s on vllm-cpu, start-up 4 s vs 108 s (docs/benchmarks.md);
    # vLLM is the GPU profile's backend (config/gpu.toml), where it batches sessions with PagedAttention.
    llm: Annotated[VllmSettings | LlamaCppSettings | OpenAISettings, Field(discriminator="kind")] = LlamaCppSettings()
    chat: ChatSettings = ChatSettings()
    tts: Annotated[KokoroSettings | PiperSettings | EspeakSettings, Field(discriminator="kind")] = KokoroSettings()
    avatar: AvatarSettings = AvatarSettings()
    voices: VoiceSettings = VoiceSettings()
    turns: TurnSettings = TurnSettings()
    knowledge: KnowledgeSettings = KnowledgeSettings()

    @model_validator(mode="after")
    def _context_fits_history(self) -> Settings:
        if self.knowledge.file and self.knowledge.max_context_tokens >= self.chat.history_tokens:
            raise ValueError(f"knowledge.max_context_tokens ({self.knowledge.max_context_tokens}) must be below "
                             f"chat.history_tokens ({self.chat.history_tokens}): the context is part of that budget")
        return self

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if settings_cls.model_config.get("toml_file"):
            sources.append(TomlConfigSettingsSource(settings_cls))
        return tuple(sources)


def load_settings(path: str | Path | None = None) -> Settings:
    """Settings from `path` (or $FALANTE_CONFIG) with FALANTE_ env overrides on top; defaults without a file."""
    path = path or os.environ.get(CONFIG_ENV)
    if not path:
        return Settings()
    if not Path(path).is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    from_file = type("FileSettings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": str(path)}})
    return Settings.model_validate(from_file().model_dump())
