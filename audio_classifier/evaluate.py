"""Evaluate the classifier on a labelled manifest (CSV with ``path`` and ``label``).

Predictions go through the batch path into ``OUT/predictions.jsonl`` (so an interrupted
evaluation resumes), then: accuracy, macro-F1, per-class precision/recall/F1, the
confusion matrix, calibration (expected calibration error and a reliability table) and
the distribution of ``decided_at_s`` (and, where the manifest has an ``onset_s`` column,
of the time from the announcement's start to the decision). Written as ``metrics.json``,
``confusion.png`` and ``reliability.png``.

With decision thresholds to compare (``thresholds``), every clip is listened to its end
once, its confidence peaks recorded (``batch.confidence_peaks``) into ``OUT/streams.jsonl``;
the decision at each threshold, and when it came, is replayed from them. The metrics and
``predictions.jsonl`` are then those of the configured threshold, exactly as a run at that
threshold gives them, and ``metrics["thresholds"]`` compares the others.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .batch import BatchItem, ReadOptions, RecordWriter, UsageError, match_records, read_manifest, run
from .config import ClassifierConfig
from .evidence import Decision
from .labels import (
    ANNOUNCEMENT_LABELS,
    DESTRUCTIVE_ACTIONS,
    LABEL_IDS,
    LABELS,
    withheld_action,
    withheld_note,
)
from .metrics import calibration, confusion_matrix, distribution, macro_f1, per_class

KEEP = "keep"
"""The list action of a reachable number (ringback, music ringback, voicemail, human)."""


def _truth_column(items: list[BatchItem]) -> str:
    if not items:
        raise UsageError("the manifest has no rows")
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
    peaks: bool = False,
    settings: dict[str, Any] | None = None,
    restart: bool = False,
) -> tuple[list[BatchItem], Path, int]:
    """Classify the manifest's rows into ``out_dir/predictions.jsonl`` (resuming).

    With *peaks*, every clip is analysed to its end instead and its records, with their
    confidence peaks, go to ``out_dir/streams.jsonl`` (see :func:`decide_at`).
    *settings* (``Classifier.settings``) are written beside that file; a run resumed into
    it with other settings is refused, unless *restart* discards it first.
    Returns the items, the file written and how many rows still needed classifying.
    """
    items = read_manifest(manifest)
    truth = _truth_column(items)
    unknown = sorted({item.extra[truth] for item in items} - set(LABEL_IDS))
    if unknown:
        raise UsageError(f"manifest labels outside the taxonomy: {', '.join(unknown)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions = out_dir / ("streams.jsonl" if peaks else "predictions.jsonl")
    if peaks:
        config = replace(config, early_decision=False, update_min_delta=0.0)
    if restart:
        predictions.unlink(missing_ok=True)
    if settings is not None:
        check_settings(predictions, {**settings, "peaks": peaks})
    extra_columns = list(dict.fromkeys(name for item in items for name in item.extra))
    writer = RecordWriter(str(predictions), extra_columns)
    todo = writer.resume(items)
    with writer:
        run(todo, writer, config=config, options=ReadOptions(peaks=peaks), jobs=jobs, on_record=on_record)
    return items, predictions, len(todo)


def check_settings(output: Path, settings: dict[str, Any]) -> None:
    """Write *settings* beside *output* (``<stem>.settings.json``), or, when *output*
    already holds records, refuse (``UsageError``) if they were made with other settings,
    naming what differs."""
    stamp = output.with_name(f"{output.stem}.settings.json")
    wanted = json.loads(json.dumps(settings))
    if output.exists() and output.stat().st_size > 0:
        try:
            recorded = json.loads(stamp.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            recorded = None
        if recorded != wanted:
            differ = (
                ", ".join(_differences(recorded, wanted))
                if isinstance(recorded, dict)
                else "no settings recorded"
            )
            raise UsageError(
                f"{output.parent} holds a run made with other settings ({differ}): give another "
                "--out-dir, or --restart to discard that run"
            )
    stamp.write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            found += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return found
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]


def read_records(items: list[BatchItem], path: Path) -> list[dict[str, Any]]:
    """The records of *path* for *items*, in the items' order (matched by path and manifest
    row: ``batch.match_records``); items without a record are left out."""
    columns = list(dict.fromkeys(name for item in items for name in item.extra))
    with open(path, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    return [r for r in match_records(items, records, columns) if r is not None]


def decide_at(record: dict[str, Any], threshold: float | None, *, act_threshold: float) -> dict[str, Any]:
    """A ``streams.jsonl`` record as a session with early decisions at *threshold* would
    have decided it: its first peak whose score is at or above the threshold, else its final
    decision (the end of the stream; always, for ``None``: no early decisions). An early
    decision is never truncated; its evidence and notes stay those of the whole stream, but
    for the note on a withheld action, which is its own."""
    if record.get("error"):
        return record
    if "peaks" not in record:
        raise UsageError(f"{record['path']}: the record has no confidence peaks (not a streams.jsonl record)")
    whole = {k: v for k, v in record.items() if k != "peaks"}
    for peak in record["peaks"] if threshold is not None else ():
        if len(peak) != 4:
            raise UsageError(
                f"{record['path']}: confidence peaks without scores (written by an older version): "
                "run the evaluation again into a new folder"
            )
        analysed_s, label, score, confidence = peak
        if score >= threshold:
            withheld = withheld_action(label, confidence, act_threshold)
            early = Decision(
                label,
                confidence,
                final=True,
                decided_at_s=analysed_s,
                analysed_s=analysed_s,
                withheld_action=withheld,
                score=score,
            )
            # the decision's own fields, as the session would have written them
            notes = list(whole.get("notes") or [])
            if whole.get("withheld_action"):
                stale = withheld_note(whole["withheld_action"], whole["confidence"], act_threshold)
                notes = [n for n in notes if n != stale]
            if withheld:
                notes.append(withheld_note(withheld, confidence, act_threshold))
            fields = {
                k: v for k, v in early.to_dict().items() if k not in ("evidence", "notes", "transcript")
            }
            return whole | fields | {"notes": notes}
    return whole


def replay(
    items: list[BatchItem],
    streams: Path,
    predictions: Path,
    threshold: float | None,
    *,
    act_threshold: float,
) -> list[dict]:
    """Write *predictions* as decided at *threshold* (see :func:`decide_at`) from the
    *streams* file; return the stream records."""
    records = read_records(items, streams)
    with open(predictions, "w", encoding="utf-8") as handle:
        for record in records:
            decided = decide_at(record, threshold, act_threshold=act_threshold)
            handle.write(json.dumps(decided, ensure_ascii=False) + "\n")
    return records


def compare_thresholds(
    items: list[BatchItem],
    records: list[dict],
    thresholds: Sequence[float],
    *,
    act_threshold: float,
) -> list[dict]:
    """Accuracy, macro-F1, ECE and decision times at each threshold, replayed from
    ``streams.jsonl`` *records*."""
    rows = []
    for threshold in sorted(set(thresholds)):
        m = score_records(items, [decide_at(r, threshold, act_threshold=act_threshold) for r in records])
        rows.append(
            {
                "threshold": threshold,
                "accuracy": m["accuracy"],
                "action_accuracy": m["actions"]["accuracy"],
                "macro_f1": m["macro_f1"],
                "ece": m["calibration"]["ece"],
                "decided_at_s": m["decided_at_s"],
                "announcement_decided_after_onset_s": m["announcement_decided_after_onset_s"],
            }
        )
    return rows


def score(items: list[BatchItem], predictions: Path, by: Sequence[str] = ()) -> dict[str, Any]:
    """Metrics of the predictions for *items* (records matched by path and manifest row), and under ``"by"``
    the same per value of each manifest column in *by* (``slice_metrics``)."""
    records = read_records(items, predictions)
    metrics = score_records(items, records)
    if by:
        metrics["by"] = {column: slice_metrics(items, records, column) for column in by}
    return metrics


def score_records(items: list[BatchItem], records: list[dict[str, Any]]) -> dict[str, Any]:
    """Metrics of *records* (one per scored item) against the items' labels."""
    truth_column = _truth_column(items)
    scored = [r for r in records if not r.get("error")]
    errors = [{"path": r["path"], "error": r["error"]} for r in records if r.get("error")]
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
        "actions": _action_metrics(truth, [_action(r) for r in scored]),
        "announcements_as_answers": _answered(truth, predicted),
    }


