"""Which acoustic front-end generalises from synthetic voices to real ones?

A trial for the real-voice issue, not part of the product: the same classifier head is
trained on window features of synthetic clips only, under two front-ends, and scored on
windows of real human recordings it never saw:

- ``logmel``: today's window summaries (``audio_classifier.features``, the shipped model's
  feature configuration);
- ``embedding``: the speech-embedding model openWakeWord builds on (Google's
  speech_embedding; ``audio_classifier.embedding``, one 96-value vector per 80 ms); a
  window's vectors pooled by mean, max and spread, or its last ones in order.

Windows are the model's (1.5 s), ending every 0.5 s from ``FIRST_END_S`` after a clip's
onset to ``LAST_END_S``: what the decision hears at the start of an announcement.

    python -m training.frontend_trial --train work/trial/train.csv \\
        --check work/gcin5/manifest.csv --out work/trial-report.json --cache work/trial-cache

Both manifests need ``path``, ``label`` and ``onset_s`` columns. The report gives window
accuracy per front-end, per label, and the share of real announcement windows taken for an
answer (human or voicemail), and each front-end's CPU cost per second of audio.
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import json
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_classifier.embedding import SpeechEmbedding, embedding_end_s
from audio_classifier.evaluate import ANSWER_LABELS
from audio_classifier.features import FeatureConfig, clip_windows
from audio_classifier.labels import LABELS
from audio_classifier.model import ModelCard
from audio_classifier.resources import asset

TRIAL_VERSION = 2
"""Part of a cached feature set's key: bump it when the features computed here change."""
WINDOW_S = 1.5
"""The shipped model's window."""
FIRST_END_S = 1.0
"""First window end after the onset: a window must hold at least this much speech."""
LAST_END_S = 4.0
"""Last window end after the onset: the first seconds are what an early decision hears."""
END_STEP_S = 0.5

SEQUENCE = 9
"""Embeddings of a 1.5 s window kept in order (80 ms apart; each sees 0.76 s)."""
EMBEDDING_SPAN_S = embedding_end_s(0)
"""Audio one embedding describes: a window's embeddings are those wholly inside it."""

SPEECH_LABELS = frozenset(name for name, info in LABELS.items() if info.tier != "progress") - {
    "busy_tone",
    "congestion_tone",
    "sit",
    "fax",
    "silence",
    "unknown",
}
"""Labels a voice says: the front-end question is about them."""


