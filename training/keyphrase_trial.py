"""Key-phrase heads over the speech embedding: do they label wordings training never heard?

A trial for the real-voice issue, not part of the product. The model today learns whole
wordings, so a wording it never heard has no class to land in. Here a detector head per
Mandarin lexicon phrase (空号, 停机, 关机, 无法接通, ...) is trained on synthetic clips, over
the pretrained speech embedding (``audio_classifier.embedding``), and a clip's label follows
from the phrases heard by the lexicon's own rule (the highest priority wins), as the speech
channel's does.

Targets come from the corpus rows: each Mandarin sentence's text and span (``texts``,
``speech``); a phrase's place in its sentence is placed in time in proportion to the
characters before it (``align``). A detector input is the last ``CONTEXT`` embeddings
(about 2 s of audio); it is a positive for a phrase that lies inside it and ended within the
last ``RECENT_S``.

    python -m training.keyphrase_trial --train work/trial-big/train.csv \\
        --check work/gcin5-new/manifest.csv --check work/gcin5/manifest.csv \\
        --out work/keyphrase.json --cache work/keyphrase-cache

The report gives, per check manifest, clip accuracy of the phrase rule, the ceiling (the
lexicon's label for the wording's own text: what a perfect phrase detector gives) and
announcements taken for an answer (no phrase heard counts as wrong).
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

from audio_classifier.audio import SAMPLE_RATE
from audio_classifier.embedding import DIMENSION, SpeechEmbedding
from audio_classifier.evaluate import ANSWER_LABELS
from audio_classifier.labels import ANNOUNCEMENT_LABELS
from audio_classifier.lexicon import FILLER, Lexicon, is_chinese

from .recordings import loud_bounds, read_audio

TRIAL_VERSION = 1
CONTEXT = 16
"""Embeddings per detector input (80 ms apart, each over 0.76 s): 2.0 s of audio."""
CONTEXT_S = (CONTEXT - 1) * 0.08 + 0.76
RECENT_S = 0.8
"""A phrase is a positive while it ended this recently (10 inputs per occurrence)."""
SLACK_S = 0.15
"""How far a phrase may reach outside the input (alignment by characters is rough)."""
PAUSE_CHARS = "，。、；：,.;:!！?？"
PAUSE_WEIGHT = 1.5
"""A punctuation mark lasts about this many characters (the pause at a comma)."""
NEGATIVE_SHARE = 0.15
"""Share of inputs with no phrase kept for training."""
MAX_CLIP_S = 14.0
THRESHOLD = 0.5
"""A phrase is heard when its head's probability reaches this in any input of the clip."""


@functools.cache
def phrases() -> tuple[tuple[str, str, int], ...]:
    """(phrase, label, priority) of every Mandarin lexicon entry that names a label."""
    seen: dict[str, tuple[str, str, int]] = {}
    for entry in Lexicon.load(()).entries:
        if entry.label != FILLER and is_chinese(entry.phrase) and entry.phrase not in seen:
            seen[entry.phrase] = (entry.phrase, entry.label, entry.priority)
    return tuple(seen.values())


def align(text: str, start: float, end: float) -> list[tuple[int, float, float]]:
    """(phrase index, start s, end s) of every lexicon phrase in the Mandarin sentence *text*
    spoken from *start* to *end*, placed by the characters before it."""
    weights = [PAUSE_WEIGHT if c in PAUSE_CHARS else (0.0 if c.isspace() else 1.0) for c in text]
    total = sum(weights) or 1.0
    cumulative = np.concatenate([[0.0], np.cumsum(weights)]) / total
    out = []
    for index, (phrase, _, _) in enumerate(phrases()):
        at = text.find(phrase)
        while at >= 0:
            a = start + (end - start) * cumulative[at]
            b = start + (end - start) * cumulative[at + len(phrase)]
            out.append((index, float(a), float(b)))
            at = text.find(phrase, at + 1)
    return out


def spans_of(row: dict) -> list[tuple[int, float, float]]:
    """The phrase spans of a corpus row (its Mandarin sentences)."""
    spans = [
        tuple(float(v) for v in part.split("-")) for part in (row.get("speech") or "").split(";") if part
    ]
    texts = row["texts"].split("|") if row.get("texts") else [row.get("text") or ""] * len(spans)
    out = []
    for (a, b), text in zip(spans, texts, strict=False):
        if is_chinese(text):
            out += align(text, a, b)
    return out


