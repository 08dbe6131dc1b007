"""Evaluation metrics over (truth, prediction, confidence) triples. Pure numpy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ECE_BINS = 10
"""Equal-width confidence bins for the expected calibration error."""


@dataclass(frozen=True)
class ClassReport:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


def confusion_matrix(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Counts, rows = true label, columns = predicted label (in *labels* order)."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(truth, predicted, strict=True):
        matrix[index[t], index[p]] += 1
    return matrix


def per_class(matrix: np.ndarray, labels: Sequence[str]) -> list[ClassReport]:
    reports = []
    for i, label in enumerate(labels):
        tp = matrix[i, i]
        predicted = matrix[:, i].sum()
        actual = matrix[i, :].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        reports.append(ClassReport(label, float(precision), float(recall), float(f1), int(actual)))
    return reports


def macro_f1(reports: list[ClassReport]) -> float:
    """Mean F1 over the labels that occur in the truth."""
    present = [r.f1 for r in reports if r.support > 0]
    return float(np.mean(present)) if present else 0.0


def calibration(confidence: Sequence[float], correct: Sequence[bool], bins: int = ECE_BINS) -> dict:
    """Expected calibration error and the reliability table (per bin: mean confidence,
    accuracy, count)."""
    conf = np.asarray(confidence, dtype=np.float64)
    hits = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    table = []
    ece = 0.0
    for b in range(bins):
        mask = which == b
        count = int(mask.sum())
        if count:
            mean_conf, accuracy = float(conf[mask].mean()), float(hits[mask].mean())
            ece += count / len(conf) * abs(mean_conf - accuracy)
        else:
            mean_conf = accuracy = None
        table.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "confidence": mean_conf,
                "accuracy": accuracy,
                "count": count,
            }
        )
    return {"ece": float(ece), "bins": table}


def distribution(values: Sequence[float]) -> dict:
    """Summary of a sample: count, mean, median and percentiles."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    if not len(v):
        return {"count": 0}
    p10, p50, p90, p95 = np.percentile(v, [10, 50, 90, 95])
    return {
        "count": int(len(v)),
        "mean": float(v.mean()),
        "p10": float(p10),
        "median": float(p50),
        "p90": float(p90),
        "p95": float(p95),
        "max": float(v.max()),
    }
