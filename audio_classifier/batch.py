"""Batch classification: inputs from paths or a manifest, records out as they are made.

Properties a QA team relies on: one record per input; a broken input becomes a record
with ``error`` and the batch goes on; every record is flushed when written, so a crash
loses nothing already done; running the same command again skips inputs already in the
output and classifies again the ones that failed (resume: an input is its path and its
manifest row's values, so rows that share a path are each their own input); worker
processes each load the classifier once.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .audio import AUDIO_EXTENSIONS, SAMPLE_RATE
from .classifier import Classifier
from .config import ClassifierConfig
from .csvtext import read_text
from .errors import AudioClassifierError, OutputError, UnreadableAudioError, UsageError
from .evidence import Decision
from .labels import LABELS

DECISION_FIELDS = (
    "label",
    "label_zh",
    "label_en",
    "confidence",
    "number_state",
    "action",
    "decided_at_s",
    "final",
    "analysed_s",
    "truncated",
    "evidence",
    "notes",
    "error",
    "withheld_action",
    "score",
    "transcript",
)
"""Fields of every output record after ``path`` and the manifest's own columns."""

RECORD_KEYS = frozenset({*DECISION_FIELDS, "hold", "peaks"})
"""Every key a record's decision writes (``Decision.to_dict``, evaluation's ``peaks``): a
manifest column of one of these names is carried as ``manifest_<name>``."""

HINT_COLUMNS = ("sip_status", "q850_cause")
IN_FLIGHT_PER_JOB = 4
"""Tasks queued per worker: keeps workers busy without holding a million futures."""


@dataclass(frozen=True)
class BatchItem:
    """One input: ``key`` is the path as the user gave it (and as it appears in the output)."""

    key: str
    path: Path
    extra: dict[str, str] = field(default_factory=dict)

    def identity(self, columns: Sequence[str]) -> tuple[str, ...]:
        """What tells this input from others in an output file: its path and its manifest
        row's values of *columns* (``record_identity`` gives the same for its record)."""
        return (self.key, *(self.extra.get(name, "") for name in columns))


def record_identity(record: dict[str, Any], columns: Sequence[str]) -> tuple[str, ...]:
    """The identity (``BatchItem.identity``) of the input a written record is for."""
    return (str(record.get("path", "")), *(_text(record.get(name)) for name in columns))


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def remaining(
    items: Sequence[BatchItem], finished: Iterable[dict[str, Any]], columns: Sequence[str]
) -> list[BatchItem]:
    """The inputs of *items* that no record of *finished* is for (rows with equal
    identities take equal records in turn)."""
    done = Counter(record_identity(r, columns) for r in finished)
    todo = []
    for item in items:
        identity = item.identity(columns)
        if done[identity] > 0:
            done[identity] -= 1
        else:
            todo.append(item)
    return todo


def match_records(
    items: Sequence[BatchItem], records: Iterable[dict[str, Any]], columns: Sequence[str]
) -> list[dict[str, Any] | None]:
    """For each of *items*, in order, a record of *records* for it (the first unused one
    with its identity; rows with equal identities take equal records in turn), or None."""
    pool: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for record in records:
        pool.setdefault(record_identity(record, columns), []).append(record)
    matched: list[dict[str, Any] | None] = []
    for item in items:
        candidates = pool.get(item.identity(columns))
        matched.append(candidates.pop(0) if candidates else None)
    return matched


@dataclass(frozen=True)
class ReadOptions:
    """How inputs are read, and what their records hold; passed to worker processes."""

    channel: int | None = None
    raw_encoding: str | None = None
    raw_sample_rate: int = SAMPLE_RATE
    peaks: bool = False
    """Add ``peaks`` to each record (``confidence_peaks``): what evaluation needs to replay
    the decision at any threshold from one run."""


def confidence_peaks() -> tuple[list[list[Any]], Callable[[Decision], None]]:
    """A list and the ``on_update`` callback that fills it with ``[analysed_s, label,
    score, confidence]`` for every decision that could have become final (no ``hold``; no
    progress label: ringback, silence) whose score beats every earlier such one's.

    An early decision at threshold *t* is the first of these with a score of at least *t*,
    made at its ``analysed_s`` (without one, the final decision): so a session run to its
    end with every update emitted (``early_decision=False``, ``update_min_delta=0``) tells
    what any threshold would have decided, and when.
    """
    peaks: list[list[Any]] = []

    def on_update(decision: Decision) -> None:
        if decision.hold or LABELS[decision.label].tier == "progress":  # as Session._maybe_update
            return
        score = decision.confidence if decision.score is None else decision.score
        if not peaks or score > peaks[-1][2]:
            peaks.append([round(decision.analysed_s, 3), decision.label, score, decision.confidence])

    return peaks, on_update


