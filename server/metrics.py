"""Prometheus metrics: per-stage latency histograms and session gauges, served at /metrics.

A private registry (not the global one) so several apps in one test process never collide.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
SCORE_BUCKETS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)
STAGES = ("endpoint", "asr_final", "llm_first_token", "llm_first_sentence", "tts_first_audio", "voice_to_voice")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.active_sessions = Gauge("falante_active_sessions", "Open websocket sessions", registry=self.registry)
        self.max_sessions = Gauge("falante_max_sessions", "Admission limit (limits.max_sessions)",
                                  registry=self.registry)
        self.draining = Gauge("falante_draining", "1 while the server drains (SIGTERM): no new sessions",
                              registry=self.registry)
        self.sessions_refused = Counter("falante_sessions_refused", "Connections refused (full, draining or auth)",
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
        self.turn_decisions = Counter("falante_turn_decisions", "User turns ended, by turn_detection type and why",
                                      ["type", "decision"], registry=self.registry)
        self.turn_wait = Histogram("falante_turn_wait_seconds", "Silence waited before a user turn ended",
                                   ["type", "decision"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.turn_score = Histogram("falante_turn_end_score", "End-of-turn probability of the scored transcript",
                                    buckets=SCORE_BUCKETS, registry=self.registry)

    def observe(self, stage: str, seconds: float) -> None:
        self.stage_latency.labels(stage=stage).observe(max(0.0, seconds))

    def turn_ended(self, kind: str, decision: str, score: float | None, waited_s: float) -> None:
        self.turn_decisions.labels(type=kind, decision=decision).inc()
        self.turn_wait.labels(type=kind, decision=decision).observe(max(0.0, waited_s))
        if score is not None:
            self.turn_score.observe(score)

    def render(self) -> bytes:
        return generate_latest(self.registry)
