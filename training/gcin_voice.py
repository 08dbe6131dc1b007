"""Mandarin wordings in a real human voice, joined from recorded syllables.

Debian's ``gcin-voice`` holds one recording per Mandarin syllable and tone, in two voices:
``*/5.ogg`` (a female voice actor, CC-BY-3.0: this recipe's) and ``*/3.ogg`` (reserved for
independent evaluation: never read here). Joining a wording's syllables, with short
pauses at its punctuation, gives it in a real voice: choppy prosody, but a real vocal tract
and recording chain, which no synthesiser the corpus uses has.

    python -m training.gcin_voice OUT [--takes 3] [--labels announcements,human,voicemail]

Writes 8 kHz WAVs and ``manifest.csv`` (path, label, text, take, onset_s, duration_s,
voice, source, missing: syllables left out, or said in another tone as ``X->folder``), each clip with 0.5 s of silence before the voice (``onset_s``); wordings
are ``training/prompts.json``'s Mandarin ones, or ``--texts FILE`` (JSON, label -> list).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_classifier.resample import resample

GCIN_OGG = Path("/usr/share/gcin/ogg")
VOICE_FILE = "5.ogg"
"""The CC-BY-3.0 voice; ``3.ogg`` is reserved for independent evaluation."""
PROMPTS = Path(__file__).with_name("prompts.json")
LEAD_S = 0.5
"""Silence before the voice."""
SYLLABLE_GAP_S = (0.0, 0.06)
"""Pause between syllables (random per take)."""
COMMA_PAUSE_S = 0.3
TRIM_DB = -40.0
"""Each syllable recording is trimmed to where it is within this of its peak."""
SPEED_RANGE = (0.9, 1.1)
"""Per-take resampling factor (speed and pitch together)."""
TONE_MARKS = {"ˊ": "2", "ˇ": "3", "ˋ": "4", "˙": "1"}
"""gcin's folder suffix per bopomofo tone mark: none for tone 1, ``1`` for the neutral tone."""


def syllable_path(bopomofo: str, root: Path = GCIN_OGG) -> Path | None:
    """The recording of one syllable (pypinyin's bopomofo with its tone mark), or the same
    syllable in another tone when that one was not recorded (``speak`` notes it)."""
    folder = _folder(bopomofo)
    bare = bopomofo.translate({ord(mark): None for mark in TONE_MARKS})
    for candidate in (folder, bare, *(bare + t for t in "1234")):
        path = root / candidate / VOICE_FILE
        if path.is_file():
            return path
    return None


def _folder(bopomofo: str) -> str:
    """gcin's folder name of a syllable with its tone mark."""
    for mark, number in TONE_MARKS.items():
        if mark in bopomofo:
            return bopomofo.replace(mark, "") + number
    return bopomofo


def _load(path: Path, cache: dict[Path, np.ndarray]) -> np.ndarray:
    if path not in cache:
        x, rate = sf.read(path, dtype="float32", always_2d=True)
        x = resample(x.mean(axis=1), rate, 8000)
        level = np.abs(x)
        loud = np.flatnonzero(level >= level.max() * 10 ** (TRIM_DB / 20))
        cache[path] = x[loud[0] : loud[-1] + 1] if len(loud) else x
    return cache[path]


def speak(
    text: str, rng: np.random.Generator, cache: dict[Path, np.ndarray], missing: list[str]
) -> np.ndarray:
    """*text* (Chinese characters) joined from syllable recordings at 8 kHz; syllables this
    voice has no recording of are left out and appended to *missing*."""
    from pypinyin import Style, lazy_pinyin

    pieces: list[np.ndarray] = []
    gap = rng.uniform(*SYLLABLE_GAP_S)
    for token in lazy_pinyin(text, style=Style.BOPOMOFO, errors=lambda s: list(s)):
        if re.fullmatch(r"[，。？！,.?!、；;：:]+", token):
            pieces.append(np.zeros(int(COMMA_PAUSE_S * 8000), dtype=np.float32))
            continue
        path = syllable_path(token)
        if path is None:  # 42 of 1,200 syllables exist only in the reserved voice
            missing.append(token)
            continue
        if path.parent.name != _folder(token):
            missing.append(f"{token}->{path.parent.name}")  # said in another tone
        pieces += [_load(path, cache), np.zeros(int(gap * 8000), dtype=np.float32)]
    if not any(len(piece) and piece.any() for piece in pieces):
        raise ValueError(f"no syllable of {text!r} was recorded in this voice")
    x = np.concatenate(pieces)
    speed = rng.uniform(*SPEED_RANGE)
    x = resample(x, round(8000 * speed), 8000)
    x = x / (np.abs(x).max() + 1e-9) * rng.uniform(0.3, 0.7)
    return np.concatenate([np.zeros(int(LEAD_S * 8000)), x]).astype(np.float32)


def wordings(labels: list[str], texts: Path | None) -> list[tuple[str, str]]:
    if texts is not None:
        data = json.loads(texts.read_text(encoding="utf-8"))
        return [(label, t) for label, items in data.items() if not label.startswith("_") for t in items]
    prompts = json.loads(PROMPTS.read_text(encoding="utf-8"))
    out = []
    for group in labels:
        if group == "announcements":
            out += [
                (label, t) for label, langs in prompts["announcements"].items() for t in langs.get("zh", [])
            ]
        else:
            out += [(group, t) for t in prompts[group].get("zh", [])]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--takes", type=int, default=3)
    parser.add_argument("--labels", default="announcements,human,voicemail")
    parser.add_argument("--texts", type=Path, help="JSON: label -> list of Mandarin wordings")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    if not GCIN_OGG.is_dir():
        parser.error(f"{GCIN_OGG} not found: install Debian's gcin-voice")
    rng = np.random.default_rng(args.seed)
    cache: dict[Path, np.ndarray] = {}
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n, (label, text) in enumerate(wordings(args.labels.split(","), args.texts)):
        for take in range(args.takes):
            missing: list[str] = []
            x = speak(text, rng, cache, missing)
            name = f"{label}_{n:03d}_{take}.wav"
            sf.write(args.out / name, x, 8000, subtype="PCM_16")
            rows.append(
                {
                    "path": name,
                    "label": label,
                    "text": text,
                    "take": take,
                    "onset_s": LEAD_S,
                    "duration_s": round(len(x) / 8000, 3),
                    "voice": "gcin-5",
                    "source": "real",
                    "missing": " ".join(missing),
                }
            )
    with open(args.out / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} clips to {args.out}")


if __name__ == "__main__":
    main()
