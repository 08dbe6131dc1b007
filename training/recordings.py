"""A user's own labelled recordings: training material, and a held-out check of what they add.

    python -m training.build --recordings MANIFEST [--recordings-copies 6]

MANIFEST is a CSV with the columns ``path`` and ``label`` (a label of ``audio-classifier
labels``) and optionally:

- ``carrier`` and ``voice``: whole groups are held out for the check. The group is the
  carrier when any row names one, else the voice, else each file alone;
  ``HELDOUT_SHARE`` of the groups (at least one, never all) are held out, chosen by a hash
  of their names, so the same manifest always splits the same way.
- ``text``: what the recording says; the network learns it as a wording of its label (as it
  learns the recipe's sentences).
- ``licence`` and ``commercial_use`` (``yes``/``no``): the recording's licence, for the model
  card's ``sources``. The shipped model is built only from recordings marked ``yes``.
- ``split``: ``train`` or ``heldout``, to choose the split by hand (then every row needs one).
- ``shaped``: ``yes`` for a recording of a real call (ringback, the line and its codec are
  already in it), used as it is; ``onset_s`` then says where the labelled sound starts
  (default 0; ignored for a clean recording) and ``lead`` what played before it
  (``none``, ``silence``, ``ringback``, ``music``).
  Otherwise (the default) the recording is clean: each copy plays it as a call would (a
  lead-in of nothing, silence, ringback or music ringback, then the recording, then the
  open line) through a random telephone channel (``training.channel.degrade``).

Paths are relative to the manifest's folder. Audio of any format soundfile reads (and
headerless ``.gsm`` through sox), any rate, mixed to mono and resampled to 8 kHz. Copies
are written under ``OUT/train`` and ``OUT/heldout`` with a manifest each, in the corpus's
columns plus ``source``, ``carrier`` and ``recording``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_classifier import synth
from audio_classifier.audio import SAMPLE_RATE
from audio_classifier.resample import resample

from . import channel, corpus
from .parallel import map_in_order

HELDOUT_SHARE = 0.25
"""Share of the groups (carriers, voices or files) held out for the check."""
COPIES = 6
"""Call-shaped copies of each clean training recording (each a new lead-in and channel)."""
HELDOUT_COPIES = 3
"""... and of each held-out one."""
SEED = 77_000
"""Copies are seeded from this, the recording's row and the copy's number."""
PEAK = 0.5
"""A clean recording is scaled to this peak before the channel varies the gain (where the
recipe's voices speak)."""
QUIET_SHARE = 0.03
"""A clean recording's leading and trailing samples below this share of its peak are cut,
so that the onset is where its sound starts (``loud_bounds``)."""
TAIL_S = (0.5, 2.5)
"""The open line after a clean speech recording (s)."""
MAX_ONSET_S = 600.0
"""A shaped recording's ``onset_s`` beyond this is a mistake (and must lie within it)."""
YES = ("yes", "true", "1")
NO = ("", "no", "false", "0")


@dataclass(frozen=True)
class Recording:
    """One row of a recordings manifest."""

    row: int
    """Line number in the manifest (the header is line 1)."""
    path: Path
    label: str
    name: str = ""
    """The path as the manifest writes it: what a file alone is grouped and hashed by, so
    the split does not depend on how the manifest itself was named."""
    carrier: str = ""
    voice: str = ""
    text: str = ""
    shaped: bool = False
    onset_s: float = 0.0
    lead: str = ""
    licence: str = ""
    commercial_use: bool | None = None
    """Whether the licence allows commercial use (``None``: not said)."""
    split: str = ""
    """``train``, ``heldout``, or ``""`` (the hash of its group decides, ``split``)."""


class ManifestError(ValueError):
    """A recordings manifest that cannot be used, with every reason found."""


def read_manifest(path: str | Path) -> list[Recording]:
    """The recordings of *path*; raises :class:`ManifestError` listing every bad row."""
    path = Path(path)
    root = path.parent
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or ())
            missing = {"path", "label"} - set(columns)
            if missing:
                raise ManifestError(f"{path}: no {' or '.join(sorted(missing))} column")
            repeated = sorted({c for c in columns if columns.count(c) > 1})
            if repeated:
                raise ManifestError(f"{path}: column {', '.join(repeated)} appears more than once")
            rows = list(reader)
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise ManifestError(f"{path}: not a CSV file this reads: {exc}") from None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read: {exc.strerror}") from None
    recordings, problems = [], []
    for line, row in enumerate(rows, start=2):
        try:
            recordings.append(_recording(line, row, root))
        except ValueError as exc:
            problems.append(f"line {line}: {exc}")
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise ManifestError(f"{path}: {len(problems)} bad rows:\n  " + "\n  ".join(shown))
    if not recordings:
        raise ManifestError(f"{path}: no recordings")
    return recordings


