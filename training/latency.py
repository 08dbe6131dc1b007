"""How early the words of an announcement settle its label, and how long decisions wait.

    python -m training.latency work/corpus/heldout.csv --predictions work/evaluation/predictions.jsonl

Carriers' prompts share openings ("您拨打的用户…", "The number you dialed…"): no classifier of
the audio can know the label before the words that differ are spoken. For each announcement
clip of a recipe manifest this finds the *uniqueness point* of its first sentence: the end of
the first syllable (Mandarin, as espeak-ng is given it in pinyin) or word (English) at which
the sentence stops sharing its beginning with every wording of another label in
``prompts.json``. Its time is interpolated over the sentence's speech span (English words
weighted by their length), so it is an estimate to about a syllable. With the predictions of
``audio-classifier evaluate``, it reports how long decisions come after that point: the part
of the decision time that a better classifier could win back.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio_classifier.labels import ANNOUNCEMENT_LABELS

from .corpus import load_prompts
from .train import speech_spans
from .tts import to_pinyin

_HAN = re.compile(r"[\u4e00-\u9fff]")
_WORD = re.compile(r"[a-z0-9']+")


def units(text: str) -> tuple[list[str], list[float]]:
    """The spoken units of *text* and their relative durations: pinyin syllables (equal) or
    English words (their letters plus one, for the gap)."""
    if _HAN.search(text):
        syllables = to_pinyin(text).replace(",", " ").split()
        return syllables, [1.0] * len(syllables)
    words = _WORD.findall(text.lower())
    return words, [len(word) + 1.0 for word in words]


def wordings_by_label(prompts: dict) -> dict[str, list[list[str]]]:
    """Every announcement wording of ``prompts.json`` as units, per label."""
    return {
        label: [units(text)[0] for texts in languages.values() for text in texts]
        for label, languages in prompts["announcements"].items()
    }


def uniqueness_share(text: str, label: str, wordings: dict[str, list[list[str]]]) -> float:
    """Share of *text*'s spoken duration after which its label is settled (0..1]: the end of the
    first unit at which no wording of another label begins the same way. 1.0 when the whole
    sentence is the beginning of another label's wording."""
    spoken, durations = units(text)
    others = [w for other, ws in wordings.items() if other != label for w in ws]
    for k in range(1, len(spoken) + 1):
        prefix = spoken[:k]
        if not any(w[:k] == prefix for w in others):
            return sum(durations[:k]) / sum(durations)
    return 1.0


@dataclass(frozen=True)
class ClipTiming:
    path: str
    label: str
    settled_s: float
    """When the words settle the label, in seconds after the announcement starts (onset_s)."""
    decided_s: float | None = None
    """When the classifier decided, in seconds after onset_s (None without predictions)."""
    lead: str = "none"
    """What played before the announcement (the manifest's ``lead``: ringback, silence; none)."""


def clip_timings(
    manifest: Path, prompts: dict, predictions: dict[str, float] | None = None
) -> list[ClipTiming]:
    """Timings of every announcement clip in a recipe *manifest* (its ``texts``, ``speech``
    and ``onset_s`` columns); *predictions* maps a clip's path to its ``decided_at_s``."""
    wordings = wordings_by_label(prompts)
    timings = []
    with open(manifest, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            spans = speech_spans(row)
            if row["label"] not in ANNOUNCEMENT_LABELS or not spans:
                continue
            onset = float(row["onset_s"])
            start, end = spans[0]
            first = row["texts"].split("|")[0]
            settled = start + (end - start) * uniqueness_share(first, row["label"], wordings) - onset
            decided = (predictions or {}).get(row["path"])
            timings.append(
                ClipTiming(
                    row["path"],
                    row["label"],
                    settled,
                    None if decided is None else decided - onset,
                    row.get("lead") or "none",
                )
            )
    return timings


def read_predictions(path: Path) -> dict[str, float]:
    """``decided_at_s`` per path from an ``audio-classifier evaluate`` predictions.jsonl."""
    decided = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("decided_at_s") is not None:
                decided[record["path"]] = float(record["decided_at_s"])
    return decided


def report(timings: list[ClipTiming], target_s: float) -> str:
    """Per label, overall and per lead-in: median time the words settle the label, and with
    predictions the median decision and the median wait after the words."""
    groups: dict[str, list[ClipTiming]] = defaultdict(list)
    for timing in timings:
        groups[timing.label].append(timing)
    with_decisions = any(t.decided_s is not None for t in timings)
    header = f"{'label':22s} {'clips':>5s} {'words settle':>12s}"
    if with_decisions:
        header += f" {'decided':>8s} {'wait':>6s}"
    lines = ["medians in seconds after the announcement starts", header]

    def line(name: str, items: list[ClipTiming]) -> str:
        text = f"{name:22s} {len(items):5d} {np.median([t.settled_s for t in items]):12.2f}"
        decided = [t for t in items if t.decided_s is not None]
        if with_decisions and decided:
            text += f" {np.median([t.decided_s for t in decided]):8.2f}"
            text += f" {np.median([t.decided_s - t.settled_s for t in decided]):6.2f}"
        return text

    for label in ANNOUNCEMENT_LABELS:
        if groups.get(label):
            lines.append(line(label, groups[label]))
    lines.append(line("all announcements", timings))
    leads: dict[str, list[ClipTiming]] = defaultdict(list)
    for timing in timings:
        leads[timing.lead].append(timing)
    if len(leads) > 1:
        lines += [line(f"lead-in: {lead}", items) for lead, items in sorted(leads.items())]
    settled = np.array([t.settled_s for t in timings])
    lines.append(
        f"words settle the label by {target_s:g} s in {np.mean(settled <= target_s):.1%} of the clips"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path, help="a recipe manifest (work/corpus/heldout.csv)")
    parser.add_argument("--predictions", type=Path, help="predictions.jsonl of audio-classifier evaluate")
    parser.add_argument("--prompts", type=Path, help="prompts.json [default: the recipe's]")
    parser.add_argument("--target", type=float, default=2.5, help="seconds to report the share at [2.5]")
    args = parser.parse_args(argv)
    prompts = load_prompts(args.prompts) if args.prompts else load_prompts()
    predictions = read_predictions(args.predictions) if args.predictions else None
    timings = clip_timings(args.manifest, prompts, predictions)
    if not timings:
        sys.exit(f"{args.manifest}: no announcement clip with speech spans and texts")
    print(report(timings, args.target))


if __name__ == "__main__":
    main()
