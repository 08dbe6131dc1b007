"""Fit the confidence map (``audio_classifier/calibration.py``) on final decisions.

Reads ``predictions.jsonl`` files written by ``audio-classifier evaluate`` (their ``score``,
or ``confidence`` in records written before scores, and whether ``label`` matches
``manifest_label``), fits Platt scaling of the scores, prints the expected calibration
error before and after on each input, and writes the map::

    python -m training.calibrate_decisions work/fit-plain/predictions.jsonl \\
        work/fit-enrolled/predictions.jsonl --fitted-on "call-shaped draw 1, tones + model" \\
        --out models/early_media.confidence.json

Fit on one draw of the call-shaped check set (``training.callshape --draw 1``) and check on
another: a map fitted and checked on the same decisions proves nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from audio_classifier.calibration import ConfidenceMap
from audio_classifier.metrics import calibration


def read_decisions(path: Path) -> tuple[list[float], list[bool]]:
    """(scores, right) of the scored records of one predictions file."""
    scores: list[float] = []
    right: list[bool] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            try:
                record = json.loads(line)
            except ValueError as error:
                raise ValueError(f"{path}:{number}: not a JSON record ({error})") from None
            if record.get("error"):
                continue
            missing = [key for key in ("label", "manifest_label") if not isinstance(record.get(key), str)]
            if missing:
                raise ValueError(
                    f"{path}:{number}: no {' or '.join(missing)} (not an 'evaluate' predictions file)"
                )
            score = record.get("score", record.get("confidence"))
            if isinstance(score, bool) or not isinstance(score, int | float) or not 0.0 <= score <= 1.0:
                raise ValueError(f"{path}:{number}: score must be a number within 0..1, got {score!r}")
            scores.append(float(score))
            right.append(record["label"] == record["manifest_label"])
    return scores, right


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("predictions", type=Path, nargs="+", help="predictions.jsonl files to fit on")
    parser.add_argument("--out", type=Path, required=True, help="the map file to write (JSON)")
    parser.add_argument("--fitted-on", default="", help="what the decisions are (recorded in the map)")
    parser.add_argument(
        "--check", type=Path, nargs="*", default=[], help="predictions.jsonl files to check on"
    )
    args = parser.parse_args(argv)
    try:
        fit = [read_decisions(path) for path in args.predictions]
        scores = [s for file_scores, _ in fit for s in file_scores]
        right = [r for _, file_right in fit for r in file_right]
        mapping = ConfidenceMap.fit(scores, right, fitted_on=args.fitted_on)
        checks = [(path, *read_decisions(path)) for path in args.check]
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    print(f"slope {mapping.slope:.4f}  intercept {mapping.intercept:.4f}  ({len(scores)} decisions)")
    for name, file_scores, file_right in [("fit", scores, right), *((str(p), s, r) for p, s, r in checks)]:
        before = calibration(file_scores, file_right)["ece"]
        after = calibration([mapping(s) for s in file_scores], file_right)["ece"]
        print(f"{name}: {len(file_scores)} decisions, ECE {before:.4f} -> {after:.4f}")
    mapping.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
