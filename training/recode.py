"""Re-encode a manifest's clips through a channel the recipe does not simulate.

    python -m training.recode MANIFEST OUT [--mode 7]      # AMR-NB at one of its modes
    python -m training.recode MANIFEST OUT --lowpass        # a 3.7 kHz low-pass
    audio-classifier evaluate OUT/heldout.csv --no-samples --no-asr

The recipe's channel has G.711 and GSM 06.10; mobile networks carry calls as AMR-NB, and
an announcement that reaches a dialer's trunk as G.711 has often been through AMR-NB on
the way (tandem coding). This takes any manifest (the held-out split, ``training.fresh``
clips, real recordings) and writes the same clips after an AMR-NB round trip through sox,
at one of its eight modes (0: 4.75 kbit/s ... 7: 12.2 kbit/s, the usual one), with the
same manifest rows: a robustness check, not a build step. Needs sox with AMR-NB
(``libsox-fmt-all`` on Debian).

``--lowpass`` instead sends each clip through the classifier's own resampler to 16 kHz and
back: a low-pass whose edge is at 3.7 kHz (-6 dB), about 15 dB down at 3.7-3.85 kHz
and 20 dB at 3.85-4 kHz, noise included, as on a line whose noise went through a codec's
filter. The recipe band-passes half its training clips' noise
(``channel.FILTERED_NOISE_SHARE``); the held-out split's noise is never filtered, so this
measures what that half taught.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_classifier.audio import SAMPLE_RATE
from audio_classifier.resample import resample

from .parallel import map_in_order

AMR_MODES_KBPS = (4.75, 5.15, 5.9, 6.7, 7.4, 7.95, 10.2, 12.2)
"""AMR-NB's bit rates by mode (sox's ``-C`` compression index)."""


def has_amr_nb() -> bool:
    """Whether this sox writes AMR-NB (it needs the opencore library at run time)."""
    if shutil.which("sox") is None:
        return False
    listing = subprocess.run(["sox", "-h"], capture_output=True, text=True).stdout
    return "amr-nb" in listing.split("AUDIO FILE FORMATS:")[-1].split("\n")[0]


def amr_round_trip(source: Path, target: Path, mode: int) -> None:
    """*source* (any format sox reads) -> AMR-NB at *mode* -> 16-bit WAV at 8 kHz in *target*."""
    with tempfile.TemporaryDirectory() as tmp:
        coded = Path(tmp) / "clip.amr-nb"
        for cmd in (
            ["sox", "-R", "-D", str(source), "-r", str(SAMPLE_RATE), "-c", "1", "-C", str(mode), str(coded)],
            ["sox", "-R", "-D", str(coded), "-r", str(SAMPLE_RATE), "-b", "16", str(target)],
        ):
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"{source}: sox failed: {done.stderr.strip()}")


LOWPASS_VIA_HZ = 16000
"""``--lowpass`` resamples 8 kHz audio to this rate and back: the resampler's anti-alias
filter (``resample.ROLLOFF`` of 4 kHz) is the low-pass."""


def lowpass_round_trip(source: Path, target: Path) -> None:
    """*source* (any format soundfile reads) -> 8 kHz -> LOWPASS_VIA_HZ -> 8 kHz 16-bit WAV."""
    try:
        samples, rate = sf.read(str(source), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise RuntimeError(f"{source}: cannot read: {error}") from None
    x = samples.mean(axis=1)
    for a, b in ((rate, SAMPLE_RATE), (SAMPLE_RATE, LOWPASS_VIA_HZ), (LOWPASS_VIA_HZ, SAMPLE_RATE)):
        x = resample(x, a, b)
    sf.write(str(target), np.clip(x, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")


def _job(task: tuple[str, str, int | None]) -> str | None:
    source, target, mode = task
    try:
        if mode is None:
            lowpass_round_trip(Path(source), Path(target))
        else:
            amr_round_trip(Path(source), Path(target), mode)
    except RuntimeError as error:
        return str(error)
    return None


def recode(
    manifest: Path, out: Path, mode: int | None, jobs: int, progress: bool = True
) -> tuple[int, list[str]]:
    """Write every clip of *manifest* (CSV with a ``path`` column, relative to it) under *out*
    at the same relative path, and the manifest as ``out / manifest.name``: through AMR-NB
    at *mode*, or through the low-pass when *mode* is None. Returns the number of clips
    written and the errors (a clip that fails is left out of the new manifest)."""
    if mode is not None:
        if not 0 <= mode < len(AMR_MODES_KBPS):
            raise ValueError(f"AMR-NB mode must be 0-{len(AMR_MODES_KBPS) - 1} (got {mode})")
        if not has_amr_nb():
            raise RuntimeError("this sox cannot write AMR-NB (on Debian: apt-get install libsox-fmt-all)")
    with open(manifest, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows, columns = list(reader), reader.fieldnames or []
    if "path" not in columns:
        raise ValueError(f"{manifest}: no 'path' column")
    if out.resolve() == manifest.parent.resolve():
        raise ValueError("OUT must not be the manifest's own folder (the clips would be overwritten)")
    for row in rows:  # every row checked before anything is written
        relative = Path(row["path"])
        if relative.is_absolute() or ".." in relative.parts:
            raise ValueError(f"{manifest}: {row['path']!r} is not inside the manifest's folder")
    out.mkdir(parents=True, exist_ok=True)
    tasks = []
    for row in rows:
        target = out / row["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        tasks.append((str(manifest.parent / row["path"]), str(target), mode))
    desc = "low-pass" if mode is None else "AMR-NB"
    errors = map_in_order(_job, tasks, jobs, desc=desc, unit="clip", chunksize=8, progress=progress)
    kept = [row for row, error in zip(rows, errors, strict=True) if error is None]
    with open(out / manifest.name, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(kept)
    return len(kept), [error for error in errors if error]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path, help="CSV with path (relative to it) and label columns")
    parser.add_argument("out", type=Path, help="folder for the re-encoded clips and manifest")
    parser.add_argument("--mode", type=int, default=7, help="AMR-NB mode 0-7 (4.75-12.2 kbit/s; default 7)")
    parser.add_argument(
        "--lowpass", action="store_true", help="a 3.7 kHz low-pass instead of AMR-NB (no sox needed)"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        mode = None if args.lowpass else args.mode
        written, errors = recode(args.manifest, args.out, mode, args.jobs, progress=not args.no_progress)
    except (ValueError, RuntimeError, OSError) as error:
        parser.error(str(error))
    for error in errors:
        print(f"skipped: {error}")
    how = "low-passed" if args.lowpass else f"at {AMR_MODES_KBPS[args.mode]} kbit/s"
    print(
        f"{written} clips {how} in {args.out / args.manifest.name}"
        + (f" ({len(errors)} failed)" if errors else "")
    )


if __name__ == "__main__":
    main()