@functools.cache
def _model() -> SpeechEmbedding:
    return SpeechEmbedding()


def _embed(path: str) -> tuple[np.ndarray, np.ndarray]:
    samples, rate = sf.read(path, dtype="float32", always_2d=True)
    if rate != 8000:
        raise ValueError(f"{path}: {rate} Hz, the trial reads 8 kHz clips")
    ends, vectors = _model().whole(samples.mean(axis=1)[: int(MAX_CLIP_S * 8000)])
    return ends.astype(np.float32), vectors.astype(np.float32)


def inputs(vectors: np.ndarray) -> np.ndarray:
    """Detector inputs ``(n, CONTEXT * DIMENSION)``: every run of ``CONTEXT`` embeddings."""
    if len(vectors) < CONTEXT:
        return np.zeros((0, CONTEXT * DIMENSION), dtype=np.float32)
    index = np.arange(len(vectors) - CONTEXT + 1)[:, None] + np.arange(CONTEXT)
    return vectors[index].reshape(len(index), -1)


def targets(ends: np.ndarray, spans: list[tuple[int, float, float]]) -> np.ndarray:
    """``(n, phrases)`` 0/1 of each detector input (ending at ``ends[CONTEXT - 1:]``)."""
    t = ends[CONTEXT - 1 :]
    y = np.zeros((len(t), len(phrases())), dtype=np.uint8)
    for index, a, b in spans:
        inside = (a >= t - CONTEXT_S - SLACK_S) & (b <= t + SLACK_S) & (b >= t - RECENT_S)
        y[inside, index] = 1
    return y


def _train_clip(args: tuple[str, list, int]) -> tuple[np.ndarray, np.ndarray]:
    path, spans, seed = args
    ends, vectors = _embed(path)
    x, y = inputs(vectors), targets(ends, spans)
    keep = y.any(axis=1) | (np.random.default_rng(seed).random(len(y)) < NEGATIVE_SHARE)
    return x[keep].astype(np.float16), y[keep]


def _check_clip(path: str) -> np.ndarray:
    _, vectors = _embed(path)
    return inputs(vectors).astype(np.float16)


