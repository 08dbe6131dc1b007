"""The sample library: known carrier recordings, their labels and their fingerprints.

One SQLite file. Enrolling a recording takes effect without retraining: the next session
(or, in a running server, the next session after ``reload()``) matches against it.
Landmarks are stored per sample; the fingerprint parameters and a format version are
stored in the file and checked when it opens.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from .audio import SAMPLE_RATE, open_file
from .errors import AudioClassifierError, ConfigError, ModelError
from .fingerprint import FingerprintConfig, Index, landmarks
from .labels import LABELS
from .resources import asset, user_folder

CHANNEL = "fingerprint"
LIBRARY_FORMAT = 1
SAMPLES_ENV = "AUDIO_CLASSIFIER_SAMPLES"
DEFAULT_LIBRARY = asset("samples.sqlite")
"""The library shipped inside the package: read, never written."""
DATA_ENV = "AUDIO_CLASSIFIER_DATA"
"""Folder of the user's own data (their sample library) instead of the default."""
LIBRARY_NAME = "samples.sqlite"

SYNTHETIC_SOURCE = "tts:"
"""How the source of a synthesised sample begins (``training/samples.py``): a recipe, not a file."""
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A CSV cell starting with one of these is a formula to a spreadsheet: ``export`` writes
it with a leading apostrophe, which ``import_manifest`` takes off again."""

MIN_VOTES = 22
"""Aligned landmarks needed for a match: well above the ~10 that a word two recordings in
one voice share ("call", "please") aligns, low enough to identify a prompt within about a
second of its start (benchmarks/fingerprint.py measures both sides)."""
MIN_MARGIN = 2.0
"""... and this many times the votes of the best recording with another label (prompts in
the same voice share words, so a partial match of a sibling prompt is normal; siblings
with the same label do not compete)."""
SCORE_BY_VOTES = ((MIN_VOTES, 0.95), (30, 0.98), (45, 0.99))
"""(minimum votes, evidence score) steps."""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    label TEXT NOT NULL,
    lang TEXT,
    carrier TEXT,
    note TEXT,
    source TEXT,
    audio_sha256 TEXT NOT NULL UNIQUE,
    duration_s REAL NOT NULL,
    added TEXT NOT NULL,
    landmarks INTEGER NOT NULL,
    hashes BLOB NOT NULL,
    times BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class SampleInfo:
    id: int
    label: str
    lang: str | None
    carrier: str | None
    note: str | None
    source: str | None
    duration_s: float
    added: str
    landmarks: int


def read_audio(path: str | os.PathLike[str]) -> np.ndarray:
    """A whole file as float32 mono at ``SAMPLE_RATE`` (through the classifier's converter)."""
    info, chunks = open_file(path)
    converter = info.converter()
    parts = [converter.push(chunk) for chunk in chunks]
    parts.append(converter.flush())
    return np.concatenate(parts)


class SampleLibrary:
    """A sample library file. Not shared between threads: open one per thread."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = False) -> None:
        self.path = Path(path)
        if not self.path.exists() and not create:
            raise ConfigError(f"sample library not found: {self.path} (create it with 'samples add')")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(self.path))
            self._db.executescript(_SCHEMA)
            meta = dict(self._db.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError as exc:
            raise ModelError(f"{self.path} is not a sample library ({exc})") from None
        if not meta:
            self.config = FingerprintConfig()
            with self._db:
                self._db.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [
                        ("format", str(LIBRARY_FORMAT)),
                        ("fingerprint", json.dumps(self.config.to_dict())),
                        ("created", time.strftime("%Y-%m-%dT%H:%M:%S")),
                    ],
                )
        else:
            if int(meta.get("format", 0)) != LIBRARY_FORMAT:
                raise ModelError(
                    f"{self.path}: library format {meta.get('format')}, this version reads {LIBRARY_FORMAT}"
                )
            self.config = FingerprintConfig.from_dict(json.loads(meta["fingerprint"]))
            if self.config != FingerprintConfig():
                raise ModelError(
                    f"{self.path} was made with other fingerprint parameters; rebuild it "
                    f"(samples export, then samples import)"
                )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SampleLibrary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(
        self,
        samples: np.ndarray,
        *,
        label: str,
        lang: str | None = None,
        carrier: str | None = None,
        note: str | None = None,
        source: str | None = None,
    ) -> tuple[int, bool]:
        """Enrol a recording (float32 mono at ``SAMPLE_RATE``). Returns (id, newly added);
        the same audio enrolled twice keeps its first entry."""
        if label not in LABELS:
            raise ConfigError(f"unknown label {label!r}; valid labels: {', '.join(LABELS)}")
        digest = hashlib.sha256(np.ascontiguousarray(samples, dtype=np.float32).tobytes()).hexdigest()
        row = self._db.execute("SELECT id FROM samples WHERE audio_sha256 = ?", (digest,)).fetchone()
        if row:
            return int(row[0]), False
        hashes, times = landmarks(samples, self.config)
        if len(hashes) < MIN_VOTES:
            raise ConfigError(
                f"too little distinctive sound to fingerprint ({len(hashes)} landmarks): "
                f"{source or 'recording'}"
            )
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO samples (label, lang, carrier, note, source, audio_sha256, duration_s, added, "
                "landmarks, hashes, times) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    label,
                    lang,
                    carrier,
                    note,
                    source,
                    digest,
                    len(samples) / SAMPLE_RATE,
                    time.strftime("%Y-%m-%dT%H:%M:%S"),
                    len(hashes),
                    hashes.astype("<u4").tobytes(),
                    times.astype("<i4").tobytes(),
                ),
            )
        return int(cursor.lastrowid), True

    def add_file(self, path: str | os.PathLike[str], **meta) -> tuple[int, bool]:
        return self.add(read_audio(path), source=str(path), **meta)

    def remove(self, sample_id: int) -> bool:
        with self._db:
            return self._db.execute("DELETE FROM samples WHERE id = ?", (sample_id,)).rowcount > 0

    def list(self) -> list[SampleInfo]:
        rows = self._db.execute(
            "SELECT id, label, lang, carrier, note, source, duration_s, added, landmarks FROM samples ORDER BY id"
        )
        return [SampleInfo(*row) for row in rows]

    def load_index(self) -> tuple[Index, dict[int, SampleInfo]]:
        """Every sample's landmarks in one lookup index, and the samples by id."""
        infos = {s.id: s for s in self.list()}
        hashes, ids, times = [], [], []
        for sample_id, blob_h, blob_t in self._db.execute("SELECT id, hashes, times FROM samples"):
            h = np.frombuffer(blob_h, dtype="<u4")
            hashes.append(h)
            times.append(np.frombuffer(blob_t, dtype="<i4"))
            ids.append(np.full(len(h), sample_id, dtype=np.int32))
        if not hashes:
            empty = np.zeros(0, dtype=np.int32)
            return Index(empty.astype(np.uint32), empty, empty), infos
        return Index(np.concatenate(hashes), np.concatenate(ids), np.concatenate(times)), infos

    def export(self, out: str | os.PathLike[str] | IO[str]) -> int:
        """Write the samples' metadata as CSV (the manifest ``samples import`` reads back) to
        the file *out* or an open text stream."""
        samples = self.list()
        with (
            open(out, "w", newline="", encoding="utf-8")
            if not hasattr(out, "write")
            else nullcontext(out) as handle
        ):
            writer = csv.writer(handle)
            writer.writerow(
                ["id", "path", "label", "lang", "carrier", "note", "duration_s", "added", "landmarks"]
            )
            for s in samples:
                writer.writerow(
                    [
                        s.id,
                        _cell(s.source or ""),
                        s.label,
                        _cell(s.lang or ""),
                        _cell(s.carrier or ""),
                        _cell(s.note or ""),
                        round(s.duration_s, 3),
                        s.added,
                        s.landmarks,
                    ]
                )
        return len(samples)

    def import_manifest(
        self, manifest: str | os.PathLike[str]
    ) -> Iterable[tuple[str, int | None, bool, str | None]]:
        """Enrol every row of a CSV (``path``, ``label``, optional ``lang``, ``carrier``,
        ``note``); yields (path, id, newly added, error) per row: one bad row never stops it.

        ``export`` writes each sample's source as its path; a synthesised sample's is its
        recipe (``SYNTHETIC_SOURCE``), not a file: such a row is the library's sample of that
        recipe, or an error where the library has none. File rows are enrolled (``add``
        finds a recording already enrolled by its audio), so exporting a library and
        importing the file into it, or into a copy of it, adds nothing."""
        manifest = Path(manifest)
        try:
            with open(manifest, newline="", encoding="utf-8-sig") as handle:
                rows = [{k: _uncell(v or "") for k, v in row.items() if k} for row in csv.DictReader(handle)]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise ConfigError(f"cannot read {manifest} as a UTF-8 CSV file: {exc}") from None
        if rows and ("path" not in rows[0] or "label" not in rows[0]):
            raise ConfigError(f"{manifest} needs 'path' and 'label' columns (has: {', '.join(rows[0])})")
        synthesised = {
            s.source: s.id for s in self.list() if s.source and s.source.startswith(SYNTHETIC_SOURCE)
        }
        for row in rows:
            if row["path"].startswith(SYNTHETIC_SOURCE):
                known = synthesised.get(row["path"])
                missing = (
                    "not a file: a sample synthesised by the library's build (python -m training.samples), "
                    "which only a library built that way holds"
                )
                yield row["path"], known, False, None if known is not None else missing
                continue
            path = Path(row["path"]) if Path(row["path"]).is_absolute() else manifest.parent / row["path"]
            try:
                sample_id, new = self.add_file(
                    path,
                    label=row["label"].strip(),
                    lang=row.get("lang") or None,
                    carrier=row.get("carrier") or None,
                    note=row.get("note") or None,
                )
                yield row["path"], sample_id, new, None
            except AudioClassifierError as exc:
                yield row["path"], None, False, f"{type(exc).__name__}: {exc}"


def _cell(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _uncell(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) else text


def data_dir() -> Path:
    """``$AUDIO_CLASSIFIER_DATA``, else ``$XDG_DATA_HOME/audio_classifier``, else
    ``~/.local/share/audio_classifier``: where the user's own sample library lives."""
    return user_folder(DATA_ENV, "XDG_DATA_HOME", ".local", "share")


def user_library() -> Path:
    """The user's own library (``samples add`` writes there by default)."""
    return data_dir() / LIBRARY_NAME


def resolve_library(option: str | None) -> Path | None:
    """The library to read: the option, else ``$AUDIO_CLASSIFIER_SAMPLES``, else the user's
    own (once ``samples add`` made it), else the shipped one; None when there is none."""
    choice = option or os.environ.get(SAMPLES_ENV)
    if choice:
        path = Path(choice)
        if not path.is_file():
            raise ConfigError(f"sample library not found: {path}")
        return path
    for path in (user_library(), DEFAULT_LIBRARY):
        if path.is_file():
            return path
    return None


def writable_library(option: str | None) -> tuple[Path, str | None]:
    """The library to write (enrol into, remove from): the option, else
    ``$AUDIO_CLASSIFIER_SAMPLES``, else the user's own, made on first use as a copy of the
    shipped one (which is never written). Returns the path and a note when it was made."""
    choice = option or os.environ.get(SAMPLES_ENV)
    if choice:
        return Path(choice), None
    path = user_library()
    if path.is_file():
        return path, None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if DEFAULT_LIBRARY.is_file():
            temporary = path.with_name(f".{path.name}.{os.getpid()}")
            shutil.copyfile(DEFAULT_LIBRARY, temporary)
            os.replace(temporary, path)
            return path, f"made your sample library {path} from the shipped one"
    except OSError as exc:
        raise ConfigError(
            f"cannot make your sample library in {path.parent}: {exc.strerror} (set ${DATA_ENV} or give --samples)"
        ) from None
    return path, f"made your sample library {path}"
