"""Prometheus metrics of one server process (prometheus_client, its own registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.sessions = Counter(
            "audio_classifier_sessions", "Sessions opened, by transport", ["transport"], registry=r
        )
        self.active = Gauge("audio_classifier_active_sessions", "Sessions now open", registry=r)
        self.decisions = Counter(
            "audio_classifier_decisions", "Final decisions, by label", ["label"], registry=r
        )
        self.errors = Counter("audio_classifier_errors", "Errors, by code", ["code"], registry=r)
        self.audio = Counter("audio_classifier_audio_seconds", "Audio received (seconds)", registry=r)
        self.processing = Histogram(
            "audio_classifier_chunk_processing_seconds",
            "Time from a chunk's arrival to its analysis being done (waiting chunks of a call that "
            "fell behind are analysed together: each one counted from its own arrival)",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.decided_at = Histogram(
            "audio_classifier_decided_at_seconds",
            "Audio consumed when the decision became final",
            buckets=(0.5, 1, 1.5, 2, 3, 5, 10, 20, 60),
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
