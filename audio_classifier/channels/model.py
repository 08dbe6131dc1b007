"""The model channel: the trained model's running belief over windows (``model.py`` runs
the network; ``features.py`` and ``pitch.py`` make its inputs)."""

from __future__ import annotations

import os

import numpy as np

from ..evidence import Evidence
from ..model import OnnxModel, accumulate, posterior
from .base import LATEST_PER_TIER, ChannelInfo

CHANNEL = "model"

MIN_EVIDENCE_SCORE = 0.3
"""Window posteriors below this are not reported as evidence."""


class ModelChannel:
    """The model channel's shared part: the loaded model, read-only."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, threads: int = 1) -> None:
        self.model = OnnxModel(path, threads=threads)
        self.info = ChannelInfo(
            CHANNEL,
            window_s=self.model.card.features.window_s,
            claims=LATEST_PER_TIER,
            evidence_grid=self.model.evidence_grid,
            source=f"{self.model.path} sha256:{self.model.card.onnx_sha256}",
        )
        """A running belief over windows of the card's length, on the windows' grid."""

    def open(self) -> ModelStream:
        return ModelStream(self.model, self.info)

    def reload(self) -> None:
        return None


class ModelStream:
    """One call's model state: window features as audio arrives, accumulated evidence."""

    def __init__(self, model: OnnxModel, info: ChannelInfo) -> None:
        self._model = model
        self.info = info
        self._features = model.window_features()
        self._state: np.ndarray | None = None
        self._window_s = model.card.features.window_s
        self._sample_rate = model.card.features.sample_rate
        self._pushed = 0  # samples given to the features so far
        self._ready: list[tuple[int, Evidence]] = []  # (window's end sample, its claim), not yet reported

    def prepare(self, samples: np.ndarray, start_sample: int) -> None:
        """Summarise every window the coming blocks complete in one call: a window's
        numbers do not depend on how many are summarised together, and the network still
        scores each alone (``OnnxModel.log_probs``); ``process`` reports each claim in the
        block where its window ends."""
        self._push(samples, start_sample)

    def process(self, samples: np.ndarray, start_sample: int) -> list[Evidence]:
        self._push(samples, start_sample)
        end = start_sample + len(samples)
        due = [e for at, e in self._ready if at <= end]
        self._ready = [(at, e) for at, e in self._ready if at > end]
        return due

    def finish(self) -> list[Evidence]:
        self._ready += self._judge(self._features.finish())
        due, self._ready = [e for _, e in self._ready], []
        return due

    def heard(self) -> None:
        return None

    def pending(self) -> None:
        """Every window is judged when its last sample arrives: nothing is pending."""
        return None

    def _push(self, samples: np.ndarray, start_sample: int) -> None:
        """Feed the features what of *samples* they have not had yet (``prepare`` may have
        given them already)."""
        fresh = samples[max(0, self._pushed - start_sample) :]
        if len(fresh):
            self._ready += self._judge(self._features.push(fresh))
            self._pushed = start_sample + len(samples)

    def _judge(self, windows: list[tuple[float, np.ndarray]]) -> list[tuple[int, Evidence]]:
        if not windows:
            return []
        scores = accumulate(self._model.log_probs(np.stack([f for _, f in windows])), self._state)
        self._state = scores[-1]
        probs = posterior(scores, self._model.card.temperature, self._model.card.bias)
        labels = self._model.card.labels
        evidence = []
        for (end_s, _), p in zip(windows, probs, strict=True):
            top = int(np.argmax(p))
            if p[top] >= MIN_EVIDENCE_SCORE:
                start_s = round(max(0.0, end_s - self._window_s), 3)
                claim = Evidence(
                    CHANNEL,
                    labels[top],
                    float(p[top]),
                    start_s,
                    round(end_s, 3),
                    {"window_s": self._window_s},
                )
                evidence.append((round(end_s * self._sample_rate), claim))
        return evidence
