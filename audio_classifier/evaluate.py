"""Evaluate the classifier on a labelled manifest (CSV with ``path`` and ``label``).

Predictions go through the batch path into ``OUT/predictions.jsonl`` (so an interrupted
evaluation resumes), then: accuracy, macro-F1, per-class precision/recall/F1, the
confusion matrix, calibration (expected calibration error and a reliability table) and
the distribution of ``decided_at_s`` (and, where the manifest has an ``onset_s`` column,
of the time from the announcement's start to the decision). Written as ``metrics.json``,
``confusion.png`` and ``reliability.png``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .batch import BatchItem, RecordWriter, UsageError, read_manifest, run
from .config import ClassifierConfig
from .labels import ANNOUNCEMENT_LABELS, LABEL_IDS
from .metrics import calibration, confusion_matrix, distribution, macro_f1, per_class


def _truth_column(items: list[BatchItem]) -> str:
    for name in ("manifest_label", "label", "expected_label"):
        if items and name in items[0].extra:
            return name
    raise UsageError("the manifest needs a 'label' column with the expected label of each row")


def predict(
    manifest: Path,
    out_dir: Path,
    *,
    config: ClassifierConfig,
    jobs: int = 1,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[list[BatchItem], Path, int]:
    """Classify the manifest's rows into ``out_dir/predictions.jsonl`` (resuming).

    Returns the items, the predictions file and how many rows still needed classifying.
    """
    items = read_manifest(manifest)
    truth = _truth_column(items)
    unknown = sorted({item.extra[truth] for item in items} - set(LABEL_IDS))
    if unknown:
        raise UsageError(f"manifest labels outside the taxonomy: {', '.join(unknown)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions = out_dir / "predictions.jsonl"
    extra_columns = list(dict.fromkeys(name for item in items for name in item.extra))
    writer = RecordWriter(str(predictions), extra_columns)
    done = writer.done_keys()
    todo = [item for item in items if item.key not in done]
    with writer:
        run(todo, writer, config=config, jobs=jobs, on_record=on_record)
    return items, predictions, len(todo)


def score(items: list[BatchItem], predictions: Path) -> dict[str, Any]:
    """Metrics of the predictions for *items* (records matched by path)."""
    truth_column = _truth_column(items)
    wanted = {item.key for item in items}
    records: dict[str, dict] = {}
    with open(predictions, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record["path"] in wanted:
                records[record["path"]] = record
    scored = [r for r in records.values() if not r.get("error")]
    errors = [{"path": r["path"], "error": r["error"]} for r in records.values() if r.get("error")]
    truth = [r[truth_column] for r in scored]
    predicted = [r["label"] for r in scored]
    labels = [label for label in LABEL_IDS if label in set(truth) | set(predicted)]
    matrix = confusion_matrix(truth, predicted, labels)
    reports = per_class(matrix, labels)
    correct = [t == p for t, p in zip(truth, predicted, strict=True)]
    after_onset = [
        r["decided_at_s"] - float(r["onset_s"])
        for r in scored
        if r[truth_column] in ANNOUNCEMENT_LABELS
        and r.get("onset_s") not in (None, "")
        and r["decided_at_s"] is not None
    ]
    return {
        "inputs": len(items),
        "scored": len(scored),
        "errors": errors,
        "accuracy": float(sum(correct) / len(correct)) if correct else 0.0,
        "macro_f1": macro_f1(reports),
        "per_class": [vars(r) for r in reports],
        "confusion": {"labels": labels, "matrix": matrix.tolist()},
        "calibration": calibration([r["confidence"] for r in scored], correct),
        "decided_at_s": distribution([r["decided_at_s"] for r in scored]),
        "announcement_decided_after_onset_s": distribution(after_onset),
    }


def format_report(metrics: dict[str, Any]) -> str:
    lines = [
        f"inputs {metrics['inputs']}, scored {metrics['scored']}, errors {len(metrics['errors'])}",
        f"accuracy {metrics['accuracy']:.4f}   macro-F1 {metrics['macro_f1']:.4f}   "
        f"ECE {metrics['calibration']['ece']:.4f}",
        "",
        f"{'label':22s}{'precision':>10s}{'recall':>10s}{'F1':>10s}{'support':>9s}",
    ]
    for r in metrics["per_class"]:
        lines.append(
            f"{r['label']:22s}{r['precision']:10.3f}{r['recall']:10.3f}{r['f1']:10.3f}{r['support']:9d}"
        )
    labels = metrics["confusion"]["labels"]
    lines += ["", "confusion (rows: truth; columns: predicted, in the order above)"]
    for label, row in zip(labels, metrics["confusion"]["matrix"], strict=True):
        lines.append(f"{label:22s}" + "".join(f"{v:4d}" for v in row))
    for key, title in (
        ("decided_at_s", "decided_at_s"),
        ("announcement_decided_after_onset_s", "announcements: decision after onset (s)"),
    ):
        d = metrics[key]
        if d.get("count"):
            lines.append(
                f"{title}: median {d['median']:.2f}, p90 {d['p90']:.2f}, max {d['max']:.2f} (n={d['count']})"
            )
    return "\n".join(lines)


def plot(metrics: dict[str, Any], out_dir: Path) -> list[Path]:
    """confusion.png and reliability.png; needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    written = []
    labels = metrics["confusion"]["labels"]
    matrix = np.array(metrics["confusion"]["matrix"], dtype=float)
    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(0.42 * len(labels) + 3, 0.42 * len(labels) + 2.5))
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if matrix[i, j]:
                ax.text(
                    j,
                    i,
                    int(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if rows[i, j] > 0.5 else "black",
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("truth")
    ax.set_title(f"macro-F1 {metrics['macro_f1']:.3f}, accuracy {metrics['accuracy']:.3f}")
    fig.tight_layout()
    written.append(out_dir / "confusion.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    bins = [b for b in metrics["calibration"]["bins"] if b["count"]]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", label="classifier")
    for b in bins:
        ax.annotate(
            str(b["count"]),
            (b["confidence"], b["accuracy"]),
            fontsize=7,
            textcoords="offset points",
            xytext=(4, -10),
        )
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"reliability (ECE {metrics['calibration']['ece']:.3f})")
    ax.legend(loc="upper left")
    fig.tight_layout()
    written.append(out_dir / "reliability.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written
