"""Signalling hints (SIP final status, Q.850 cause) as evidence for the decision model.

Mapping after RFC 3398 (ISUP cause to SIP status) and ITU-T Q.850. Carriers often send a
late, generic status for every failure, so a hint is weak evidence: it enters the decision
through the ``signalling`` channel with a weight below 1. It chooses the label only when the
audio holds nothing but progress (ringback, silence) and nothing that names the signalled
outcome; otherwise it only raises the audio's labels it agrees with (``decision.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..evidence import Evidence
from .base import ChannelInfo

SIGNALLING = "signalling"
"""Channel name of evidence that comes from SIP / Q.850 hints rather than audio."""

SIGNALLING_INFO = ChannelInfo(SIGNALLING, ends_progress=False)
"""Hints are no audio: they support or weaken what the audio shows and never end progress."""

Q850_LABELS: dict[int, tuple[tuple[str, ...], float]] = {
    1: (("vacant",), 0.8),
    17: (("busy", "busy_tone"), 0.8),
    18: (("unreachable",), 0.6),
    19: (("no_answer",), 0.7),
    20: (("powered_off", "unreachable"), 0.65),
    21: (("rejected",), 0.7),
    22: (("number_changed",), 0.8),
    27: (("unreachable",), 0.6),
    28: (("wrong_number_format",), 0.75),
    34: (("network_busy", "congestion_tone"), 0.7),
    38: (("network_busy", "congestion_tone"), 0.6),
    41: (("network_busy", "congestion_tone"), 0.6),
    42: (("network_busy", "congestion_tone"), 0.65),
    55: (("barred",), 0.7),
}
"""Q.850 cause -> (labels it supports, evidence score)."""

SIP_LABELS: dict[int, tuple[tuple[str, ...], float]] = {
    404: (("vacant",), 0.7),
    410: (("number_changed",), 0.7),
    484: (("wrong_number_format",), 0.7),
    486: (("busy", "busy_tone"), 0.75),
    600: (("busy", "busy_tone"), 0.7),
    480: (("powered_off", "unreachable", "no_answer"), 0.55),
    408: (("unreachable", "no_answer"), 0.55),
    403: (("barred", "rejected"), 0.55),
    603: (("rejected",), 0.6),
    502: (("unreachable",), 0.55),
    503: (("network_busy", "congestion_tone"), 0.6),
}
"""SIP final status -> (labels it supports, evidence score). A Q.850 cause, when present,
is more specific and is used instead."""


@dataclass(frozen=True)
class Hints:
    """Signalling facts known about a call, all optional."""

    sip_status: int | None = None
    q850_cause: int | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> Hints:
        """Build from loose input (CLI manifest columns, JSON): empty values are absent."""
        if not values:
            return cls()
        return cls(
            sip_status=_optional_int(values.get("sip_status"), "sip_status", 100, 699),
            q850_cause=_optional_int(values.get("q850_cause"), "q850_cause", 0, 127),
        )

    def evidence(self) -> list[Evidence]:
        """The hints as signalling-channel evidence (one item per supported label)."""
        if self.q850_cause is not None and self.q850_cause in Q850_LABELS:
            labels, score = Q850_LABELS[self.q850_cause]
            detail: dict[str, Any] = {"q850_cause": self.q850_cause}
        elif self.sip_status is not None and self.sip_status in SIP_LABELS:
            labels, score = SIP_LABELS[self.sip_status]
            detail = {"sip_status": self.sip_status}
        else:
            return []
        return [Evidence(SIGNALLING, label, score, 0.0, 0.0, detail) for label in labels]


def _optional_int(value: Any, name: str, low: int, high: int) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = int(float(value)) if isinstance(value, str) else int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: inf, 1e400
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None
    if not low <= number <= high:
        raise ConfigError(f"{name} must be within {low}..{high}, got {number}")
    return number