def _rows(manifest: Path, check: bool = False, where: str | None = None) -> list[dict]:
    """The manifest's rows (those whose column has the value *where* says, ``COLUMN=VALUE``),
    paths resolved; for a check, only its Mandarin announcements (what the phrase heads are
    for). A row without a ``speech`` span (a recordings manifest) is spoken over its loud
    part."""
    with open(manifest, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if where:
        column, value = where.split("=", 1)
        rows = [r for r in rows if r.get(column) == value]
    if check:
        rows = [r for r in rows if r["label"] in ANNOUNCEMENT_LABELS and is_chinese(r.get("text") or "")]
    for row in rows:
        row["path"] = str((manifest.parent / row["path"]).resolve())
        if not check and "speech" not in row:
            a, b = loud_span(row["path"])
            row["speech"], row["texts"] = f"{a:.3f}-{b:.3f}", row.get("text") or ""
    return rows


def loud_span(path: str) -> tuple[float, float]:
    """Where a clean recording sounds (s): ``recordings.loud_bounds``."""
    bounds = loud_bounds(read_audio(Path(path)))
    return (bounds[0] / SAMPLE_RATE, bounds[1] / SAMPLE_RATE) if bounds else (0.0, 0.0)


def _cache_key(manifest: Path, role: str) -> str:
    digest = hashlib.sha256(manifest.read_bytes())
    digest.update(f"{role}/{TRIAL_VERSION}/{CONTEXT}/{RECENT_S}/{SLACK_S}/{NEGATIVE_SHARE}".encode())
    digest.update(json.dumps(phrases(), ensure_ascii=False).encode())
    return digest.hexdigest()[:16]


def training_set(
    manifest: Path, jobs: int, cache: Path | None, where: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    file = cache / f"train-{_cache_key(manifest, 'train/' + (where or ''))}.npz" if cache else None
    if file and file.is_file():
        data = np.load(file)
        return data["x"], data["y"]
    rows = _rows(manifest, where=where)
    tasks = [(r["path"], spans_of(r), i) for i, r in enumerate(rows)]
    with ProcessPoolExecutor(jobs) as pool:
        parts = list(pool.map(_train_clip, tasks, chunksize=8))
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    if file:
        file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(file, x=x, y=y)
    return x, y


def check_set(manifest: Path, jobs: int, cache: Path | None) -> tuple[list[dict], list[np.ndarray]]:
    rows = _rows(manifest, check=True)
    file = cache / f"check-{_cache_key(manifest, 'check')}.npz" if cache else None
    if file and file.is_file():
        data = np.load(file)
        return rows, [data[f"c{i}"] for i in range(len(rows))]
    with ProcessPoolExecutor(jobs) as pool:
        clips = list(pool.map(_check_clip, [r["path"] for r in rows], chunksize=4))
    if file:
        file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(file, **{f"c{i}": c for i, c in enumerate(clips)})
    return rows, clips


def label_of(heard: dict[int, float]) -> str | None:
    """The lexicon's rule over the phrases heard (index -> probability): the highest
    priority wins, then the most probable."""
    if not heard:
        return None
    best = max(heard, key=lambda i: (phrases()[i][2], heard[i]))
    return phrases()[best][1]


def score(rows: list[dict], clips: list[np.ndarray], predict) -> dict:
    lexicon = Lexicon.load(())
    right = ceiling = answered = silent = 0
    wrong: Counter = Counter()
    for row, x in zip(rows, clips, strict=True):
        probs = predict(x.astype(np.float32)) if len(x) else np.zeros((0, len(phrases())))
        peak = probs.max(axis=0) if len(probs) else np.zeros(len(phrases()))
        heard = {i: float(p) for i, p in enumerate(peak) if p >= THRESHOLD}
        label = label_of(heard)
        right += label == row["label"]
        silent += label is None
        answered += label in ANSWER_LABELS
        if label != row["label"]:
            wrong[f"{row['label']} -> {label}"] += 1
        match = lexicon.match(row.get("text") or "")
        ceiling += bool(match) and match.entry.label == row["label"]
    n = len(rows)
    return {
        "clips": n,
        "accuracy": round(right / n, 4) if n else 0.0,
        "ceiling": round(ceiling / n, 4) if n else 0.0,
        "no_phrase_heard": silent,
        "taken_for_answer": answered,
        "confusions": dict(wrong.most_common(12)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--train",
        required=True,
        action="append",
        metavar="MANIFEST[:COLUMN=VALUE]",
        help="corpus manifest, or recordings manifest (training.real_recordings) with a row filter",
    )
    parser.add_argument("--check", type=Path, required=True, action="append")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=256)
    args = parser.parse_args(argv)
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    started = time.time()
    sets = []
    for spec in args.train:
        manifest, _, where = spec.partition(":")
        if where and "=" not in where:
            parser.error(f"--train {spec}: a filter is COLUMN=VALUE")
        sets.append(training_set(Path(manifest), args.jobs, args.cache, where or None))
    x = np.concatenate([s[0] for s in sets]).astype(np.float32)
    y = np.concatenate([s[1] for s in sets])
    present = np.flatnonzero(y.sum(axis=0) > 0)
    print(
        f"{len(x)} inputs, {int(y.any(axis=1).sum())} with a phrase, {len(present)} phrases taught "
        f"({time.time() - started:.0f} s)",
        flush=True,
    )
    scaler = StandardScaler().fit(x)
    net = MLPClassifier(
        (args.hidden,),
        alpha=1e-3,
        batch_size=256,
        max_iter=40,
        early_stopping=True,
        n_iter_no_change=4,
        random_state=0,
        verbose=False,
    )
    net.fit(scaler.transform(x), y[:, present])
    print(f"trained ({net.n_iter_} epochs, {time.time() - started:.0f} s)", flush=True)

    def predict(matrix: np.ndarray) -> np.ndarray:
        out = np.zeros((len(matrix), len(phrases())), dtype=np.float32)
        out[:, present] = net.predict_proba(scaler.transform(matrix))
        return out

    report = {"phrases": len(phrases()), "taught": len(present), "inputs": len(x), "checks": {}}
    for manifest in args.check:
        rows, clips = check_set(manifest, args.jobs, args.cache)
        report["checks"][str(manifest)] = score(rows, clips, predict)
        print(manifest, json.dumps(report["checks"][str(manifest)], ensure_ascii=False), flush=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
