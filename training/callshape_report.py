"""The call-shaped check's figures, from ``audio-classifier evaluate`` predictions.

    python -m training.callshape_report PLAIN_DIR [--enrolled DIR] [--nonenrolled DIR]

Each DIR is an ``evaluate --out-dir`` of a manifest that ``training.callshape`` wrote
(``manifest.csv``; ``enrolled.csv`` and ``nonenrolled.csv`` classified with a library
made from ``enrol.csv``). Prints, hardest first, the figures the decision model is held to
(docs/design.md, "The decision model"):

- announcements in real voices the model never trained on, then in those it did;
- enrolled prompts under call shapes: right label, decision after the prompt starts;
- false sample matches: clips whose fingerprint evidence names a label other than theirs;
- a SIT followed by an announcement (its label), a SIT alone (the SIT's label);
- reachable calls (ringback, music ringback, voicemail, human) given remove or suppress;
- steady and off-plan tones, noise: ``keep`` at confidence 0.9 or more;
- calibration (ECE) of the final decisions.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from audio_classifier.evaluate import ANSWER_LABELS
from audio_classifier.labels import ANNOUNCEMENT_LABELS, DESTRUCTIVE_ACTIONS, LABELS
from audio_classifier.metrics import calibration

from .real_recordings import CHECK_VOICES, TRAIN_VOICES

CONFIDENT = 0.9
"""A ``keep`` at this confidence or more is one a dialer acts on."""


def load(out_dir: Path) -> list[dict]:
    """The records of an evaluate folder, each with its manifest row's columns."""
    records = []
    with open(out_dir / "predictions.jsonl", encoding="utf-8") as handle:
        for line in handle:
            records.append(json.loads(line))
    return records


def _truth(record: dict) -> str:
    return record["manifest_label"]


def _share(hits: int, total: int) -> str:
    return f"{hits} of {total} ({100.0 * hits / total:.2f} %)" if total else "none"


def _after_onset(records: list[dict]) -> str:
    waits = [r["decided_at_s"] - float(r["onset_s"]) for r in records if r.get("onset_s") not in (None, "")]
    if not waits:
        return "none"
    waits.sort()
    p90 = waits[min(len(waits) - 1, int(0.9 * len(waits)))]
    return f"median {statistics.median(waits):.2f} s, p90 {p90:.2f} s (n={len(waits)})"


def false_matches(records: list[dict]) -> list[dict]:
    """Records whose fingerprint evidence names a label other than the clip's own."""
    return [
        r
        for r in records
        if any(e["channel"] == "fingerprint" and e["label"] != _truth(r) for e in r.get("evidence") or ())
    ]


def real_voices(scored: list[dict]) -> list[str]:
    """Announcements in real voices: those training never heard (``CHECK_VOICES``) first,
    then those the shipped model trains on (``TRAIN_VOICES``)."""
    lines = []
    real = [r for r in scored if r.get("source") == "real" and _truth(r) in ANNOUNCEMENT_LABELS]
    for title, voices in (("held out", CHECK_VOICES), ("trained on", TRAIN_VOICES)):
        part = [r for r in real if r.get("voice") in voices]
        right = sum(r["label"] == _truth(r) for r in part)
        action = sum(r["action"] == LABELS[_truth(r)].action for r in part)
        answered = sum(r["label"] in ANSWER_LABELS for r in part)
        lines.append(
            f"real-voice announcements, voices {title} ({', '.join(voices)}): right label "
            f"{_share(right, len(part))}; list action {_share(action, len(part))}; "
            f"as human or voicemail {_share(answered, len(part))}"
        )
    return lines


def figures(plain: list[dict], enrolled: list[dict] | None, nonenrolled: list[dict] | None) -> list[str]:
    scored = [r for r in plain if not r.get("error")]
    lines = real_voices(scored)
    if enrolled is not None:
        right = [r for r in enrolled if not r.get("error") and r["label"] == _truth(r)]
        lines.append(f"enrolled prompts, call-shaped: right label {_share(len(right), len(enrolled))}")
        lines.append(
            f"  decision after the prompt starts: {_after_onset([r for r in enrolled if not r.get('error')])}"
        )
        for source in sorted({r.get("source", "") for r in enrolled}):
            part = [r for r in enrolled if r.get("source") == source]
            hits = sum(r["label"] == _truth(r) for r in part)
            lines.append(f"  {source or '-'}: {_share(hits, len(part))}")
    if nonenrolled is not None:
        wrong = false_matches(nonenrolled)
        lines.append(
            f"false sample matches, non-enrolled clips (enrolled library): {_share(len(wrong), len(nonenrolled))}"
        )
    wrong = false_matches(scored)
    lines.append(f"false sample matches, plain set (shipped library): {_share(len(wrong), len(scored))}")

    after_sit = [r for r in scored if r.get("group") == "announcement" and r.get("sit", "none") != "none"]
    for source in sorted({r.get("source", "") for r in after_sit}):
        part = [r for r in after_sit if r.get("source") == source]
        hits = sum(r["label"] == _truth(r) for r in part)
        lines.append(f"SIT then an announcement ({source} voices): its label {_share(hits, len(part))}")
    alone = [r for r in scored if r.get("group") == "sit_alone"]
    lines.append(
        f"SIT alone: the SIT's label {_share(sum(r['label'] == _truth(r) for r in alone), len(alone))}"
    )

    reachable = [r for r in scored if LABELS[_truth(r)].action == "keep"]
    destroyed = [r for r in reachable if r["action"] in DESTRUCTIVE_ACTIONS]
    lines.append(f"reachable calls given remove or suppress: {_share(len(destroyed), len(reachable))}")
    for r in destroyed[:10]:
        lines.append(f"  {r['path']}: {_truth(r)} -> {r['label']} {r['confidence']:.2f} {r['action']}")
    # music is what a music ringback is: the negatives are the tones and noise
    negatives = [r for r in scored if r.get("group") == "negative" and LABELS[_truth(r)].action != "keep"]
    kept = [r for r in negatives if r["action"] == "keep" and r["confidence"] >= CONFIDENT]
    lines.append(
        f"steady tones and noise kept at confidence >= {CONFIDENT}: {_share(len(kept), len(negatives))}"
    )
    for r in kept[:10]:
        lines.append(f"  {r['path']}: {r['label']} {r['confidence']:.2f} ({r.get('content', '')})")

    everything = scored + [r for r in (enrolled or []) if not r.get("error")]
    ece = calibration([r["confidence"] for r in everything], [r["label"] == _truth(r) for r in everything])
    lines.append(f"final decisions: ECE {ece['ece']:.4f} (n={len(everything)})")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plain", type=Path, help="evaluate folder of manifest.csv")
    parser.add_argument("--enrolled", type=Path, help="evaluate folder of enrolled.csv")
    parser.add_argument("--nonenrolled", type=Path, help="evaluate folder of nonenrolled.csv")
    args = parser.parse_args(argv)
    plain = load(args.plain)
    enrolled = load(args.enrolled) if args.enrolled else None
    nonenrolled = load(args.nonenrolled) if args.nonenrolled else None
    print("\n".join(figures(plain, enrolled, nonenrolled)))


if __name__ == "__main__":
    main()