def _recording(line: int, row: dict, root: Path) -> Recording:
    name = (row.get("path") or "").strip()
    label = (row.get("label") or "").strip()
    if not name:
        raise ValueError("empty path")
    if label not in corpus.MODEL_LABELS:
        raise ValueError(f"label {label!r} is none the model learns ({', '.join(corpus.MODEL_LABELS)})")
    file = root / name
    if not file.is_file():
        raise ValueError(f"no such file: {file}")
    if reserved(file):
        raise ValueError(f"{file} is reserved for independent evaluation: never trained on")
    shaped = (row.get("shaped") or "").strip().lower()
    if shaped not in YES + NO:
        raise ValueError(f"shaped must be yes or no, not {shaped!r}")
    try:
        onset = float(row.get("onset_s") or 0.0)
    except ValueError:
        raise ValueError(f"onset_s is not a number: {row.get('onset_s')!r}") from None
    if not 0.0 <= onset < MAX_ONSET_S:
        raise ValueError(f"onset_s {onset} is not within 0-{MAX_ONSET_S:.0f} s")
    lead = (row.get("lead") or "").strip()
    if lead and lead not in corpus.LEADS:
        raise ValueError(f"lead {lead!r} is not one of {', '.join(corpus.LEADS)}")
    commercial = (row.get("commercial_use") or "").strip().lower()
    if commercial not in YES + NO:
        raise ValueError(f"commercial_use must be yes or no, not {commercial!r}")
    part = (row.get("split") or "").strip()
    if part not in ("", "train", "heldout"):
        raise ValueError(f"split must be train or heldout, not {part!r}")
    return Recording(
        line,
        file,
        label,
        name,
        (row.get("carrier") or "").strip(),
        (row.get("voice") or "").strip(),
        (row.get("text") or "").strip(),
        shaped in YES,
        onset,
        lead,
        (row.get("licence") or "").strip(),
        None if not commercial else commercial in YES,
        part,
    )


def reserved(path: Path) -> bool:
    """Whether *path* is material reserved for independent evaluation: the sound folders of
    asterisk-core-sounds-en/-es (``callshape.RESERVED_FOLDERS``) and gcin-voice's ``3.ogg``."""
    from . import callshape, gcin_voice

    resolved = path.resolve()
    for root, test in (
        (callshape.SOUNDS, lambda rel: rel.parts[0].startswith(callshape.RESERVED_FOLDERS)),
        (gcin_voice.GCIN_OGG, lambda rel: rel.name == "3.ogg"),
    ):
        try:
            rel = resolved.relative_to(root.resolve())
        except ValueError:
            continue
        if rel.parts and test(rel):
            return True
    return False


def _group(recording: Recording, key: str) -> str:
    return recording.name if key == "path" else str(getattr(recording, key))


def group_key(recordings: list[Recording]) -> str:
    """What the check holds out whole: ``carrier`` when any row names one, else ``voice``,
    else ``path`` (each file alone)."""
    for key in ("carrier", "voice"):
        if any(getattr(r, key) for r in recordings):
            return key
    return "path"


