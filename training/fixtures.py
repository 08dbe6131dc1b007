"""Regenerate fixtures/speech/: one recording per speech or music label, made by the recipe.

    python -m training.fixtures [--out fixtures]

Held-out voices and a seed of their own (never in the training or held-out corpus), a
simulated G.711 channel at 10-30 dB SNR, stored as mu-law WAV. Rows are added to
``fixtures/manifest.csv`` (path, label, onset_s); the tone fixtures come from
``training.tone_fixtures``. Not chosen by result: whatever the recipe makes is committed.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_classifier.audio import SAMPLE_RATE

from . import channel
from .corpus import load_prompts, make_clip

SEED = 77_000_000
LABELS = (*load_prompts()["announcements"], "human", "voicemail", "color_ringback")


def update_manifest(out: Path, prefix: str, rows: list[dict]) -> Path:
    """Replace the rows under *prefix* in ``out/manifest.csv`` (path, label, onset_s),
    keeping the other recipes' rows."""
    manifest = out / "manifest.csv"
    kept = []
    if manifest.exists():
        with open(manifest, newline="") as handle:
            kept = [r for r in csv.DictReader(handle) if not r["path"].startswith(prefix)]
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["path", "label", "onset_s"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(
            [{**r, "onset_s": r["onset_s"] if r.get("onset_s") not in (None, "") else 0} for r in kept + rows]
        )
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("fixtures"))
    args = parser.parse_args(argv)
    folder = args.out / "speech"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, label in enumerate(LABELS):
        rng = np.random.default_rng(SEED + i)
        clean, meta = make_clip(label, rng, heldout=True)
        noisy, _ = channel.degrade(
            clean, rng, snr_db=(10.0, 30.0), codecs=("mulaw", "alaw"), eq_db=0.0, filtered_noise=0.0
        )
        path = folder / f"{label}.wav"
        sf.write(path, np.clip(noisy, -1, 1), SAMPLE_RATE, subtype="ULAW")
        rows.append({"path": str(path.relative_to(args.out)), "label": label, "onset_s": meta["onset_s"]})
    manifest = update_manifest(args.out, "speech/", rows)
    print(f"wrote {len(rows)} clips to {folder} and {manifest}")


if __name__ == "__main__":
    main()