URL_SCHEMES = ("s3://", "gs://", "gcs://", "http://", "https://", "file://", "az://", "abfs://")
"""Inputs given as these URLs are read through fsspec (by the workers, on a cluster)."""


def is_url(text: str) -> bool:
    """Whether *text* is an input URL (``URL_SCHEMES``) rather than a local path."""
    return text.lower().startswith(URL_SCHEMES)


def _url_files(url: str) -> list[str]:
    """The audio files under *url* when it names a folder (a prefix), else the URL itself."""
    if not url.endswith("/") and (url.lower().startswith(("http://", "https://")) or Path(url).suffix):
        return [url]  # a file (asking a web server whether it is a folder would fetch it)
    fs, path = _filesystem(url)
    try:
        if not url.endswith("/") and not fs.isdir(path):
            return [url]
        found = fs.find(path)
    except OSError as exc:
        raise UsageError(f"cannot list {url}: {exc}") from None
    return sorted(
        fs.unstrip_protocol(name) for name in found if Path(name).suffix.lower() in AUDIO_EXTENSIONS
    )


def _filesystem(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path within it) of *url*; ``UsageError`` when it cannot be had."""
    try:
        import fsspec
    except ImportError:
        raise UsageError(
            f"{url}: reading URLs needs fsspec (pip install 'audio-classifier[cluster]' (from a checkout: pip install '.[cluster]'))"
        ) from None
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise UsageError(f"{url}: {exc}") from None


def expand_paths(paths: Iterable[str], on_skip: Callable[[str], None] | None = None) -> list[BatchItem]:
    """Files as given, and audio files found recursively under directories (sorted; symbolic
    links followed). A file with an audio extension that is not a regular file (a dangling
    link, a FIFO) is an input, so its record says what is wrong with it; folders that cannot
    be searched (unreadable, a link loop) are passed to *on_skip* with the reason. URLs
    (``URL_SCHEMES``) are inputs as given, or the audio files under a folder URL."""
    items: list[BatchItem] = []
    for given in paths:
        if is_url(given):
            items += [BatchItem(url, Path(url.split("://", 1)[1])) for url in _url_files(given)]
            continue
        p = Path(given)
        if p.is_dir():
            items += [BatchItem(str(f), f) for f in _audio_files(p, on_skip or (lambda reason: None))]
        else:
            items.append(BatchItem(given, p))
    return items


def _audio_files(root: Path, on_skip: Callable[[str], None]) -> list[Path]:
    found: list[Path] = []
    searched: set[tuple[int, int]] = set()  # folders by (device, inode): each searched once

    def unreadable(exc: OSError) -> None:
        on_skip(f"{exc.filename}: {exc.strerror}")

    for folder, subfolders, files in os.walk(root, followlinks=True, onerror=unreadable):
        stat = os.stat(folder)
        if (stat.st_dev, stat.st_ino) in searched:
            on_skip(f"{folder}: a symbolic link to a folder already searched (a loop or an alias)")
            subfolders[:] = []
            continue
        searched.add((stat.st_dev, stat.st_ino))
        found += [Path(folder, name) for name in files if Path(name).suffix.lower() in AUDIO_EXTENSIONS]
    return sorted(found)


def read_manifest(manifest: str | os.PathLike[str]) -> list[BatchItem]:
    """Rows of a CSV manifest with a ``path`` column; relative paths are relative to the
    manifest's folder. Other columns are carried into the output records (a column whose
    name is an output field is carried as ``manifest_<name>``). UTF-8, or UTF-16/32 with a
    byte-order mark; anything else is refused with the line it fails on."""
    import io

    manifest = Path(manifest)
    if manifest.is_dir():
        raise UsageError(f"manifest {manifest} is a directory, not a CSV file")
    reader = csv.DictReader(io.StringIO(read_text(manifest, "manifest"), newline=""))
    items: list[BatchItem] = []
    try:
        columns = reader.fieldnames or []
        if "path" not in columns:
            raise UsageError(
                f"manifest {manifest} has no 'path' column (columns: {', '.join(columns) or 'none'})"
            )
        for row in reader:
            given = (row.get("path") or "").strip()
            if not given:
                continue
            extra = {
                (f"manifest_{name}" if name in RECORD_KEYS else name): (value or "")
                for name, value in row.items()
                if name and name != "path"
            }
            path = Path(given) if Path(given).is_absolute() or is_url(given) else manifest.parent / given
            items.append(BatchItem(given, path, extra))
    except csv.Error as exc:
        raise UsageError(
            f"manifest {manifest}, data row {len(items) + 1} (after the header): {exc}"
        ) from None
    return items


def hints_of(extra: dict[str, str]) -> dict[str, str]:
    return {name: extra[name] for name in HINT_COLUMNS if extra.get(name)}


def classify_item(classifier: Classifier, item: BatchItem, options: ReadOptions) -> dict[str, Any]:
    """Classify one input; any failure becomes the record's ``error``."""
    record: dict[str, Any] = {"path": item.key, **item.extra}
    peaks, on_update = confidence_peaks() if options.peaks else ([], None)
    try:
        with _local_copy(item) as path:
            decision = classifier.classify_file(
                path,
                hints=hints_of(item.extra),
                channel=options.channel,
                raw_encoding=options.raw_encoding,
                raw_sample_rate=options.raw_sample_rate,
                on_update=on_update,
            )
        record.update(decision.to_dict())
        if options.peaks:
            record["peaks"] = peaks
    except AudioClassifierError as exc:
        record.update(dict.fromkeys(DECISION_FIELDS), error=f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - one bad input must never stop a batch
        record.update(dict.fromkeys(DECISION_FIELDS), error=f"internal error ({type(exc).__name__}): {exc}")
    return record


MAX_URL_BYTES = 256 * 2**20
"""Largest input read from a URL (a recording of early media is far smaller)."""


@contextmanager
def _local_copy(item: BatchItem) -> Iterator[Path]:
    """The input as a local file: its path, or a URL's content in a temporary file (with the
    URL's extension, which says how to read headerless audio)."""
    if not is_url(item.key):
        yield item.path
        return
    fs, path = _filesystem(item.key)
    with tempfile.NamedTemporaryFile(suffix=Path(path).suffix) as copy:
        try:
            with fs.open(path, "rb") as source:
                while chunk := source.read(2**20):
                    if copy.tell() + len(chunk) > MAX_URL_BYTES:
                        raise UnreadableAudioError(f"{item.key} is larger than {MAX_URL_BYTES // 2**20} MiB")
                    copy.write(chunk)
            copy.flush()
        except FileNotFoundError:
            raise UnreadableAudioError(f"no such object: {item.key}") from None
        except OSError as exc:
            raise UnreadableAudioError(f"cannot read {item.key}: {exc}") from None
        yield Path(copy.name)


# -- output ------------------------------------------------------------------------------


class RecordWriter:
    """Writes records to JSONL or CSV (by the file's extension) or JSONL on stdout.

    An existing output file is resumed: ``resume`` reads it, keeps its finished records and
    returns the inputs still to do. Records with an ``error`` are dropped from the file so
    their inputs are classified again; a record torn by a crash is dropped; a CSV whose
    columns differ from this run's is rewritten with this run's columns. The file is only
    ever rewritten whole, through a temporary file, so an interruption loses nothing.
    """

    def __init__(self, output: str | None, extra_columns: list[str]) -> None:
        self.output = output
        self.format = "csv" if output and output.lower().endswith(".csv") else "jsonl"
        self.extra_columns = list(extra_columns)
        self.columns = ["path", *extra_columns, *DECISION_FIELDS]
        self._handle: IO[str] | None = None
        self._csv: Any = None

    def resume(self, items: Sequence[BatchItem]) -> list[BatchItem]:
        """The inputs of *items* that the output file does not already hold a finished
        record for; prepares the file (see the class). Raises ``UsageError`` when the file
        cannot be read as an output of this program."""
        if not self.output or not os.path.isfile(self.output):
            return list(items)  # nothing written yet, or a device (/dev/null): nothing to resume
        records, header, complete = self._read_existing()
        finished = [r for r in records if not r.get("error")]
        if len(finished) != len(records) or not complete or (self.format == "csv" and header != self.columns):
            self._rewrite(finished)
        return remaining(items, finished, self.extra_columns)

    def _read_existing(self) -> tuple[list[dict[str, Any]], list[str], bool]:
        """(records, CSV header, whether the file ended with a whole record)."""
        assert self.output is not None
        try:
            with open(self.output, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise UsageError(
                f"cannot read the output file {self.output} to resume it: {exc.strerror}"
            ) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(
                f"the output file {self.output} is not UTF-8 (byte {exc.start}): not an output of "
                "this program; give another -o"
            ) from None
        if self.format == "csv":
            return self._read_csv(text)
        records: list[dict[str, Any]] = []
        lines = text.split("\n")
        complete = lines[-1] == ""
        for number, line in enumerate(lines[:-1] if complete else lines, start=1):
            last = number == len(lines) - (1 if complete else 0)
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict) or "path" not in record:
                if last:  # a record torn by a crash: done again
                    complete = False
                    break
                raise UsageError(
                    f"line {number} of {self.output} is not a record of this program: not "
                    "resuming into it; give another -o"
                )
            records.append(record)
        return records, [], complete

    def _read_csv(self, text: str) -> tuple[list[dict[str, Any]], list[str], bool]:
        import io

        if not text:
            return [], [], True
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        rows: list[list[str]] = []
        torn = not text.endswith(("\n", "\r"))  # the last row read is torn
        complete = not torn
        try:
            for row in reader:
                rows.append(row)
        except csv.Error:
            # strict parsing fails at a quote left open, which runs to the end of the file (a
            # crash tore the last record inside a quoted field), or at a malformed line
            if reader.line_num < sum(1 for _ in io.StringIO(text, newline="")):
                raise UsageError(
                    f"line {reader.line_num} of {self.output} is not CSV as this program writes "
                    "it: not resuming into it; give another -o"
                ) from None
            torn = complete = False  # the torn row raised: it is not among the rows
        if not rows or "path" not in rows[0]:
            raise UsageError(
                f"{self.output} has no 'path' column in its first line: not an output of this "
                "program; give another -o"
            )
        header, body = rows[0], rows[1:]
        if torn and body:
            body = body[:-1]
        for number, row in enumerate(body, start=2):
            if len(row) != len(header):
                raise UsageError(
                    f"record {number} of {self.output} has {len(row)} fields, its header "
                    f"{len(header)}: not resuming into it; give another -o"
                )
        return [dict(zip(header, row, strict=True)) for row in body], header, complete

    def _rewrite(self, records: list[dict[str, Any]]) -> None:
        """Replace the output file with *records* (in this run's format and columns)."""
        assert self.output is not None
        temporary = f"{self.output}.{os.getpid()}.tmp"
        try:
            with open(temporary, "w", newline="", encoding="utf-8") as handle:
                if self.format == "csv":
                    writer = csv.DictWriter(handle, self.columns, extrasaction="ignore")
                    writer.writeheader()
                    writer.writerows(records)  # already text: written back as read
                else:
                    handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
            os.replace(temporary, self.output)
        except OSError as exc:
            Path(temporary).unlink(missing_ok=True)
            raise UsageError(
                f"cannot rewrite the output file {self.output} to resume it: {exc.strerror}"
            ) from None

    def __enter__(self) -> RecordWriter:
        if self.output is None:
            self._handle = sys.stdout
        else:
            try:
                Path(self.output).parent.mkdir(parents=True, exist_ok=True)
                fresh = not os.path.exists(self.output) or os.path.getsize(self.output) == 0
                self._handle = open(self.output, "a", newline="", encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"cannot write the output file {self.output}: {exc.strerror}") from None
            if self.format == "csv":
                self._csv = csv.DictWriter(self._handle, self.columns, extrasaction="ignore")
                if fresh:
                    self._csv.writeheader()
        return self

    def write(self, record: dict[str, Any]) -> None:
        assert self._handle is not None
        try:
            if self._csv is not None:
                row = dict(record)
                for name in ("evidence", "notes", "transcript"):
                    if row.get(name) is not None:
                        row[name] = json.dumps(row[name], ensure_ascii=False)
                self._csv.writerow(row)
            else:
                self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._handle.flush()
        except OSError as exc:
            raise OutputError(
                f"cannot write to {self.output or 'standard output'}: {exc.strerror}; the records "
                "written so far are kept, and the same command resumes"
            ) from None

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None and self._handle is not sys.stdout:
            try:
                self._handle.close()
            except OSError:  # its last flush failed: write() already said why
                pass


class ParquetRecordWriter:
    """Writes records as a partitioned Parquet dataset: a folder (``-o OUT.parquet``) of
    part files, each written whole through a temporary name, with the CSV output's columns
    (evidence, notes and transcript as JSON text; manifest columns as text).

    Records are buffered and a part is written every ``PARQUET_PART_RECORDS`` records or
    ``PARQUET_PART_S`` seconds, and at the end; a run killed before a part is written
    classifies those inputs again when resumed (never twice in the output). ``resume``
    reads the parts like ``RecordWriter.resume``: finished records are kept, inputs whose
    records hold an error are done again (each part holding one is replaced, through a
    temporary file, by the same part without them)."""

    def __init__(self, output: str, extra_columns: list[str]) -> None:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UsageError(
                "Parquet output needs pyarrow: pip install 'audio-classifier[cluster]' (from a checkout: pip install '.[cluster]')"
            ) from None
        self.output = output
        self.folder = Path(output)
        self.extra_columns = list(extra_columns)
        self.columns = ["path", *extra_columns, *DECISION_FIELDS]
        self._buffer: list[dict[str, Any]] = []
        self._flushed = time.monotonic()
        self._parts = 0
        self._run = f"{os.getpid()}-{int(time.time())}"

    def resume(self, items: Sequence[BatchItem]) -> list[BatchItem]:
        if not self.folder.exists():
            return list(items)
        if not self.folder.is_dir():
            raise UsageError(
                f"{self.output} is a file; a Parquet output is a folder of parts: give another -o"
            )
        for leftover in self.folder.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)
        import pyarrow.parquet as pq

        by_part: dict[Path, list[dict[str, Any]]] = {}
        for part in sorted(self.folder.glob("part-*.parquet")):
            try:
                by_part[part] = pq.read_table(part).to_pylist()
            except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds
                raise UsageError(f"{part} is not a readable Parquet part ({exc}): give another -o") from None
        records = [r for held in by_part.values() for r in held]
        finished = [r for r in records if not r.get("error")]
        for part, held in by_part.items():
            if any(r.get("error") for r in held):
                self._replace_part(part, [r for r in held if not r.get("error")])
        return remaining(items, finished, self.extra_columns)

    def _table(self, records: list[dict[str, Any]]):
        import pyarrow as pa

        numbers = {"confidence", "score", "decided_at_s", "analysed_s"}
        flags = {"final", "truncated"}
        fields, arrays = [], []
        for name in self.columns:
            values = [r.get(name) for r in records]
            if name in numbers:
                kind = pa.float64()
            elif name in flags:
                kind = pa.bool_()
            else:
                kind = pa.string()
                values = [
                    None if v is None else v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                    for v in values
                ]
            fields.append(pa.field(name, kind))
            arrays.append(pa.array(values, type=kind))
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))

    def _replace_part(self, part: Path, records: list[dict[str, Any]]) -> None:
        """Put *records* in place of *part* (through a temporary file; removed if empty)."""
        import pyarrow.parquet as pq

        temporary = part.with_name(f".{part.name}.tmp")
        try:
            if records:
                pq.write_table(self._table(records), temporary)
                os.replace(temporary, part)
            else:
                part.unlink()
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise UsageError(f"cannot rewrite {part} to resume: {exc.strerror}") from None

    def _write_part(self, records: list[dict[str, Any]], tag: str) -> None:
        import pyarrow.parquet as pq

        if not records:
            return
        self._parts += 1
        final = self.folder / f"part-{self._run}-{tag}-{self._parts:05d}.parquet"
        temporary = final.with_name(f".{final.name}.tmp")  # dataset readers skip dot files
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(self._table(records), temporary)
            os.replace(temporary, final)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise OutputError(
                f"cannot write {final}: {exc.strerror}; the parts written so far are kept, and the "
                "same command resumes"
            ) from None

    def __enter__(self) -> ParquetRecordWriter:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot make the output folder {self.output}: {exc.strerror}") from None
        return self

    def write(self, record: dict[str, Any]) -> None:
        self._buffer.append(record)
        if len(self._buffer) >= PARQUET_PART_RECORDS or time.monotonic() - self._flushed > PARQUET_PART_S:
            self._flush()

    def _flush(self) -> None:
        self._write_part(self._buffer, "run")
        self._buffer = []
        self._flushed = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self._flush()


