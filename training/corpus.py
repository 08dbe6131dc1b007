"""Synthesise the labelled corpus: one clip per (label, index), deterministic from a seed.

    python -m training.corpus --out corpus --per-label 100 --heldout-per-label 24

Each clip has a call shape (nothing, silence, ringback or music ringback before an
announcement, answer or greeting; random start offsets; truncation), goes through a simulated telephone channel (``channel.py``) and is
written as 8 kHz 16-bit WAV with a manifest row: path, label, onset_s (where the
announcement, answer or greeting starts; 0 for tones), split, voice and channel facts.
The held-out split uses voice variants and seeds that training never sees.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_classifier import synth
from audio_classifier.audio import SAMPLE_RATE
from audio_classifier.labels import LABEL_IDS
from audio_classifier.tone_plans import TONE_SPECS

from . import channel, music, tts
from .parallel import map_in_order

PROMPTS_PATH = Path(__file__).with_name("prompts.json")
SEED = 1234
HELDOUT_SEED_OFFSET = 10_000_000
MODEL_LABELS = tuple(label for label in LABEL_IDS if label != "unknown")
"""Every label except ``unknown`` has clips (unknown is what nothing recognises)."""
MAX_CLIP_S = 14.0
BABBLE_BEDS = 8
"""Babble-noise beds per split; a clip's seed picks one. A single bed let the model learn
that one mixture as "noise" and hear any other babble as speech to classify."""
BABBLE_TALKERS = 6
LEADS = ("none", "silence", "ringback", "music")
"""What can play before an announcement, answer or greeting (the manifest's ``lead``)."""
LEAD_LABELS = ("human", "voicemail")
"""Labels with a lead-in besides the announcements (``lead_labels()``)."""
MUSIC_LEAD_SHARE = 0.2
"""Share of the *training* announcements, answers and greetings that follow music ringback
(彩铃) instead of nothing, silence or ringback. Most Chinese mobile subscribers have a music
ringback, so "喂？" after music is the commonest answered call, and an announcement after it
(no answer, powered off) is common too. Without such clips (every model until 2026-12-01),
the shipped model labelled 23 % of held-out answers after music "color_ringback" or an
announcement, against 7 % after the split's lead-ins. The held-out split keeps its lead-ins
(its figures compare across builds); ``training.fresh --lead music`` draws the check set."""
SIT_CODES_FOR = {
    "vacant": (None, "vc", "ic"),
    "network_busy": (None, "nc"),
    "wrong_number_format": (None, "ro"),
}
"""SIT codes a switch plays before each prompt (telephony.md §2); None is the plain E.180 SIT."""


@cache
def load_prompts(path: Path = PROMPTS_PATH) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _specs(label: str) -> list:
    return [s for s in TONE_SPECS if s.label == label and s.cadence is not None]


def _ringback(seconds: float, rng: np.random.Generator) -> np.ndarray:
    specs = _specs("ringback")
    spec = specs[rng.integers(len(specs))]
    return synth.cadenced(
        spec,
        seconds,
        freq_scale=1 + rng.uniform(-0.012, 0.012),
        cadence_scale=1 + rng.uniform(-0.12, 0.12),
        start_offset_s=rng.uniform(0, 3),
        amplitude=rng.uniform(0.05, 0.3),
    )


def _lead(
    rng: np.random.Generator, music_share: float = 0.0, kind: str | None = None
) -> tuple[np.ndarray, str]:
    """What plays before the announcement: nothing, silence, ringback or music ringback.

    Music takes *music_share* of the clips (drawn first, only when the share is not 0, so
    clips without it are unchanged); the rest are none / silence / ringback at 0.25 / 0.35 /
    0.4. *kind* forces one of ``LEADS`` (check sets)."""
    if kind is None and music_share and rng.random() < music_share:
        kind = "music"
    if kind is None:
        r = rng.random()
        kind = "none" if r < 0.25 else "silence" if r < 0.6 else "ringback"
    if kind == "none":
        return np.zeros(0, dtype=np.float32), kind
    if kind == "silence":
        return synth.silence(rng.uniform(0.2, 2.0)), kind
    if kind == "ringback":
        return _ringback(rng.uniform(1.0, 6.0), rng), kind
    if kind == "music":
        return _music_ringback(1.0, 6.0, rng), kind
    raise ValueError(f"unknown lead-in {kind!r} (one of {', '.join(LEADS)})")


def _music_ringback(low_s: float, high_s: float, rng: np.random.Generator) -> np.ndarray:
    """Music ringback (彩铃) of *low_s* to *high_s* seconds at a random level."""
    return (music.music(rng.uniform(low_s, high_s), rng) * rng.uniform(0.3, 1.0)).astype(np.float32)


def _pause(rng: np.random.Generator, low: float = 0.3, high: float = 0.9) -> np.ndarray:
    return synth.silence(rng.uniform(low, high))


Part = tuple[np.ndarray, str]
"""A piece of a clip and what it is: "speech", "tone" or "pause"."""


def _mandarin(
    text: str, voice: tts.Voice, rng: np.random.Generator, heldout: bool, recorded: tts.Recordings | None
) -> tuple[np.ndarray, str]:
    """*text* in Mandarin, and who said it: a training clip takes a share of its Mandarin
    from *recorded* (which draws from *rng* only then, so builds without it are unchanged)."""
    if recorded is not None and not heldout and text in recorded and rng.random() < tts.RECORDED_SHARE:
        return recorded.speak(text, rng)
    return tts.speak(text, voice), voice.describe()


def _announcement(
    label: str, rng: np.random.Generator, heldout: bool, recorded: tts.Recordings | None = None
) -> tuple[list[Part], dict]:
    prompts = load_prompts()
    wordings = prompts["announcements"][label]
    zh_voice = tts.pick_voice("zh", rng, heldout)
    en_voice = tts.pick_voice("en", rng, heldout)
    zh_text = wordings["zh"][rng.integers(len(wordings["zh"]))]
    en_text = wordings["en"][rng.integers(len(wordings["en"]))]
    meta = {
        "voice": f"{zh_voice.describe()};{en_voice.describe()}",
        "text": zh_text,
        "texts": f"{zh_text}|{en_text}|{zh_text}",
    }
    english_only = rng.random() < 0.2
    parts: list[Part] = []
    if english_only:
        if label in prompts["sit_before_english"] and rng.random() < 0.6:
            codes = SIT_CODES_FOR[label]
            parts.append(
                (synth.sit(codes[rng.integers(len(codes))], amplitude=rng.uniform(0.1, 0.3)), "tone")
            )
            parts.append((_pause(rng, 0.0, 0.3), "pause"))
            meta["sit"] = True
        en = tts.speak(en_text, en_voice)
        parts += [(en, "speech"), (_pause(rng), "pause"), (en, "speech")]
        meta["text"] = en_text
        meta["texts"] = f"{en_text}|{en_text}"
    else:
        zh, zh_said = _mandarin(zh_text, zh_voice, rng, heldout, recorded)
        meta["voice"] = f"{zh_said};{en_voice.describe()}"
        en = tts.speak(en_text, en_voice)
        parts += [
            (zh, "speech"),
            (_pause(rng), "pause"),
            (en, "speech"),
            (_pause(rng), "pause"),
            (zh, "speech"),
        ]
    if rng.random() < 0.3:  # switches often play busy or congestion tone afterwards
        tail = _specs("busy_tone")[rng.integers(len(_specs("busy_tone")))]
        parts.append((synth.cadenced(tail, rng.uniform(1, 4), amplitude=rng.uniform(0.05, 0.3)), "tone"))
    return parts, meta


def _short_phrases(
    kind: str, rng: np.random.Generator, heldout: bool, count: int, recorded: tts.Recordings | None = None
) -> tuple[list[np.ndarray], dict]:
    phrases = load_prompts()[kind]
    language = "zh" if rng.random() < 0.6 else "en"
    voice = tts.pick_voice(language, rng, heldout)
    parts: list[Part] = []
    texts, said = [], []
    for i in range(count):
        text = phrases[language][rng.integers(len(phrases[language]))]
        texts.append(text)
        if i:
            parts.append((_pause(rng, 0.5, 2.0), "pause"))
        if language == "zh":
            speech, who = _mandarin(text, voice, rng, heldout, recorded)
        else:
            speech, who = tts.speak(text, voice), voice.describe()
        parts.append((speech, "speech"))
        said.append(who)
    return parts, {"voice": ";".join(dict.fromkeys(said)), "text": " / ".join(texts)}


def _speech_spans(start: int, parts: list[Part]) -> str:
    """Where the speech is, as "start-end;..." in seconds (the beep counts for voicemail)."""
    spans = []
    position = start
    for samples, kind in parts:
        if kind == "speech":
            spans.append(f"{position / SAMPLE_RATE:.2f}-{(position + len(samples)) / SAMPLE_RATE:.2f}")
        position += len(samples)
    return ";".join(spans)


@cache
def lead_labels() -> tuple[str, ...]:
    """The labels whose clips have a lead-in: every announcement, the answer and the greeting."""
    return tuple(
        label for label in MODEL_LABELS if label in load_prompts()["announcements"] or label in LEAD_LABELS
    )


def make_clip(
    label: str,
    rng: np.random.Generator,
    heldout: bool,
    recorded: tts.Recordings | None = None,
    lead: str | None = None,
) -> tuple[np.ndarray, dict]:
    """One clean clip of *label* (before the channel) and its facts; *recorded* is an outside
    Mandarin voice that training clips take part of their Mandarin from; *lead* forces the
    lead-in (one of ``LEADS``) of a label that has one."""
    meta: dict = {"onset_s": 0.0}
    if lead is not None and label not in lead_labels():
        raise ValueError(
            f"{label!r} clips have no lead-in to force (labels with one: {', '.join(lead_labels())})"
        )
    if label in lead_labels():
        lead_audio, lead_kind = _lead(rng, 0.0 if heldout else MUSIC_LEAD_SHARE, lead)
        if label == "human":
            body, info = _short_phrases("human", rng, heldout, int(rng.integers(1, 4)), recorded)
            body.append((synth.silence(rng.uniform(1.0, 4.0)), "pause"))  # the line stays open
        elif label == "voicemail":
            body, info = _short_phrases("voicemail", rng, heldout, 1, recorded)
            beep = synth.tone((rng.uniform(700, 1500),), rng.uniform(0.3, 0.8), amplitude=0.3)
            body += [
                (_pause(rng, 0.2, 0.6), "pause"),
                (beep, "speech"),
                (synth.silence(rng.uniform(0.5, 2.0)), "pause"),
            ]
        else:
            body, info = _announcement(label, rng, heldout, recorded)
        meta.update(
            info,
            lead=lead_kind,
            onset_s=round(len(lead_audio) / SAMPLE_RATE, 3),
            speech=_speech_spans(len(lead_audio), body),
        )
        clip = np.concatenate([lead_audio, *(part for part, _ in body)])
        # truncated, as when the dialer hangs up: never before the first full sentence
        first = next(len(part) for part, kind in body if kind == "speech")
        before = sum(len(part) for part, _ in body[: [k for _, k in body].index("speech")])
        keep = len(lead_audio) + before + first + int(rng.uniform(0.3, 6.0) * SAMPLE_RATE)
        if label != "voicemail" and rng.random() < 0.7:
            clip = clip[:keep]
    elif label in ("ringback", "busy_tone", "congestion_tone"):
        specs = _specs(label)
        spec = specs[rng.integers(len(specs))]
        clip = synth.cadenced(
            spec,
            rng.uniform(3.0, 12.0) if label == "ringback" else rng.uniform(2.5, 8.0),
            freq_scale=1 + rng.uniform(-0.012, 0.012),
            cadence_scale=1 + rng.uniform(-0.15, 0.15),
            start_offset_s=rng.uniform(0, 1.0),
            amplitude=rng.uniform(0.05, 0.35),
        )
        meta["tone"] = f"{spec.plan}:{spec.name}"
    elif label == "sit":
        code = [None, "ic", "io"][rng.integers(3)]
        clip = np.concatenate(
            [
                synth.silence(rng.uniform(0, 1)),
                synth.sit(code, amplitude=rng.uniform(0.1, 0.3)),
                synth.silence(rng.uniform(1, 3)),
            ]
        )
        meta["tone"] = f"sit:{code}"
    elif label == "fax":
        if rng.random() < 0.5:
            clip = synth.fax_cng(
                rng.uniform(4, 8), start_offset_s=rng.uniform(0, 3), amplitude=rng.uniform(0.1, 0.3)
            )
            meta["tone"] = "cng"
        else:
            clip = np.concatenate(
                [
                    synth.silence(rng.uniform(0, 1)),
                    synth.fax_ced(rng.uniform(2.6, 4.0), am=bool(rng.random() < 0.5)),
                ]
            )
            meta["tone"] = "ced"
    elif label == "color_ringback":
        clip = _music_ringback(4.0, 12.0, rng)
    elif label == "silence":
        clip = (rng.uniform(1e-5, 5e-4) * rng.standard_normal(int(rng.uniform(3, 10) * SAMPLE_RATE))).astype(
            np.float32
        )
    else:
        raise ValueError(f"no recipe for label {label!r}")
    return clip[: int(MAX_CLIP_S * SAMPLE_RATE)].astype(np.float32), meta


@cache
def _babble_beds(heldout: bool) -> tuple[np.ndarray, ...]:
    """Babble-noise beds: several voices, Mandarin and English, talking at once. They say
    everyday sentences (``prompts.json`` "babble"), never a prompt's wording: babble made of
    announcements would put the very thing being classified into the noise. The held-out
    beds use other sentences and the held-out voices."""
    return tuple(_babble_bed(heldout, i) for i in range(BABBLE_BEDS))


def _babble_bed(heldout: bool, index: int) -> np.ndarray:
    rng = np.random.default_rng([99, int(heldout), index])
    texts = load_prompts()["babble"]["heldout" if heldout else "train"]
    voices = []
    for _ in range(BABBLE_TALKERS):
        language = ("zh", "en")[rng.integers(2)]
        sentences = texts[language]
        voices.append(
            tts.speak(sentences[rng.integers(len(sentences))], tts.pick_voice(language, rng, heldout))
        )
    length = max(len(v) for v in voices) * 2
    bed = np.zeros(length, dtype=np.float32)
    for v in voices:
        at = int(rng.integers(0, length - len(v)))
        bed[at : at + len(v)] += v
    return bed


ClipTask = tuple[str, int, bool, str, str | None, str | None]
"""What ``make_row`` synthesises: label, index, held out?, corpus folder, outside Mandarin
voice folder (or None), forced lead-in (or None: the recipe's odds)."""


def _write_wav(path: Path, samples: np.ndarray) -> None:
    """16-bit WAV in one write: soundfile's close() fsyncs a file it wrote (about 1 ms a
    clip), which buys nothing for a corpus its seed regenerates. Same bytes."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    path.write_bytes(buffer.getvalue())


def make_row(task: ClipTask) -> dict:
    """Synthesise one clip through the channel, write it under the folder's ``train/`` or
    ``heldout/`` and return its manifest row. Deterministic: the seed comes from the label,
    the index and the split."""
    label, index, heldout, folder, zh_voice, lead = task
    seed = SEED + (HELDOUT_SEED_OFFSET if heldout else 0) + LABEL_IDS.index(label) * 100_000 + index
    rng = np.random.default_rng(seed)
    clean, meta = make_clip(label, rng, heldout, tts.Recordings.load(zh_voice) if zh_voice else None, lead)
    if label == "silence" and rng.random() < 0.5:
        noisy, chan = clean, {"codec": "linear", "digital_silence": True}
        if rng.random() < 0.5:
            noisy = np.zeros_like(clean)
    else:
        # held-out: what the evaluation promises (G.711, 10-30 dB SNR, no equaliser, noise after
        # the filter, as the earlier held-out sets); training: anything
        limits = (
            {"snr_db": (10.0, 30.0), "codecs": ("mulaw", "alaw"), "eq_db": 0.0, "filtered_noise": 0.0}
            if heldout
            else {}
        )
        babble = _babble_beds(heldout)[
            seed % BABBLE_BEDS
        ]  # not drawn from rng: other clips stay as they were
        noisy, chan = channel.degrade(clean, rng, babble=babble, **limits)
    split = "heldout" if heldout else "train"
    path = Path(folder) / split / f"{label}_{index:04d}.wav"
    _write_wav(path, noisy)
    return {
        "path": str(path.relative_to(folder)),
        "label": label,
        "split": split,
        "onset_s": meta.pop("onset_s"),
        "duration_s": round(len(noisy) / SAMPLE_RATE, 3),
        "seed": seed,
        **{k: v for k, v in {**meta, **chan}.items()},
    }


RECIPE_RECORD = "recipe.json"
"""Written into a corpus folder when its clips are complete: what they were made from
(``recipe_record``), so ``build(update=True)`` knows which labels it can keep."""
TOOLS = (("espeak-ng", "--version"), ("flite", "--version"), ("sox", "--version"))


def _sha(data: object) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _version(command: tuple[str, ...]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "missing"


def label_prompts(prompts: dict, label: str) -> dict:
    """The entries of ``prompts.json`` that a label's clips are made from (besides the
    babble, which every clip's channel may use)."""
    return {
        "announcement": prompts["announcements"].get(label),
        "sit_before_english": label in prompts["sit_before_english"],
        "phrases": prompts.get(label) if label in ("human", "voicemail") else None,
    }


def recipe_record(
    per_label: int, heldout_per_label: int, zh_voice: Path | None, labels: tuple[str, ...]
) -> dict:
    """What a corpus is made from: every line of code that could shape a clip (all of
    ``training/`` and ``audio_classifier/``: a safe over-approximation), the speech tools'
    versions, the sizes, the outside Mandarin voice and the shared babble texts under
    "common"; each label's own prompts under "labels". Two corpora with the same "common"
    have the same clips for every label whose entry is the same."""
    root = Path(__file__).resolve().parent.parent
    code = hashlib.sha256()
    for path in sorted([*root.glob("training/*.py"), *root.glob("audio_classifier/**/*.py")]):
        code.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    tools = [_version(command) for command in TOOLS]
    prompts = load_prompts()
    return {
        "common": _sha(
            {
                "code": code.hexdigest(),
                "tools": tools,
                "sizes": [per_label, heldout_per_label],
                "zh_voice": tts.Recordings.load(str(zh_voice)).digest() if zh_voice else None,
                "babble": prompts["babble"],
            }
        ),
        "labels": {label: _sha(label_prompts(prompts, label)) for label in labels},
    }


def _kept_rows(
    out: Path, record: dict, sizes: dict[str, int]
) -> tuple[dict[tuple[str, str], list[dict]], str]:
    """The manifest rows, by (split, label), of the labels whose clips the corpus in *out*
    already holds as *record* would make them, and why the others are not kept."""
    try:
        old = json.loads((out / RECIPE_RECORD).read_text(encoding="utf-8"))
        rows: dict[tuple[str, str], list[dict]] = {}
        for split in sizes:
            with open(out / f"{split}.csv", newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    rows.setdefault((split, row["label"]), []).append(row)
    except (OSError, ValueError) as error:
        return {}, f"no complete corpus to update ({error})"
    if not isinstance(old, dict) or not isinstance(old.get("labels"), dict):
        return {}, f"{out / RECIPE_RECORD} is not a recipe record"
    if old.get("common") != record["common"]:
        return {}, "the code, the tools, the sizes, the outside voice or the babble changed"
    kept = {}
    for label, digest in record["labels"].items():
        if old["labels"].get(label) != digest:
            continue
        ours = {split: rows.get((split, label), []) for split in sizes}
        if all(
            len(ours[split]) == sizes[split] and all((out / r["path"]).is_file() for r in ours[split])
            for split in sizes
        ):
            kept.update({(split, label): ours[split] for split in sizes})
    return kept, ""


def build(
    out: Path,
    per_label: int,
    heldout_per_label: int,
    jobs: int,
    labels: tuple[str, ...] = MODEL_LABELS,
    progress: bool = True,
    zh_voice: Path | None = None,
    update: bool = False,
) -> list[dict]:
    """Generate the corpus into *out*; return the manifest rows (also written as CSV).
    *zh_voice*: a folder of an outside Mandarin voice's recordings (``tts.Recordings``).
    *update*: keep the clips of every label that the corpus already in *out* made from the
    same recipe and prompts, and make only the others: after an edit to ``prompts.json``,
    the labels whose wordings changed. The result is the corpus a full build makes, file
    for file (only a label's own clips depend on its prompts)."""
    tts.check_espeak()
    if zh_voice:
        tts.Recordings.load(str(zh_voice))  # a missing or broken folder fails here, not in a worker
    sizes = {"train": per_label, "heldout": heldout_per_label}
    record = recipe_record(per_label, heldout_per_label, zh_voice, labels)
    kept, why = _kept_rows(out, record, sizes) if update else ({}, "")
    if update:
        remade = [label for label in labels if ("train", label) not in kept]
        print(
            f"corpus update: keeping {len(labels) - len(remade)} labels, making {len(remade)}"
            + (f" ({why})" if why else f": {', '.join(remade)}" if remade else ""),
            file=sys.stderr,
        )
    (out / RECIPE_RECORD).unlink(missing_ok=True)  # written again once every clip is there
    for split in sizes:
        (out / split).mkdir(parents=True, exist_ok=True)
    voice = str(zh_voice) if zh_voice else None
    tasks = [
        (label, i, split == "heldout", str(out), voice, None)
        for split, count in sizes.items()
        for label in labels
        if (split, label) not in kept
        for i in range(count)
    ]
    made = map_in_order(make_row, tasks, jobs, desc="corpus", unit="clip", chunksize=8, progress=progress)
    by_key: dict[tuple[str, str], list[dict]] = dict(kept)
    for row in made:
        by_key.setdefault((row["split"], row["label"]), []).append(row)
    rows = [row for split in sizes for label in labels for row in by_key.get((split, label), [])]
    columns = [
        "path",
        "label",
        "split",
        "onset_s",
        "speech",
        "duration_s",
        "seed",
        "voice",
        "text",
        "texts",
        "lead",
        "tone",
        "sit",
        "noise",
        "snr_db",
        "gain_db",
        "codec",
        "clipped",
        "dropouts",
        "digital_silence",
        "noise_filtered",
    ]
    for split in sizes:
        with open(out / f"{split}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(r for r in rows if r["split"] == split)
    (out / RECIPE_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("corpus"))
    parser.add_argument("--per-label", type=int, default=100)
    parser.add_argument("--heldout-per-label", type=int, default=24)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    rows = build(args.out, args.per_label, args.heldout_per_label, args.jobs)
    print(f"wrote {len(rows)} clips to {args.out}")


if __name__ == "__main__":
    main()
