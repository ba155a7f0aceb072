"""Prometheus metrics: per-stage latency histograms and session gauges, served at /metrics.

A private registry (not the global one) so several apps in one test process never collide.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
STAGES = ("endpoint", "asr_final", "llm_first_token", "llm_first_sentence", "tts_first_audio", "voice_to_voice")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.active_sessions = Gauge("falante_active_sessions", "Open websocket sessions", registry=self.registry)
        self.sessions_refused = Counter("falante_sessions_refused", "Connections refused (limit or auth)",
                                        ["reason"], registry=self.registry)
        self.stage_latency = Histogram("falante_stage_latency_seconds", "Per-stage latency of a turn", ["stage"],
                                       buckets=LATENCY_BUCKETS, registry=self.registry)
        self.responses = Counter("falante_responses", "Responses by final status", ["status"],
                                 registry=self.registry)
        self.off_language = Counter("falante_replies_off_language", "Replies the language guard found not Portuguese",
                                    ["language"], registry=self.registry)
        self.client_errors = Counter("falante_client_errors", "error events sent, by code", ["code"],
                                     registry=self.registry)
        self.audio_seconds_in = Counter("falante_audio_in_seconds", "Client audio received", registry=self.registry)
        self.audio_seconds_out = Counter("falante_audio_out_seconds", "Reply audio sent", registry=self.registry)

    def observe(self, stage: str, seconds: float) -> None:
        self.stage_latency.labels(stage=stage).observe(max(0.0, seconds))

    def render(self) -> bytes:
        return generate_latest(self.registry)
