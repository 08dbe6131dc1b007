"""Fresh held-out clips: more of the recipe's held-out split, at indices the split does not use.

    python -m training.fresh OUT [--first 680] [--per-label 80] [--lead music]

The build's held-out split (indices 0..119 per label) has been looked at while the recipe
was tuned, so its figures flatter. These clips come from the same held-out voices, seeds
and channel, but nobody has seen them: judge a change on them once, then draw others.
Writes ``OUT/heldout/*.wav`` and ``OUT/heldout.csv`` (path, label, ... as the corpus
manifest); evaluate with ``audio-classifier evaluate OUT/heldout.csv --no-samples --no-asr``.

``--lead KIND`` draws only the labels with a lead-in (announcements, answers, greetings), all
after that lead-in: ``--lead music`` is the check set for calls that ring with a music
ringback (彩铃), which the held-out split does not have.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

from . import corpus, tts
from .parallel import map_in_order

DEFAULT_FIRST = 680
"""The build holds out indices 0..119. Drawn and looked at since: 120..199 (2026-11-28),
200..279 and 280..359 (2026-11-29), 360..439 and, after music (``--lead music``), 400..549
and 600..679 (2026-12-01; the figures in training/README.md and docs/history.md name them).
A new judgement starts here."""


def draw(
    out: Path,
    first: int,
    per_label: int,
    jobs: int,
    progress: bool = True,
    labels: tuple[str, ...] | None = None,
    lead: str | None = None,
) -> list[dict]:
    """Synthesise held-out clips ``first .. first + per_label - 1`` of every label (of
    *labels*; by default every label, or those with a lead-in when *lead* forces one) into
    *out*."""
    if first < 0 or per_label < 1:
        raise ValueError(f"first must be >= 0 and per_label >= 1 (got {first} and {per_label})")
    if lead is not None and lead not in corpus.LEADS:
        raise ValueError(f"unknown lead-in {lead!r} (one of {', '.join(corpus.LEADS)})")
    if labels is None:
        labels = corpus.lead_labels() if lead else corpus.MODEL_LABELS
    tts.check_espeak()
    (out / "heldout").mkdir(parents=True, exist_ok=True)
    tasks = [
        (label, i, True, str(out), None, lead) for label in labels for i in range(first, first + per_label)
    ]
    rows = map_in_order(
        corpus.make_row, tasks, jobs, desc="fresh held-out", unit="clip", chunksize=8, progress=progress
    )
    with open(out / "heldout.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(dict.fromkeys(key for row in rows for key in row)))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--first", type=int, default=DEFAULT_FIRST, help="first held-out index per label")
    parser.add_argument("--per-label", type=int, default=80)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--lead", choices=corpus.LEADS, help="every clip after this lead-in (only labels that have one)"
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        rows = draw(
            args.out, args.first, args.per_label, args.jobs, progress=not args.no_progress, lead=args.lead
        )
    except ValueError as error:
        parser.error(str(error))
    print(f"{len(rows)} clips in {args.out / 'heldout.csv'}")


if __name__ == "__main__":
    main()