def split(recordings: list[Recording]) -> tuple[list[Recording], list[Recording], str]:
    """(training recordings, held-out recordings, the column they are grouped by). The
    ``split`` column decides when rows have one (all of them must, and both splits must be
    there)."""
    key = group_key(recordings)
    chosen = [r for r in recordings if r.split]
    if chosen:
        if len(chosen) != len(recordings):
            raise ManifestError(f"{len(recordings) - len(chosen)} rows have no split while others do")
        train = [r for r in recordings if r.split == "train"]
        heldout = [r for r in recordings if r.split == "heldout"]
        if not train or not heldout:
            raise ManifestError("the split column must name both train and heldout rows")
        return train, heldout, key
    unnamed = [r.row for r in recordings if not _group(r, key)]
    if unnamed:
        shown = ", ".join(map(str, unnamed[:10])) + (" ..." if len(unnamed) > 10 else "")
        raise ManifestError(f"rows without a {key} while others have one (lines {shown}): name every row's")
    groups = sorted({_group(r, key) for r in recordings})
    if len(groups) < 2:
        raise ManifestError(
            f"the recordings are one {key} ({groups[0]!r}): a check needs at least two, one to hold out"
        )
    ranked = sorted(groups, key=lambda g: hashlib.sha256(g.encode()).hexdigest())
    held = set(ranked[: min(max(1, round(HELDOUT_SHARE * len(groups))), len(groups) - 1)])
    heldout = [r for r in recordings if _group(r, key) in held]
    return [r for r in recordings if _group(r, key) not in held], heldout, key


