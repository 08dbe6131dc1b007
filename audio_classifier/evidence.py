"""The plain data that flows between stages: evidence from channels, decisions from the decision model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .labels import get_label

REVIEW = "review"
"""The list action of a decision a person should look at."""


@dataclass(frozen=True)
class Evidence:
    """One channel's claim that the audio (or the signalling) shows *label*.

    ``score`` is the channel's probability in [0, 1] that the claim is right; ``start_s``
    and ``end_s`` locate it in the analysed audio (seconds from the start of the stream).
    ``detail`` holds channel-specific facts (tone plan, SIT subtype, transcript, ...) and
    must stay JSON-serialisable. ``preamble`` marks a claim made from a preamble (a SIT,
    whose subtype may name a label) rather than from the outcome itself.
    """

    channel: str
    label: str
    score: float
    start_s: float
    end_s: float
    detail: dict[str, Any] = field(default_factory=dict)
    preamble: bool = False

    def __post_init__(self) -> None:
        get_label(self.label)
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"evidence score must be in [0, 1], got {self.score}")

    @property
    def key(self) -> tuple[str, str]:
        """Identity for de-duplication: one standing claim per channel and label."""
        return (self.channel, self.label)

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "label": self.label,
            "score": round(self.score, 4),
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "detail": self.detail,
            "preamble": self.preamble,
        }


@dataclass(frozen=True)
class Decision:
    """The classifier's answer for a call, interim or final.

    ``decided_at_s`` is the amount of audio (seconds) consumed when the decision became
    final, ``None`` while it is not. ``analysed_s`` is the audio analysed so far. ``hold``
    says why an interim decision may not become final yet, whatever its score (see
    ``decision.py``). ``withheld_action`` is the label's own list action when it was held
    back: a destructive action (remove, suppress) below the act threshold becomes
    ``review``. ``confidence`` is the probability that the label is right (the decision
    model's ``score`` through the classifier's confidence map, ``calibration.py``; the
    score itself when there is none).
    """

    label: str
    confidence: float
    final: bool
    decided_at_s: float | None
    analysed_s: float
    evidence: tuple[Evidence, ...] = ()
    truncated: bool = False
    notes: tuple[str, ...] = ()
    error: str | None = None
    hold: str | None = None
    withheld_action: str | None = None
    score: float | None = None
    """The decision model's own score, which the decision threshold applies to (``None``:
    the same as ``confidence``)."""
    transcript: dict[str, dict[str, str]] | None = None
    """What each channel that listens for words heard, matched or not, by channel:
    ``{"asr": {"final": ..., "partial": ...}}`` (``None``: no such channel heard words)."""

    @property
    def number_state(self) -> str:
        return get_label(self.label).number_state

    @property
    def action(self) -> str:
        return REVIEW if self.withheld_action else get_label(self.label).action

    def to_dict(self) -> dict[str, Any]:
        """The decision as the JSON object the CLI and the server emit."""
        info = get_label(self.label)
        return {
            "label": self.label,
            "label_zh": info.zh,
            "label_en": info.en,
            "confidence": round(self.confidence, 4),
            "number_state": info.number_state,
            "action": self.action,
            "withheld_action": self.withheld_action,
            "score": round(self.confidence if self.score is None else self.score, 4),
            "decided_at_s": None if self.decided_at_s is None else round(self.decided_at_s, 3),
            "final": self.final,
            "analysed_s": round(self.analysed_s, 3),
            "truncated": self.truncated,
            "evidence": [e.to_dict() for e in self.evidence],
            "notes": list(self.notes),
            "hold": self.hold,
            "error": self.error,
            "transcript": self.transcript,
        }
