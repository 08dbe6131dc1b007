"""Regenerate fixtures/tones/: short telephony recordings of every tone class.

    python -m training.tone_fixtures [--out fixtures]

Deterministic (seeded). Each clip goes through what a real capture goes through: a cut first
burst, drifted frequency and cadence, line noise and a G.711 trunk; clips are stored in the
formats captures come in (mu-law and A-law WAV, FLAC, headerless mu-law) so the README's
first command exercises the decoders too. ``fixtures/manifest.csv`` lists path and label.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_classifier import g711, synth
from audio_classifier.audio import SAMPLE_RATE
from audio_classifier.synth import spec

from .fixtures import update_manifest

SEED = 20261128


def _clips(rng: np.random.Generator) -> list[tuple[str, str, np.ndarray]]:
    def drift() -> dict:
        return {
            "freq_scale": 1 + rng.uniform(-0.012, 0.012),
            "cadence_scale": 1 + rng.uniform(-0.1, 0.1),
            "start_offset_s": rng.uniform(0.0, 0.3),
            "amplitude": rng.uniform(0.1, 0.4),
        }

    def tones(plan: str, name: str, seconds: float) -> np.ndarray:
        return synth.cadenced(spec(plan, name), seconds, **drift())

    quiet = synth.silence
    return [
        ("cn_busy", "busy_tone", tones("CN", "busy", 4.0)),
        ("cn_congestion", "congestion_tone", tones("CN", "congestion", 5.0)),
        ("cn_ringback", "ringback", tones("CN", "ringback", 8.0)),
        ("nanp_busy", "busy_tone", tones("NANP", "busy", 4.0)),
        ("nanp_reorder", "congestion_tone", tones("NANP", "reorder", 3.0)),
        ("nanp_ringback", "ringback", tones("NANP", "ringback", 9.0)),
        ("itu_busy", "busy_tone", tones("ITU", "busy", 4.0)),
        ("itu_congestion", "congestion_tone", tones("ITU", "congestion", 3.0)),
        ("uk_ringback", "ringback", tones("UK", "ringback", 7.0)),
        ("uk_busy", "busy_tone", tones("UK", "busy", 4.0)),
        ("sit_vc", "vacant", np.concatenate([quiet(0.4), synth.sit("vc"), quiet(1.5)])),
        ("sit_nc", "network_busy", np.concatenate([quiet(0.3), synth.sit("nc"), quiet(1.5)])),
        ("sit_ro", "wrong_number_format", np.concatenate([quiet(0.2), synth.sit("ro"), quiet(1.5)])),
        ("sit_ic", "sit", np.concatenate([quiet(0.5), synth.sit("ic"), quiet(1.5)])),
        ("fax_cng", "fax", synth.fax_cng(5.0, start_offset_s=0.2)),
        ("fax_ced", "fax", np.concatenate([quiet(0.3), synth.fax_ced(3.0, am=True)])),
        ("silence", "silence", quiet(4.0)),
    ]


def _write(path: Path, samples: np.ndarray, fmt: str) -> None:
    if fmt == "ul":
        path.write_bytes(g711.encode(samples, "mulaw").tobytes())
    elif fmt == "flac":
        sf.write(path, samples, SAMPLE_RATE, subtype="PCM_16")
    else:
        sf.write(path, samples, SAMPLE_RATE, subtype="ULAW" if fmt == "wav-ulaw" else "ALAW")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("fixtures"))
    args = parser.parse_args(argv)
    rng = np.random.default_rng(SEED)
    folder = args.out / "tones"
    folder.mkdir(parents=True, exist_ok=True)
    formats = ["wav-ulaw", "wav-alaw", "flac", "ul"]
    rows = []
    for i, (name, label, clean) in enumerate(_clips(rng)):
        noisy = synth.add_noise(
            clean, rng.uniform(18, 30), rng, reference=max(float(np.mean(clean**2)), 1e-6)
        )
        if label == "silence":
            noisy = (clean + 3e-4 * rng.standard_normal(len(clean))).astype(np.float32)
        fmt = formats[i % len(formats)]
        ext = {"wav-ulaw": ".wav", "wav-alaw": ".wav", "flac": ".flac", "ul": ".ul"}[fmt]
        path = folder / f"{name}{ext}"
        _write(path, np.clip(noisy, -1, 1), fmt)
        rows.append({"path": str(path.relative_to(args.out)), "label": label})
    manifest = update_manifest(args.out, "tones/", rows)
    print(f"wrote {len(rows)} clips to {folder} and {manifest}")


if __name__ == "__main__":
    main()