def _rows(manifest: Path, where: str | None) -> list[dict]:
    with open(manifest, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if where:
        key, value = where.split("=", 1)
        rows = [r for r in rows if r.get(key) == value]
    base = manifest.parent
    out = []
    for r in rows:
        if r["label"] in SPEECH_LABELS and r.get("onset_s"):
            out.append({**r, "path": str(base / r["path"])})
    return out


def _ends(duration_s: float, onset_s: float) -> list[float]:
    ends = np.arange(onset_s + FIRST_END_S, onset_s + LAST_END_S + 1e-9, END_STEP_S)
    return [float(e) for e in ends if e <= duration_s and e - WINDOW_S >= 0.0]


_EMBEDDING: SpeechEmbedding | None = None


@functools.cache
def _features_config(card_path: str) -> FeatureConfig:
    """The log-mel features' configuration, read once per worker process."""
    return ModelCard.load(card_path).features


def _features(args: tuple[dict, str]) -> tuple[list[np.ndarray], list[np.ndarray], float, float, float]:
    """(logmel window vectors, embedding window vectors, seconds of audio, CPU s of each)."""
    global _EMBEDDING  # one per worker process: loading the models costs more than a clip
    row, card_path = args
    if _EMBEDDING is None:
        _EMBEDDING = SpeechEmbedding()
    config = _features_config(card_path)
    x, rate = sf.read(row["path"], dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    assert rate == 8000, row["path"]
    ends = _ends(len(x) / rate, float(row["onset_s"]))
    if not ends:
        return [], [], len(x) / rate, 0.0, 0.0
    t0 = time.process_time()
    windows = dict(clip_windows(x, config))
    t1 = time.process_time()
    times, vectors = _EMBEDDING.whole(x)
    t2 = time.process_time()
    logmel, embedding = [], []
    for end in ends:
        nearest = min(windows, key=lambda t: abs(t - end))
        inside = (times <= end + 1e-6) & (times >= end - WINDOW_S + EMBEDDING_SPAN_S - 1e-6)
        part = vectors[inside] if inside.any() else vectors[[np.argmin(np.abs(times - end))]]
        logmel.append(windows[nearest])
        pooled = np.concatenate([part.mean(axis=0), part.max(axis=0), part.std(axis=0)])
        sequence = np.concatenate([part[:1]] * max(0, SEQUENCE - len(part)) + [part[-SEQUENCE:]]).ravel()
        embedding.append(np.concatenate([pooled, sequence]))
    return logmel, embedding, len(x) / rate, t1 - t0, t2 - t1


def featurise(rows: list[dict], jobs: int) -> dict:
    card = str(asset("early_media.json"))
    feats = {"logmel": [], "embedding": [], "label": [], "group": [], "clip": []}
    seconds = cost_logmel = cost_embedding = 0.0
    with ProcessPoolExecutor(jobs) as pool:
        done = pool.map(_features, [(r, card) for r in rows], chunksize=8)
        for i, (row, (lm, em, s, c1, c2)) in enumerate(zip(rows, done, strict=True)):
            feats["logmel"] += lm
            feats["embedding"] += em
            feats["label"] += [row["label"]] * len(lm)
            feats["group"] += [row.get("voice", "")] * len(lm)
            feats["clip"] += [i] * len(lm)
            seconds, cost_logmel, cost_embedding = seconds + s, cost_logmel + c1, cost_embedding + c2
            if (i + 1) % 200 == 0:
                print(f"  {i + 1}/{len(rows)} clips", flush=True)
    feats["cost_ms_per_s"] = {
        "logmel": round(1000 * cost_logmel / max(seconds, 1e-9), 2),
        "embedding": round(1000 * cost_embedding / max(seconds, 1e-9), 2),
    }
    return feats


def trial(train: dict, check: dict) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    report: dict = {
        "train_windows": len(train["label"]),
        "check_windows": len(check["label"]),
        "check_labels": dict(Counter(check["label"])),
        "cost_ms_per_audio_s": check["cost_ms_per_s"],
    }
    y_train = np.array(train["label"])
    y_check = np.array(check["label"])
    from sklearn.neural_network import MLPClassifier

    pooled = 3 * 96
    variants = {
        "logmel/linear": ("logmel", slice(None), "linear"),
        "logmel/mlp": ("logmel", slice(None), "mlp"),
        "embedding-pooled/linear": ("embedding", slice(0, pooled), "linear"),
        "embedding-sequence/mlp": ("embedding", slice(pooled, None), "mlp"),
    }
    for name, (frontend, columns, kind) in variants.items():
        if kind == "linear":
            model = LogisticRegression(C=0.1, max_iter=2000)
        else:
            model = MLPClassifier((256,), alpha=1e-3, max_iter=300, early_stopping=True, random_state=0)
        head = make_pipeline(StandardScaler(), model)
        head.fit(np.stack(train[frontend])[:, columns], y_train)
        log_p = head.predict_log_proba(np.stack(check[frontend])[:, columns])
        classes = head.classes_
        predicted = classes[log_p.argmax(axis=1)]
        # a clip's windows summed, as the model's accumulation does
        clips = np.array(check["clip"])
        clip_right = [
            classes[log_p[clips == c].sum(axis=0).argmax()] == y_check[clips == c][0]
            for c in np.unique(clips)
        ]
        right = predicted == y_check
        announcement = np.array([y not in ANSWER_LABELS for y in y_check])
        as_answer = np.array([p in ANSWER_LABELS for p in predicted])
        answer_right = np.array(
            [(p in ANSWER_LABELS) == (y in ANSWER_LABELS) for p, y in zip(predicted, y_check, strict=True)]
        )
        report[name] = {
            "window_accuracy": round(float(right.mean()), 4),
            "clip_accuracy": round(float(np.mean(clip_right)), 4),
            "answer_vs_announcement_right": round(float(answer_right.mean()), 4),
            "announcements_taken_for_an_answer": round(float(as_answer[announcement].mean()), 4)
            if announcement.any()
            else None,
            "per_label": {
                label: round(float(right[y_check == label].mean()), 4) for label in sorted(set(y_check))
            },
            "per_voice": {
                voice: round(float(right[np.array(check["group"]) == voice].mean()), 4)
                for voice in sorted(set(check["group"]))
            },
        }
    return report


def _cached(cache: Path | None, role: str, manifest: Path, where: str | None, rows: list[dict], args) -> dict:
    """Features of *rows*, from *cache* when it holds those of the same manifest (its bytes),
    filter, feature card and trial (``TRIAL_VERSION``)."""
    if cache is None:
        return featurise(rows, args.jobs)
    digest = hashlib.sha256(manifest.read_bytes() + Path(asset("early_media.json")).read_bytes()).hexdigest()
    key = f"{TRIAL_VERSION}|{digest}|{where}|{len(rows)}"
    path = cache / f"{role}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as stored:
            data = {name: stored[name] for name in stored.files}
        if str(data["key"]) == key:
            return {
                "logmel": list(data["logmel"]),
                "embedding": list(data["embedding"]),
                "label": data["label"].tolist(),
                "group": data["group"].tolist(),
                "clip": data["clip"].tolist(),
                "cost_ms_per_s": json.loads(str(data["cost"])),
            }
    feats = featurise(rows, args.jobs)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        key=key,
        logmel=np.stack(feats["logmel"]),
        embedding=np.stack(feats["embedding"]),
        label=np.array(feats["label"]),
        group=np.array(feats["group"]),
        clip=np.array(feats["clip"]),
        cost=json.dumps(feats["cost_ms_per_s"]),
    )
    return feats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, required=True, help="synthetic clips (manifest)")
    parser.add_argument("--train-where", help="column=value filter of the training rows")
    parser.add_argument("--check", type=Path, required=True, help="real recordings (manifest)")
    parser.add_argument("--check-where", help="column=value filter of the check rows")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="report (JSON)")
    parser.add_argument("--cache", type=Path, help="folder to keep the features in between runs")
    args = parser.parse_args(argv)
    train_rows = _rows(args.train, args.train_where)
    check_rows = _rows(args.check, args.check_where)
    print(f"train: {len(train_rows)} clips; check: {len(check_rows)} clips", flush=True)
    train = _cached(args.cache, "train", args.train, args.train_where, train_rows, args)
    check = _cached(args.cache, "check", args.check, args.check_where, check_rows, args)
    report = trial(train, check)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