ANSWER_LABELS = ("human", "voicemail")
"""Labels of an answered call: an announcement taken for one keeps a dead number on the list."""


def _answered(truth: list[str], predicted: list[str]) -> dict[str, Any]:
    """How many announcements were labelled as an answer (human, voicemail)."""
    announced = [p for t, p in zip(truth, predicted, strict=True) if t in ANNOUNCEMENT_LABELS]
    answered = sum(p in ANSWER_LABELS for p in announced)
    return {
        "announcements": len(announced),
        "answers": answered,
        "rate": answered / len(announced) if announced else 0.0,
    }


MAX_SLICES = 100
"""Most values a ``--by`` column may take: a column with more (a path, a seed) is not a slice."""


def check_slices(items: list[BatchItem], columns: Sequence[str]) -> list[str]:
    """The manifest columns that ``--by`` *columns* name (``label`` is carried as
    ``manifest_label``). Refuses, before any audio is analysed, a column the manifest lacks
    or one with more than ``MAX_SLICES`` values."""
    present = list(dict.fromkeys(name for item in items for name in item.extra))
    resolved = []
    for column in columns:
        name = column if column in present else f"manifest_{column}"
        if name not in present:
            shown = ", ".join(name.removeprefix("manifest_") for name in present)
            raise UsageError(f"--by {column}: the manifest has no such column (it has: {shown})")
        count = len({item.extra.get(name, "") for item in items})
        if count > MAX_SLICES:
            raise UsageError(f"--by {column}: {count} different values; at most {MAX_SLICES} make slices")
        resolved.append(name)
    return resolved


