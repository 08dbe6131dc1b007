"""Batch classification: inputs from paths or a manifest, records out as they are made.

Properties a QA team relies on: one record per input; a broken input becomes a record
with ``error`` and the batch goes on; every record is flushed when written, so a crash
loses nothing already done; running the same command again skips inputs already in the
output (resume); worker processes each load the classifier once.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .audio import AUDIO_EXTENSIONS, SAMPLE_RATE
from .classifier import Classifier
from .config import ClassifierConfig
from .errors import AudioClassifierError
from .evidence import Decision
from .labels import LABELS

DECISION_FIELDS = (
    "label",
    "label_zh",
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
)
"""Fields of every output record after ``path`` and the manifest's own columns."""

HINT_COLUMNS = ("sip_status", "q850_cause")
IN_FLIGHT_PER_JOB = 4
"""Tasks queued per worker: keeps workers busy without holding a million futures."""


class UsageError(AudioClassifierError, ValueError):
    """The batch was asked for something impossible (bad manifest, unknown format)."""


@dataclass(frozen=True)
class BatchItem:
    """One input: ``key`` is the path as the user gave it (and as it appears in the output)."""

    key: str
    path: Path
    extra: dict[str, str] = field(default_factory=dict)


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


def expand_paths(paths: Iterable[str]) -> list[BatchItem]:
    """Files as given, and audio files found recursively under directories (sorted)."""
    items: list[BatchItem] = []
    for given in paths:
        p = Path(given)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
            items += [BatchItem(str(f), f) for f in found]
        else:
            items.append(BatchItem(given, p))
    return items


def read_manifest(manifest: str | os.PathLike[str]) -> list[BatchItem]:
    """Rows of a CSV manifest with a ``path`` column; relative paths are relative to the
    manifest's folder. Other columns are carried into the output records (a column whose
    name is an output field is carried as ``manifest_<name>``)."""
    manifest = Path(manifest)
    try:
        handle = open(manifest, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"cannot read manifest {manifest}: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        if "path" not in columns:
            raise UsageError(
                f"manifest {manifest} has no 'path' column (columns: {', '.join(columns) or 'none'})"
            )
        items = []
        for row in reader:
            given = (row.get("path") or "").strip()
            if not given:
                continue
            extra = {
                (f"manifest_{name}" if name in DECISION_FIELDS else name): (value or "")
                for name, value in row.items()
                if name and name != "path"
            }
            path = Path(given) if Path(given).is_absolute() else manifest.parent / given
            items.append(BatchItem(given, path, extra))
    return items


def hints_of(extra: dict[str, str]) -> dict[str, str]:
    return {name: extra[name] for name in HINT_COLUMNS if extra.get(name)}


def classify_item(classifier: Classifier, item: BatchItem, options: ReadOptions) -> dict[str, Any]:
    """Classify one input; any failure becomes the record's ``error``."""
    record: dict[str, Any] = {"path": item.key, **item.extra}
    peaks, on_update = confidence_peaks() if options.peaks else ([], None)
    try:
        decision = classifier.classify_file(
            item.path,
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


# -- output ------------------------------------------------------------------------------


class RecordWriter:
    """Writes records to JSONL or CSV (by the file's extension) or JSONL on stdout."""

    def __init__(self, output: str | None, extra_columns: list[str]) -> None:
        self.output = output
        self.format = "csv" if output and output.lower().endswith(".csv") else "jsonl"
        self.columns = ["path", *extra_columns, *DECISION_FIELDS]
        self._handle: IO[str] | None = None
        self._csv: Any = None

    def done_keys(self) -> set[str]:
        """Keys of inputs already in the output file (for resume); repairs a torn last line."""
        if not self.output or not os.path.exists(self.output):
            return set()
        _drop_partial_last_line(self.output)
        keys: set[str] = set()
        with open(self.output, newline="", encoding="utf-8") as handle:
            if self.format == "csv":
                for row in csv.DictReader(handle):
                    if row.get("path"):
                        keys.add(row["path"])
            else:
                for line in handle:
                    try:
                        keys.add(json.loads(line)["path"])
                    except (ValueError, KeyError, TypeError):
                        continue
        return keys

    def __enter__(self) -> RecordWriter:
        if self.output is None:
            self._handle = sys.stdout
        else:
            Path(self.output).parent.mkdir(parents=True, exist_ok=True)
            fresh = not os.path.exists(self.output) or os.path.getsize(self.output) == 0
            self._handle = open(self.output, "a", newline="", encoding="utf-8")
            if self.format == "csv":
                self._csv = csv.DictWriter(self._handle, self.columns, extrasaction="ignore")
                if fresh:
                    self._csv.writeheader()
        return self

    def write(self, record: dict[str, Any]) -> None:
        assert self._handle is not None
        if self._csv is not None:
            row = dict(record)
            for name in ("evidence", "notes"):
                if row.get(name) is not None:
                    row[name] = json.dumps(row[name], ensure_ascii=False)
            self._csv.writerow(row)
        else:
            self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None and self._handle is not sys.stdout:
            self._handle.close()


def _drop_partial_last_line(path: str) -> None:
    """A crash mid-write can leave a line without its newline: cut it so it is redone."""
    with open(path, "rb+") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        block = min(size, 1 << 20)
        handle.seek(size - block)
        tail = handle.read(block)
        cut = tail.rfind(b"\n")
        handle.truncate(size - block + cut + 1 if cut >= 0 else 0)


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
    writer: RecordWriter,
    *,
    config: ClassifierConfig,
    factory: Callable[[ClassifierConfig], Classifier] = Classifier,
    options: ReadOptions = ReadOptions(),
    jobs: int = 1,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[int, int]:
    """Classify *items*, writing each record as soon as it is ready.

    Returns (succeeded, failed). With ``jobs > 1`` records arrive in completion order.
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
    record: dict[str, Any] = {"path": item.key, **item.extra}
    record.update(
        dict.fromkeys(DECISION_FIELDS),
        error="internal error: the worker process died while classifying this input",
    )
    return record
