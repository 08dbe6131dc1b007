"""Confidence: the decision model's score mapped to the probability that the label is right.

The decision model (``decision.py``) scores its label by naive-Bayes odds over the
channels' claims; on whole calls that score is over-confident (on call-shaped calls a score
of 0.96 is right about 89 % of the time). A :class:`ConfidenceMap` turns the score into a
confidence with one meaning for every label: the share of final decisions with that score
that were right, fitted on whole call-shaped calls (``training/calibrate_decisions.py``).

The map is Platt scaling on the log-odds of the score, two numbers::

    confidence = 1 / (1 + exp(-(slope * logit(score) + intercept)))

monotone, so it never reorders decisions, and smooth, so it does not learn the noise of
sparse score bins. It is fitted for one model and one set of channels: the shipped map
belongs to the shipped model with tones and model (the speech and fingerprint channels
only add evidence on top).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import ConfigError

FORMAT = "decision-confidence-map-1"
"""The ``format`` field of a map file; another value is refused."""

SCORE_CLIP = 1e-4
"""Scores are clipped to [SCORE_CLIP, 1 - SCORE_CLIP] before their log-odds are taken."""


@dataclass(frozen=True)
class ConfidenceMap:
    """Platt scaling of the decision score (see the module docstring)."""

    slope: float
    intercept: float
    fitted_on: str = ""
    """What the map was fitted on (set, draw, channels, decisions): provenance for the reader."""
    decisions: int = 0
    """How many final decisions it was fitted on."""

    def __call__(self, score: float) -> float:
        """The confidence of a decision with this score."""
        p = min(max(score, SCORE_CLIP), 1.0 - SCORE_CLIP)
        return _sigmoid(self.slope * math.log(p / (1.0 - p)) + self.intercept)

    def score_for(self, confidence: float) -> float:
        """The score whose confidence is *confidence* (the inverse map)."""
        c = min(max(confidence, SCORE_CLIP), 1.0 - SCORE_CLIP)
        return _sigmoid((math.log(c / (1.0 - c)) - self.intercept) / self.slope)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ConfidenceMap:
        """Read a map file (JSON, ``FORMAT``); a clear :class:`ConfigError` when it is not one."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read the confidence map {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise ConfigError(f"the confidence map {path} is not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConfigError(f"{path} is not a confidence map (expected format {FORMAT!r})")
        slope, intercept, decisions = data.get("slope"), data.get("intercept"), data.get("decisions", 0)
        if not all(_is_number(v) for v in (slope, intercept)):
            raise ConfigError(f"the confidence map {path} needs numbers 'slope' and 'intercept'")
        if not (math.isfinite(slope) and math.isfinite(intercept) and slope > 0):
            raise ConfigError(
                f"the confidence map {path} needs a finite positive slope and a finite intercept, "
                f"got {slope} and {intercept}"
            )
        if not (isinstance(decisions, int) and not isinstance(decisions, bool) and decisions >= 0):
            raise ConfigError(f"the confidence map {path}: 'decisions' must be a count, got {decisions!r}")
        return cls(float(slope), float(intercept), str(data.get("fitted_on", "")), decisions)

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(
            json.dumps({"format": FORMAT, **asdict(self)}, indent=2) + "\n", encoding="utf-8"
        )

    @classmethod
    def fit(cls, scores: Sequence[float], correct: Sequence[bool], *, fitted_on: str = "") -> ConfidenceMap:
        """The map that best predicts *correct* from *scores* (logistic regression on the
        scores' log-odds, unregularised). Needs both right and wrong decisions."""
        if len(scores) != len(correct):
            raise ValueError("scores and correct must have the same length")
        if not all(_is_number(s) and 0.0 <= s <= 1.0 for s in scores):
            raise ValueError("scores must be numbers within 0..1")
        if len(set(map(bool, correct))) < 2:
            raise ValueError("fitting a confidence map needs both right and wrong decisions")
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        p = np.clip(np.asarray(scores, dtype=float), SCORE_CLIP, 1.0 - SCORE_CLIP)
        x = np.log(p / (1.0 - p))[:, None]
        model = LogisticRegression(C=1e6, max_iter=1000).fit(x, np.asarray(correct, dtype=bool))
        slope, intercept = float(model.coef_[0][0]), float(model.intercept_[0])
        if slope <= 0:
            raise ValueError(f"the scores do not rank right decisions above wrong ones (slope {slope:.3f})")
        return cls(slope, intercept, fitted_on, len(scores))


def _sigmoid(z: float) -> float:
    """1 / (1 + exp(-z)), without overflow for large |z|."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _is_number(value: object) -> bool:
    """A real number from JSON: an int or a float, not a bool, not NaN."""
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)
