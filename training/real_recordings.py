"""The real human voices the shipped model trains on, as a ``--recordings`` manifest.

    python -m training.real_recordings OUT [--takes 8]
    python -m training.build --recordings OUT/manifest.csv

Training (``split`` train), every one under a licence that allows commercial use:

- ``gcin-5``: Mandarin wordings of ``prompts.json`` (announcements, answers, greetings)
  joined from gcin-voice's ``*/5.ogg`` syllables (``training.gcin_voice``; a female voice
  actor, CC-BY-3.0), ``--takes`` renderings each;
- the Asterisk prompts of ``training.callshape.REAL_PROMPTS`` in ``TRAIN_VOICES``.

Held out (``split`` heldout: the build's before/after check, never trained on):

- the same prompts in ``CHECK_VOICES``, whole voices none of the training voices is;
- ``training/check_wordings_zh.json``: Mandarin wordings no recipe says, in ``gcin-5``.

Not here, ever: asterisk-core-sounds-en/-es and gcin-voice's ``*/3.ogg`` (reserved for
independent evaluation). Writes WAVs and ``OUT/manifest.csv`` (path, label, voice, text,
licence, commercial_use, split, source).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_classifier.audio import SAMPLE_RATE

from . import callshape, gcin_voice

TRAIN_VOICES = ("it_IT_m_Carlo", "ru_RU_f_IvrvoiceRU", "fr")
"""Asterisk voices trained on: CC-BY-3.0 (Carlo Flora; Maxim Topal) and BSD-style (Armelle
Desjardins): licences that allow commercial use with credit."""
CHECK_VOICES = ("es", "fr_CA_f_June", "it_IT_f_Menardi")
"""Asterisk voices held out for the check: GPL-2 and CC-BY-SA-3.0, whose terms for a model
trained on them are unclear; a French and an Italian voice beside the trained ones, and a
language no training voice speaks."""
GCIN_VOICE = "gcin-5"
GCIN_LICENCE = "CC-BY-3.0 (gcin-voice 5.ogg, a female voice actor)"
CHECK_WORDINGS = Path(__file__).with_name("check_wordings_zh.json")
SEED = 5


def _gcin(out: Path, texts: Path | None, takes: int, seed: int, split: str) -> list[dict]:
    """Wordings joined from gcin-5's syllables: the recipe's, or those of *texts*."""
    rng = np.random.default_rng(seed)
    cache: dict[Path, np.ndarray] = {}
    rows = []
    folder = out / ("gcin5-check" if texts else "gcin5")
    folder.mkdir(parents=True, exist_ok=True)
    for n, (label, text) in enumerate(gcin_voice.wordings(["announcements", "human", "voicemail"], texts)):
        for take in range(takes):
            x = gcin_voice.speak(text, rng, cache, [])
            name = folder / f"{label}_{n:03d}_{take}.wav"
            sf.write(name, x, SAMPLE_RATE, subtype="PCM_16")
            rows.append(
                {
                    "path": str(name.relative_to(out)),
                    "label": label,
                    "voice": GCIN_VOICE,
                    "text": text,
                    "licence": GCIN_LICENCE,
                    "commercial_use": "yes",
                    "split": split,
                    "source": "gcin-voice",
                }
            )
    return rows


def _asterisk(out: Path, voices: tuple[str, ...], split: str) -> list[dict]:
    """``REAL_PROMPTS`` in *voices*, as recorded (8 kHz WAV)."""
    rows = []
    for voice, prompt, label in callshape.real_prompts():
        if voice not in voices:
            continue
        folder = out / "asterisk" / voice
        folder.mkdir(parents=True, exist_ok=True)
        name = folder / f"{prompt}.wav"
        sf.write(name, callshape.read_recording(voice, prompt), SAMPLE_RATE, subtype="PCM_16")
        real = callshape.REAL_VOICES[voice]
        rows.append(
            {
                "path": str(name.relative_to(out)),
                "label": label,
                "voice": voice,
                "text": "",
                "licence": f"{real.licence}, Debian {real.package}",
                "commercial_use": "yes" if split == "train" else "",
                "split": split,
                "source": real.package,
            }
        )
    return rows


def write(out: Path, takes: int, check_takes: int) -> list[dict]:
    """Write every recording and ``out/manifest.csv``; return its rows."""
    if set(TRAIN_VOICES) & set(CHECK_VOICES):
        raise ValueError("a voice is both trained on and held out")
    rows = _gcin(out, None, takes, SEED, "train")
    rows += _asterisk(out, TRAIN_VOICES, "train")
    rows += _asterisk(out, CHECK_VOICES, "heldout")
    absent = [v for v in (*TRAIN_VOICES, *CHECK_VOICES) if not any(r["voice"] == v for r in rows)]
    if absent:
        packages = " ".join(callshape.REAL_VOICES[v].package for v in absent)
        raise SystemExit(f"no prompts of {', '.join(absent)}: apt-get install {packages}")
    rows += _gcin(out, CHECK_WORDINGS, check_takes, SEED + 1, "heldout")
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--takes", type=int, default=8, help="renderings of each recipe wording [8]")
    parser.add_argument("--check-takes", type=int, default=2, help="... of each check wording [2]")
    args = parser.parse_args(argv)
    if args.takes < 1 or args.check_takes < 1:
        parser.error("--takes and --check-takes must be at least 1")
    if not gcin_voice.GCIN_OGG.is_dir():
        parser.error(f"{gcin_voice.GCIN_OGG} not found: install Debian's gcin-voice")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = write(args.out, args.takes, args.check_takes)
    train = sum(r["split"] == "train" for r in rows)
    print(f"wrote {len(rows)} recordings ({train} to train on, {len(rows) - train} held out) to {args.out}")


if __name__ == "__main__":
    main()
