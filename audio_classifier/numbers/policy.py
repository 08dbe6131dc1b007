"""A number's state from its outcomes, by a policy that is data (``policy.toml``).

States: ``active`` (may be called), ``retry`` (not before its due time), ``review`` (a
person decides) and ``blocked`` (off every list). Every state comes with the rule that
decided it and the outcomes it rests on, so ``numbers show`` can explain it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from ..config import ACT_CONFIDENCE
from ..errors import ConfigError
from ..labels import LABEL_IDS

DEFAULT_POLICY = "policy.toml"
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ORIGINS = ("classifier", "agent", "signalling", "validation")


def parse_duration(text: str) -> timedelta:
    """``30m``, ``4h``, ``2d`` -> a timedelta; raises ``ConfigError``."""
    match = DURATION.match(str(text))
    if not match:
        raise ConfigError(f"duration {text!r}: write a number and s, m, h or d (e.g. 4h)")
    return timedelta(seconds=float(match.group(1)) * UNITS[match.group(2)])


@dataclass(frozen=True)
class Outcome:
    """One recorded outcome, as the policy reads it."""

    id: int
    label: str
    confidence: float | None
    origin: str
    at: datetime
    agent: str | None = None


@dataclass(frozen=True)
class State:
    status: str
    """``active``, ``retry``, ``review`` or ``blocked``."""
    rule: str
    """Why, in words (the rule and the outcome that triggered it)."""
    due: datetime | None = None
    """For ``retry``: not before this time."""
    outcomes: tuple[int, ...] = field(default_factory=tuple)
    """The outcomes (event ids) the state rests on."""

    def callable_at(self, now: datetime) -> bool:
        """Whether a dialer may call the number at *now*."""
        return self.status == "active" or (
            self.status == "retry" and self.due is not None and now >= self.due
        )


@dataclass(frozen=True)
class Policy:
    block: frozenset[str]
    min_confidence: float
    outcomes: int
    stop_contact: frozenset[str]
    retry: dict[str, timedelta]
    review: frozenset[str]
    reachable: frozenset[str]
    keep_blocked_hash: bool = True
    """``forget`` keeps a blocked number blocked by its hash."""
    source: str = DEFAULT_POLICY

    @classmethod
    def load(cls, path: str | Path | None = None) -> Policy:
        """The policy in *path*, or the shipped default; raises ``ConfigError`` naming the problem."""
        if path is None:
            text = resources.files(__package__).joinpath(DEFAULT_POLICY).read_text(encoding="utf-8")
            source = DEFAULT_POLICY
        else:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read policy {path}: {exc.strerror}") from None
            source = str(path)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"policy {source} is not valid TOML: {exc}") from None
        return cls.from_mapping(data, source)

    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str = "policy") -> Policy:
        def table(name: str) -> dict[str, Any]:
            value = data.get(name, {})
            if not isinstance(value, dict):
                raise ConfigError(f"policy {source}: [{name}] must be a table")
            return value

        def labels(section: str) -> frozenset[str]:
            values = table(section).get("labels", [])
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise ConfigError(f"policy {source}, [{section}]: labels must be a list of label IDs")
            unknown = sorted(set(values) - set(LABEL_IDS))
            if unknown:
                raise ConfigError(f"policy {source}, [{section}]: unknown labels {', '.join(unknown)}")
            return frozenset(values)

        block = table("block")
        retry_section = table("retry")
        unknown = sorted(set(retry_section) - set(LABEL_IDS))
        if unknown:
            raise ConfigError(f"policy {source}, [retry]: unknown labels {', '.join(unknown)}")
        try:
            min_confidence = float(block.get("min_confidence", ACT_CONFIDENCE))
            outcomes = int(block.get("outcomes", 1))
        except (TypeError, ValueError):
            raise ConfigError(
                f"policy {source}, [block]: min_confidence a number, outcomes an integer"
            ) from None
        policy = cls(
            block=labels("block"),
            min_confidence=min_confidence,
            outcomes=outcomes,
            stop_contact=labels("stop_contact"),
            retry={label: parse_duration(value) for label, value in retry_section.items()},
            review=labels("review"),
            reachable=labels("reachable"),
            keep_blocked_hash=bool(table("forget").get("keep_blocked_hash", True)),
            source=source,
        )
        if not 0.0 <= policy.min_confidence <= 1.0 or policy.outcomes < 1:
            raise ConfigError(f"policy {source}: block.min_confidence within 0..1 and block.outcomes >= 1")
        if not policy.stop_contact <= policy.block:
            extra = ", ".join(sorted(policy.stop_contact - policy.block))
            raise ConfigError(
                f"policy {source}: [stop_contact] labels must also block ([block] lacks {extra})"
            )
        return policy

    def counted(self, outcome: Outcome) -> bool:
        """An agent's mark always counts; other outcomes from ``min_confidence`` on."""
        return outcome.origin == "agent" or (
            outcome.confidence is not None and outcome.confidence >= self.min_confidence
        )

    def state(self, outcomes: list[Outcome]) -> State:
        """The state the *outcomes* (any order) put a number in."""
        ordered = sorted(outcomes, key=lambda o: (o.at, o.id))
        blocked: State | None = None
        streak: list[Outcome] = []
        last: Outcome | None = None
        for outcome in ordered:
            counted = self.counted(outcome)
            if outcome.origin == "agent" and outcome.label in self.reachable and blocked is not None:
                blocked, streak = None, []  # an agent heard the number answer: the block is lifted
            if blocked is not None or not counted:
                continue
            last = outcome
            if outcome.label in self.block:
                streak.append(outcome)
                if outcome.origin == "agent":
                    blocked = State(
                        "blocked", f"agent {outcome.agent} marked it {outcome.label}", None, (outcome.id,)
                    )
                elif outcome.label in self.stop_contact:
                    blocked = State(
                        "blocked",
                        f"{outcome.label} stops all contact ({_said(outcome)})",
                        None,
                        (outcome.id,),
                    )
                elif len(streak) >= self.outcomes:
                    ids = tuple(o.id for o in streak[-self.outcomes :])
                    blocked = State(
                        "blocked",
                        f"{self.outcomes} counted outcome(s) in a row that block ({_said(outcome)})",
                        None,
                        ids,
                    )
            else:
                streak = []
        if blocked is not None:
            return blocked
        doubtful = [
            o
            for o in ordered
            if not self.counted(o) and o.label in self.block and (last is None or o.at > last.at)
        ]
        if doubtful:
            o = doubtful[-1]
            return State(
                "review",
                f"{o.label} at confidence {o.confidence} is below the policy's {self.min_confidence:g}",
                None,
                (o.id,),
            )
        if last is None:
            return State("active", "no counted outcome")
        if last.label in self.retry:
            due = last.at + self.retry[last.label]
            return State("retry", f"{last.label}: call again from {due.isoformat()}", due, (last.id,))
        if last.label in self.review:
            return State("review", f"{last.label} needs a person ({_said(last)})", None, (last.id,))
        if last.label in self.block:
            return State(
                "active",
                f"{last.label} once; the policy blocks after {self.outcomes} in a row",
                None,
                (last.id,),
            )
        return State("active", f"{last.label} ({_said(last)})", None, (last.id,))


def _said(outcome: Outcome) -> str:
    by = f"agent {outcome.agent}" if outcome.origin == "agent" else outcome.origin
    confidence = "" if outcome.confidence is None else f" at confidence {outcome.confidence:.2f}"
    return f"{by}{confidence}, {outcome.at.isoformat()}"