@cache
def read_audio(path: Path) -> np.ndarray:
    """A recording as float32 mono at 8 kHz (read-only: it is cached, as every copy of a
    recording, and every clip a real prompt plays in, reads it again)."""
    if path.suffix.lower() == ".gsm":  # headerless GSM 06.10: sox knows it by its extension
        done = subprocess.run(["sox", str(path), "-t", "wav", "-"], capture_output=True)
        if done.returncode:
            raise RuntimeError(f"{path}: sox failed: {done.stderr.decode(errors='replace').strip()}")
        source: Path | io.BytesIO = io.BytesIO(done.stdout)
    else:
        source = path
    try:
        samples, rate = sf.read(source, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise RuntimeError(f"{path}: cannot read: {exc}") from None
    if not len(samples):
        raise RuntimeError(f"{path}: no audio")
    out = resample(samples.mean(axis=1), rate, SAMPLE_RATE).astype(np.float32)
    out.flags.writeable = False
    return out


def loud_bounds(x: np.ndarray) -> tuple[int, int] | None:
    """First and one-past-last sample of *x* above ``QUIET_SHARE`` of its peak (None when
    it is silent): where a clean recording's sound is."""
    level = np.abs(x)
    loud = np.flatnonzero(level > QUIET_SHARE * float(level.max(initial=0.0)))
    return (int(loud[0]), int(loud[-1]) + 1) if len(loud) else None


def trimmed(x: np.ndarray, peak: float = PEAK) -> np.ndarray:
    """*x* without its leading and trailing quiet (``loud_bounds``), scaled to *peak*: so
    that an onset is where the recording's sound starts."""
    top = float(np.abs(x).max(initial=0.0))
    bounds = loud_bounds(x)
    if bounds is not None:
        x = x[bounds[0] : bounds[1]]
    return (x * (peak / max(top, 1e-6))).astype(np.float32)


CopyTask = tuple[Recording, int, bool, str]
"""What ``make_copy`` writes: the recording, the copy's number, held out?, output folder."""


def make_copy(task: CopyTask) -> dict:
    """Write one copy of a recording (call-shaped unless it is ``shaped`` already) and return
    its manifest row. Deterministic: seeded from the recording's row and the copy's number."""
    recording, number, heldout, folder = task
    split_name = "heldout" if heldout else "train"
    seed = SEED + recording.row * 1000 + number + (corpus.HELDOUT_SEED_OFFSET if heldout else 0)
    rng = np.random.default_rng(seed)
    audio = read_audio(recording.path)
    speaks = recording.label in corpus.lead_labels()
    facts: dict = {}
    if recording.shaped:
        clip, onset, lead = audio, recording.onset_s, recording.lead or "silence"
        body_end = len(clip) / SAMPLE_RATE
        if onset >= body_end:
            raise ValueError(f"{recording.path}: onset_s {onset} is past its end ({body_end:.2f} s)")
    else:
        body = trimmed(audio)
        lead_audio = np.zeros(0, dtype=np.float32)
        lead = ""
        if speaks:
            lead_audio, lead = corpus._lead(rng, 0.0 if heldout else corpus.MUSIC_LEAD_SHARE)
        tail = synth.silence(rng.uniform(*TAIL_S)) if speaks else np.zeros(0, dtype=np.float32)
        clean = np.concatenate([lead_audio, body, tail])
        onset = len(lead_audio) / SAMPLE_RATE
        body_end = onset + len(body) / SAMPLE_RATE
        babble = corpus._babble_beds(heldout)[seed % corpus.BABBLE_BEDS]
        clip, facts = channel.degrade(clean, rng, babble=babble)
    path = Path(folder) / split_name / f"{recording.row:05d}_{number:02d}_{recording.label}.wav"
    corpus._write_wav(path, clip.astype(np.float32))
    return {
        "path": str(path.relative_to(folder)),
        "label": recording.label,
        "split": split_name,
        "onset_s": round(onset, 3),
        "speech": f"{onset:.3f}-{body_end:.3f}" if speaks else "",
        "duration_s": round(len(clip) / SAMPLE_RATE, 3),
        "seed": seed,
        "voice": recording.voice,
        "text": recording.text,
        "lead": lead,
        "source": "recording",
        "carrier": recording.carrier,
        "recording": str(recording.path),
        **facts,
    }


def make_copies(
    recordings: list[Recording], folder: Path, *, heldout: bool, copies: int, jobs: int, progress: bool = True
) -> list[dict]:
    """Write the copies of *recordings* under *folder* and its ``train.csv`` or
    ``heldout.csv``; return the rows. A shaped recording is written once."""
    split_name = "heldout" if heldout else "train"
    (folder / split_name).mkdir(parents=True, exist_ok=True)
    tasks = [(r, n, heldout, str(folder)) for r in recordings for n in range(1 if r.shaped else copies)]
    rows = map_in_order(
        make_copy,
        tasks,
        max(1, jobs),
        desc=f"recordings ({split_name})",
        unit="clip",
        chunksize=4,
        progress=progress,
    )
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(folder / f"{split_name}.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def summary(recordings: list[Recording]) -> dict:
    """Counts for the model card: recordings per label, and the groups."""
    key = group_key(recordings)
    labels: dict[str, int] = {}
    for r in recordings:
        labels[r.label] = labels.get(r.label, 0) + 1
    groups = sorted({_group(r, key) for r in recordings})
    return {
        "recordings": len(recordings),
        "labels": dict(sorted(labels.items())),
        "grouped_by": key,
        "groups": groups if key != "path" else len(groups),
    }


def sources_of(recordings: list[Recording], manifest: Path) -> list[dict]:
    """The training recordings as model-card ``sources`` (``training.provenance``): one entry
    per group (voice or carrier) and licence."""
    key = group_key(recordings)
    entries: dict[tuple, dict] = {}
    for r in recordings:
        group = _group(r, key) if key != "path" else ""
        entry = entries.setdefault(
            (group, r.licence, r.commercial_use),
            {
                "source": f"recordings ({manifest.name})",
                "kind": "recorded audio, call-shaped copies" if not r.shaped else "recorded calls",
                **({"group": group} if group else {}),
                "recordings": 0,
                "licence": r.licence or "not stated",
                "commercial_use": r.commercial_use,
            },
        )
        entry["recordings"] += 1
    return list(entries.values())