def slice_metrics(items: list[BatchItem], records: list[dict[str, Any]], column: str) -> list[dict[str, Any]]:
    """Metrics per value of the manifest's *column* (lead-in, codec, noise, language, ...), in
    the values' order: which part of a set is hard. A row without the value counts as ""."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:  # a record carries its manifest row's values
        groups[str(record.get(column) or "")].append(record)
    rows = []
    for value in sorted(groups):
        metrics = score_records(items, groups[value])
        rows.append(
            {
                "value": value,
                "clips": metrics["scored"],
                "errors": len(metrics["errors"]),
                "accuracy": metrics["accuracy"],
                "action_accuracy": metrics["actions"]["accuracy"],
                "macro_f1": metrics["macro_f1"],
                "announcement_decided_after_onset_s": metrics["announcement_decided_after_onset_s"],
            }
        )
    return rows


def _action_metrics(truth: list[str], predicted_actions: list[str]) -> dict[str, Any]:
    """What the list does with each number (remove, retry_later, ...), as the records say
    (``review`` where a destructive action was withheld): labels that share an action
    confuse nobody's list, so the action is right more often than the label. Also how often
    a reachable number (its label's action ``keep``) was given a destructive action, the
    costliest error a list can make."""
    true_actions = [LABELS[t].action for t in truth]
    actions = dict.fromkeys(label.action for label in LABELS.values())  # review among them
    present = [a for a in actions if a in set(true_actions) | set(predicted_actions)]
    matrix = confusion_matrix(true_actions, predicted_actions, present)
    right = [t == p for t, p in zip(true_actions, predicted_actions, strict=True)]
    reachable = [p for t, p in zip(true_actions, predicted_actions, strict=True) if t == KEEP]
    destroyed = sum(p in DESTRUCTIVE_ACTIONS for p in reachable)
    return {
        "accuracy": float(sum(right) / len(right)) if right else 0.0,
        "per_action": [vars(r) for r in per_class(matrix, present)],
        "reachable": len(reachable),
        "reachable_destructive": destroyed,
        "reachable_destructive_rate": destroyed / len(reachable) if reachable else 0.0,
    }


def _score_table(kind: str, reports: list[dict[str, Any]]) -> list[str]:
    """Precision, recall, F1 and support per label (or action), one line each."""
    lines = [f"{kind:22s}{'precision':>10s}{'recall':>10s}{'F1':>10s}{'support':>9s}"]
    for r in reports:
        lines.append(
            f"{r['label']:22s}{r['precision']:10.3f}{r['recall']:10.3f}{r['f1']:10.3f}{r['support']:9d}"
        )
    return lines


def format_report(metrics: dict[str, Any]) -> str:
    lines = [
        f"inputs {metrics['inputs']}, scored {metrics['scored']}, errors {len(metrics['errors'])}",
        f"accuracy {metrics['accuracy']:.4f}   macro-F1 {metrics['macro_f1']:.4f}   "
        f"ECE {metrics['calibration']['ece']:.4f}",
        "",
        *_score_table("label", metrics["per_class"]),
    ]
    actions = metrics.get("actions")
    if actions and actions["per_action"]:
        lines += [
            "",
            f"list action right {actions['accuracy']:.4f}; reachable numbers given remove or suppress: "
            f"{actions['reachable_destructive']} of {actions['reachable']}",
            *_score_table("action", actions["per_action"]),
        ]
    answered = metrics.get("announcements_as_answers")
    if answered and answered["announcements"]:
        lines.append(
            f"announcements labelled human or voicemail: {answered['answers']} of {answered['announcements']}"
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
    for column, rows in metrics.get("by", {}).items():
        lines += [
            "",
            f"by {column} (announcements: median decision after onset, seconds)",
            f"{'value':22s}{'clips':>6s}{'accuracy':>10s}{'action':>8s}{'macro-F1':>10s}{'after onset':>13s}",
        ]
        for row in rows:
            onset = row["announcement_decided_after_onset_s"]
            lines.append(
                f"{row['value'] or '(empty)':22.22s}{row['clips']:6d}{row['accuracy']:10.4f}"
                f"{row['action_accuracy']:8.4f}{row['macro_f1']:10.4f}"
                + (f"{onset['median']:13.2f}" if onset.get("count") else f"{'-':>13s}")
            )
    if metrics.get("thresholds"):
        lines += [
            "",
            "decision thresholds (replayed from the same streams; times are medians, seconds)",
            f"{'threshold':>9s}{'accuracy':>10s}{'action':>8s}{'macro-F1':>10s}{'ECE':>8s}{'decided':>9s}"
            f"{'after onset':>13s}",
        ]
        for row in metrics["thresholds"]:
            onset = row["announcement_decided_after_onset_s"]
            lines.append(
                f"{row['threshold']:9.3g}{row['accuracy']:10.4f}{row['action_accuracy']:8.4f}"
                f"{row['macro_f1']:10.4f}{row['ece']:8.4f}"
                f"{row['decided_at_s'].get('median', float('nan')):9.2f}"
                + (f"{onset['median']:13.2f}" if onset.get("count") else f"{'-':>13s}")
            )
    return "\n".join(lines)


def compare(
    items: list[BatchItem], first: list[dict[str, Any]], second: list[dict[str, Any]]
) -> dict[str, Any]:
    """Two runs' records of the same calls, side by side: each run's headline figures and,
    call by call, where one is right and the other is not (by label and by list action)."""
    truth_column = _truth_column(items)
    columns = list(dict.fromkeys(name for item in items for name in item.extra))
    pairs = [
        (a, b)
        for a, b in zip(
            match_records(items, first, columns), match_records(items, second, columns), strict=True
        )
        if a is not None and b is not None and not a.get("error") and not b.get("error")
    ]
    tally = dict.fromkeys(("both", "first_only", "second_only", "neither"), 0)
    action_tally = dict(tally)
    for a, b in pairs:
        truth = a[truth_column]
        for counts, right_a, right_b in (
            (tally, a["label"] == truth, b["label"] == truth),
            (action_tally, _action(a) == LABELS[truth].action, _action(b) == LABELS[truth].action),
        ):
            key = (
                "both"
                if right_a and right_b
                else "first_only"
                if right_a
                else "second_only"
                if right_b
                else "neither"
            )
            counts[key] += 1
    return {
        "calls": len(pairs),
        "first": _headline(score_records(items, [a for a, _ in pairs])),
        "second": _headline(score_records(items, [b for _, b in pairs])),
        "label_right": tally,
        "action_right": action_tally,
    }


def _action(record: dict[str, Any]) -> str:
    """The list action a record carries (a record written before actions: its label's)."""
    return record.get("action") or LABELS[record["label"]].action


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    answered = metrics["announcements_as_answers"]
    return {
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "action_accuracy": metrics["actions"]["accuracy"],
        "reachable_destructive": metrics["actions"]["reachable_destructive"],
        "announcements_as_answers": answered["answers"],
        "announcements": answered["announcements"],
        "ece": metrics["calibration"]["ece"],
        "per_class_f1": {r["label"]: r["f1"] for r in metrics["per_class"]},
    }


def format_comparison(compared: dict[str, Any], first: str, second: str) -> str:
    """``compare``'s figures as a table: one column per run."""
    a, b = compared["first"], compared["second"]
    width = max(len(first), len(second), 12) + 2
    lines = [
        f"{compared['calls']} calls classified by both",
        "",
        f"{'':32s}{first:>{width}s}{second:>{width}s}",
    ]
    for key, title in (
        ("accuracy", "accuracy"),
        ("macro_f1", "macro-F1"),
        ("action_accuracy", "list action right"),
        ("ece", "ECE"),
    ):
        lines.append(f"{title:32s}{a[key]:{width}.4f}{b[key]:{width}.4f}")
    lines.append(
        f"{'announcements as human/voicemail':32s}"
        f"{a['announcements_as_answers']:>{width}d}{b['announcements_as_answers']:>{width}d}"
        + f"  (of {a['announcements']})"
    )
    lines.append(
        f"{'reachable given remove/suppress':32s}{a['reachable_destructive']:>{width}d}{b['reachable_destructive']:>{width}d}"
    )
    lines += ["", "F1 per label"]
    for label in LABEL_IDS:
        if label in a["per_class_f1"] or label in b["per_class_f1"]:
            fa, fb = a["per_class_f1"].get(label), b["per_class_f1"].get(label)
            lines.append(
                f"  {label:30s}"
                + "".join(f"{v:{width}.3f}" if v is not None else f"{'-':>{width}s}" for v in (fa, fb))
            )
    for key, title in (("label_right", "label"), ("action_right", "list action")):
        t = compared[key]
        lines.append(
            f"{title} right: both {t['both']}, only {first} {t['first_only']}, "
            f"only {second} {t['second_only']}, neither {t['neither']}"
        )
    return "\n".join(lines)


def plot(metrics: dict[str, Any], out_dir: Path) -> list[Path]:
    """confusion.png and reliability.png (none when nothing was scored); needs matplotlib."""
    if not metrics["scored"]:
        return []
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
