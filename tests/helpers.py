"""Helpers shared by the tests."""

from __future__ import annotations

import numpy as np


def tone_evidence(samples: np.ndarray, block: int = 800) -> list:
    """Run the tone detector alone over *samples* (8 kHz), in blocks."""
    from audio_classifier.tones import ToneDetector

    detector = ToneDetector()
    evidence = []
    for start in range(0, len(samples), block):
        evidence += detector.process(samples[start : start + block], start)
    return evidence + detector.finish()


def best_by_label(evidence: list) -> dict[str, float]:
    best: dict[str, float] = {}
    for item in evidence:
        best[item.label] = max(best.get(item.label, 0.0), item.score)
    return best
