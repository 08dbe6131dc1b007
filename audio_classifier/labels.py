"""The label taxonomy: stable IDs, display names, number state and list action.

The IDs are part of the public output format: never rename one. Each label also has a
*tier* that the decision model (``decision.py``) uses to order evidence in time-dependent call shapes:

- ``progress``: what a call sounds like before its outcome is known (ringback, music
  ringback, silence). Never ends a session early; superseded by any later outcome.
- ``generic``: an outcome the network signalled without saying why (busy and congestion
  tones, a SIT without a decodable code, unknown). A specific announcement explains it.
- ``specific``: an outcome with its reason (announcements, answer types, fax).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Tier = Literal["progress", "generic", "specific"]


@dataclass(frozen=True)
class Label:
    """One class of the taxonomy."""

    id: str
    zh: str
    en: str
    number_state: str
    action: str
    tier: Tier = "specific"


_TABLE: tuple[Label, ...] = (
    Label("vacant", "空号", "Vacant number", "invalid", "remove"),
    Label("number_changed", "改号", "Number changed", "invalid", "remove"),
    Label("ported", "已转网", "Ported to another network", "invalid", "remove"),
    Label("wrong_number_format", "拨号方式不正确", "Wrong number format", "invalid", "review"),
    Label("suspended", "停机", "Suspended", "inactive", "suppress"),
    Label("barred", "呼入限制", "Incoming calls barred", "refused", "suppress"),
    Label("rejected", "用户拒接", "Call rejected", "refused", "retry_later"),
    Label("powered_off", "关机", "Powered off", "unavailable", "retry_later"),
    Label("unreachable", "无法接通", "Unreachable", "unavailable", "retry_later"),
    Label("no_answer", "无人接听", "No answer", "unavailable", "retry_later"),
    Label("call_reminder", "来电提醒", "Missed-call reminder", "unavailable", "retry_later"),
    Label("forwarding_failed", "呼叫转移失败", "Call forwarding failed", "unavailable", "retry_later"),
    Label("redial_later", "稍后再拨", "Please redial later", "unavailable", "retry_later"),
    Label("busy", "正在通话中", "Subscriber busy", "busy", "retry_soon"),
    Label("busy_tone", "忙音", "Busy tone", "busy", "retry_soon", "generic"),
    Label("network_busy", "网络忙", "Network busy", "network_issue", "retry_soon"),
    Label("congestion_tone", "拥塞音", "Congestion tone", "network_issue", "retry_soon", "generic"),
    Label("line_fault", "线路故障", "Caller line fault", "caller_issue", "check_trunk"),
    Label("sit", "特殊信息音", "Special information tone", "unknown", "review", "generic"),
    Label("ringback", "回铃音", "Ringback tone", "reachable", "keep", "progress"),
    Label("color_ringback", "彩铃", "Music ringback", "reachable", "keep", "progress"),
    Label("voicemail", "语音信箱", "Voicemail", "reachable", "keep"),
    Label("human", "人工接听", "Human answer", "reachable", "keep"),
    Label("fax", "传真", "Fax or modem", "non_voice", "remove"),
    Label("silence", "静音", "Silence", "unknown", "retry_later", "progress"),
    Label("unknown", "未知", "Unknown", "unknown", "review", "generic"),
)

LABELS: dict[str, Label] = {label.id: label for label in _TABLE}
"""Every label by ID, in taxonomy order."""

LABEL_IDS: tuple[str, ...] = tuple(LABELS)

UNKNOWN = "unknown"

ANNOUNCEMENT_LABELS: tuple[str, ...] = (
    *LABEL_IDS[: LABEL_IDS.index("redial_later") + 1],
    "network_busy",
    "busy",
    "line_fault",
)
"""Labels a carrier announcement can carry (what the speech channels recognise)."""


PREAMBLE_LABELS: frozenset[str] = frozenset({"sit"})
"""Labels of a preamble: a Special Information Tone says the call failed and that an
announcement saying why usually follows (Telcordia GR-1162: the SIT precedes a recorded
announcement)."""

DESTRUCTIVE_ACTIONS: frozenset[str] = frozenset({"remove", "suppress"})
"""List actions that take a number off a calling list: a wrong one loses a reachable
customer, so they need a certainty of their own (``DecisionConfig.act_threshold``)."""


def withheld_action(label: str, confidence: float, act_threshold: float) -> str | None:
    """*label*'s list action when it is destructive and *confidence* is below
    *act_threshold* (the decision then says ``review``), else ``None``."""
    action = get_label(label).action
    return action if action in DESTRUCTIVE_ACTIONS and confidence < act_threshold else None


def withheld_note(action: str, confidence: float, act_threshold: float) -> str:
    """The note a decision carries when its destructive *action* was withheld."""
    return (
        f"action {action} withheld: confidence {confidence:.2f} is below the act threshold "
        f"{act_threshold:g}; review"
    )


def get_label(label_id: str) -> Label:
    """Return the label for *label_id*; raise ``KeyError`` naming the valid IDs."""
    try:
        return LABELS[label_id]
    except KeyError:
        raise KeyError(f"unknown label {label_id!r}; valid labels: {', '.join(LABEL_IDS)}") from None