PARQUET_PART_RECORDS = 5000
PARQUET_PART_S = 30.0
"""A Parquet part is written every this many records or seconds (what a killed run does
again when resumed)."""


def record_writer(output: str | None, extra_columns: list[str]) -> RecordWriter | ParquetRecordWriter:
    """The writer for *output*: Parquet parts for a ``.parquet`` folder, else JSONL or CSV."""
    if output and output.lower().rstrip("/").endswith(".parquet"):
        return ParquetRecordWriter(output.rstrip("/"), extra_columns)
    return RecordWriter(output, extra_columns)


# -- running ------------------------------------------------------------------------------

_worker_state: dict[str, Any] = {}
"""Per worker process: the classifier it loaded once (set by ``_init_worker``)."""

PARENT_POLL_S = 1.0
"""How often a pool worker checks that the process that started it is still alive."""


def exit_with_parent() -> None:
    """In a pool worker: exit when the parent process dies.

    A worker forked by a batch that is killed outright (SIGKILL, the OOM killer) holds the
    pool's queue open itself, so it would wait on it forever, holding its models' memory.
    A daemon thread notices the new parent (init) within ``PARENT_POLL_S`` and exits.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _init_worker(
    config: ClassifierConfig, factory: Callable[[ClassifierConfig], Classifier], options: ReadOptions
) -> None:
    exit_with_parent()
    _worker_state["classifier"] = factory(config)
    _worker_state["options"] = options


def _work(item: BatchItem) -> dict[str, Any]:
    return classify_item(_worker_state["classifier"], item, _worker_state["options"])


def run(
    items: list[BatchItem],
    writer: RecordWriter | ParquetRecordWriter,
    *,
    config: ClassifierConfig,
    factory: Callable[[ClassifierConfig], Classifier] = Classifier,
    options: ReadOptions = ReadOptions(),
    jobs: int = 1,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    cluster: str | None = None,
) -> tuple[int, int]:
    """Classify *items*, writing each record as soon as it is ready.

    Returns (succeeded, failed). With ``jobs > 1`` records arrive in completion order. With
    *cluster* (a Dask scheduler address, or ``local``: a LocalCluster of *jobs* processes)
    the work runs there (``cluster.py``).
    """
    succeeded = failed = 0

    def emit(record: dict[str, Any]) -> None:
        nonlocal succeeded, failed
        writer.write(record)
        if record.get("error"):
            failed += 1
        else:
            succeeded += 1
        if on_record is not None:
            on_record(record)

    if cluster:
        from .cluster import connect, run_cluster

        with connect(cluster, jobs) as client:
            run_cluster(items, config=config, options=options, client=client, emit=emit)
        return succeeded, failed
    if jobs <= 1:
        classifier = factory(config)
        for item in items:
            emit(classify_item(classifier, item, options))
        return succeeded, failed
    for record in _run_pool(items, config, factory, options, jobs):
        emit(record)
    return succeeded, failed


def _run_pool(
    items: list[BatchItem],
    config: ClassifierConfig,
    factory: Callable[[ClassifierConfig], Classifier],
    options: ReadOptions,
    jobs: int,
) -> Iterator[dict[str, Any]]:
    """Records from a process pool. When a worker process dies (a crash in native code),
    the inputs that were in flight are classified again one at a time, each in a fresh
    single-worker pool, so only the input that kills a worker gets a crash record."""
    queue = iter(items)
    while True:
        pool = ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=(config, factory, options))
        running: dict[Future, BatchItem] = {}
        suspects: list[BatchItem] = []
        try:
            for item in queue:
                running[pool.submit(_work, item)] = item
                if len(running) >= jobs * IN_FLIGHT_PER_JOB:
                    break
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    item = running.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        suspects.append(item)
                if suspects:
                    suspects += running.values()
                    running.clear()
                    break
                for item in queue:
                    running[pool.submit(_work, item)] = item
                    if len(running) >= jobs * IN_FLIGHT_PER_JOB:
                        break
        finally:
            pool.shutdown(wait=not suspects, cancel_futures=True)
        for item in suspects:
            yield _isolated(item, config, factory, options)
        if not suspects:
            return


def _isolated(
    item: BatchItem,
    config: ClassifierConfig,
    factory: Callable[[ClassifierConfig], Classifier],
    options: ReadOptions,
) -> dict[str, Any]:
    """Classify one input in a worker of its own: its record, or a crash record if it kills it."""
    with ProcessPoolExecutor(1, initializer=_init_worker, initargs=(config, factory, options)) as pool:
        try:
            return pool.submit(_work, item).result()
        except BrokenProcessPool:
            return _crash_record(item)


def _crash_record(item: BatchItem) -> dict[str, Any]:
    return error_record(item, "internal error: the worker process died while classifying this input")


def error_record(item: BatchItem, error: str) -> dict[str, Any]:
    """The record of an input that got no decision: its path and manifest row, the
    decision's fields empty, and *error*."""
    record: dict[str, Any] = {"path": item.key, **item.extra}
    record.update(dict.fromkeys(DECISION_FIELDS), error=error)
    return record
