"""Batch classification on a Dask cluster (``classify --cluster ADDRESS``).

The client sends batches of inputs as tasks; each worker process builds the classifier once
(``_worker_classifier``: kept on the worker object, keyed by configuration) and returns the
batch's records, which the client writes as they arrive through the same ``RecordWriter``
as a local run: resume, retries of failed inputs and the output formats are the local
run's. Inputs are local paths (which every worker must see) or fsspec URLs (``s3://``,
``gs://``, ``http(s)://``, ``file://``) that the workers read. A task whose worker dies is
retried by the scheduler; one that keeps killing workers fails only its own inputs, as error
records, which the next run retries.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

from .batch import BatchItem, ReadOptions, classify_item, error_record
from .config import ClassifierConfig
from .errors import UsageError

TASK_SECONDS = 2.0
"""CPU seconds of work a task should hold: the scheduler's overhead per task (a few ms,
``benchmarks/cluster.py``) stays under 1 %, and a lost worker loses little."""

FILE_SECONDS = 0.05
"""CPU seconds one input costs with early decisions (call-shaped recordings, default
channels, ``benchmarks/throughput.py``: about 150x real time on 5-10 s of audio)."""

MAX_TASK_FILES = 256
"""Most inputs in one task (short inputs would otherwise make tasks of thousands)."""
WAIT_FOR_WORKERS_S = 120.0
"""How long a run waits for the scheduler's first worker before it gives up."""
IN_FLIGHT_PER_WORKER = 3
"""Tasks queued per worker thread: keeps workers busy without holding every future."""

LOCAL = "local"
"""``--cluster local``: a LocalCluster of worker processes on this machine."""


def task_files(items: int, workers: int) -> int:
    """Inputs per task: ``TASK_SECONDS`` of work, fewer when there are too few inputs to
    give every worker several tasks."""
    per_task = max(1, round(TASK_SECONDS / FILE_SECONDS))
    spread = max(1, math.ceil(items / (workers * IN_FLIGHT_PER_WORKER)))
    return max(1, min(per_task, spread, MAX_TASK_FILES))


WORKER_TRIM_BYTES = 4 * 2**20
"""glibc's trim and mmap thresholds in a worker process that classifies. Dask's nanny
starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which hands every freed block over
64 KiB back to the kernel and fixes the mmap threshold (no longer adapting to the arrays in
use); the analysis allocates and frees such arrays for every block of every call and ran
about 1.7x slower so (40 files: 2.87 s of CPU against 1.73 s). Both at 4 MiB: 1.56 s. A
worker then holds on to at most a few MiB of freed memory."""

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
"""``mallopt``'s parameter numbers (glibc's malloc.h)."""


def _allocator_for_arrays() -> None:
    """Raise a worker's trim and mmap thresholds to ``WORKER_TRIM_BYTES`` when the
    environment set the trim threshold lower (glibc only; elsewhere nothing)."""
    import ctypes
    import ctypes.util
    import os

    current = os.environ.get("MALLOC_TRIM_THRESHOLD_", "")
    if not current.isdigit() or int(current) >= WORKER_TRIM_BYTES:
        return
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "mallopt"):
            libc.mallopt(M_TRIM_THRESHOLD, WORKER_TRIM_BYTES)
            libc.mallopt(M_MMAP_THRESHOLD, WORKER_TRIM_BYTES)
    except OSError:
        pass


def _worker_classifier(config: ClassifierConfig):
    """This worker process's classifier for *config*, built on its first task."""
    from distributed import get_worker

    from .classifier import Classifier

    worker = get_worker()
    cache: dict[str, Any] = worker.__dict__.setdefault("audio_classifier", {})
    key = repr(config)
    if key not in cache:
        if not cache:
            _allocator_for_arrays()
        cache[key] = Classifier(config)
    return cache[key]


def classify_batch(
    config: ClassifierConfig, options: ReadOptions, items: list[BatchItem]
) -> list[dict[str, Any]]:
    """A task: the records of *items*, in order (run on a worker)."""
    classifier = _worker_classifier(config)
    return [classify_item(classifier, item, options) for item in items]


def require_dask() -> None:
    """Raise ``UsageError`` unless dask's distributed scheduler can be imported."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise UsageError(
            "--cluster needs dask's distributed scheduler: pip install 'audio-classifier[cluster]' "
            "(from a checkout: pip install '.[cluster]')"
        ) from None


def connect(address: str, workers: int | None = None) -> Any:
    """A dask Client for *address* (``local``: a LocalCluster of *workers* processes, one
    thread each; ``classify --jobs``, 1 by default); the caller closes it."""
    try:
        from distributed import Client
    except ImportError:
        raise UsageError(
            "--cluster needs dask's distributed scheduler: pip install 'audio-classifier[cluster]' (from a checkout: pip install '.[cluster]')"
        ) from None
    try:
        if address == LOCAL:  # the client owns the cluster: closing it stops the workers
            return Client(
                n_workers=workers or None, threads_per_worker=1, processes=True, dashboard_address=None
            )
        return Client(address, timeout=30)
    except OSError as exc:
        raise UsageError(f"cannot reach the dask scheduler at {address}: {exc}") from None


def run_cluster(
    items: list[BatchItem],
    *,
    config: ClassifierConfig,
    options: ReadOptions,
    client: Any,
    emit: Callable[[dict[str, Any]], None],
) -> None:
    """Classify *items* on *client*'s cluster; *emit* each record as its task returns."""
    from distributed import as_completed

    try:
        client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)
    except TimeoutError:
        raise UsageError(f"the dask scheduler has had no worker for {WAIT_FOR_WORKERS_S:g} s") from None

    def threads() -> int:
        return max(1, sum(client.nthreads().values()))

    size = task_files(len(items), threads())
    batches = iter([items[i : i + size] for i in range(0, len(items), size)])
    # the configuration and options travel once, not with every task
    config_f, options_f = client.scatter([config, options], broadcast=True)
    running: dict[Any, list[BatchItem]] = {}

    def submit(batch: list[BatchItem]) -> Any:
        future = client.submit(classify_batch, config_f, options_f, batch, pure=False)
        running[future] = batch
        return future

    pending = as_completed()
    for batch in _take(batches, threads() * IN_FLIGHT_PER_WORKER):
        pending.add(submit(batch))
    for future in pending:
        batch = running.pop(future)
        try:
            records = future.result()
        except Exception as exc:  # noqa: BLE001 - a task's failure fails its inputs only
            why = f"internal error: the task failed on the cluster ({type(exc).__name__}: {exc})"
            records = [error_record(item, why) for item in batch]
        for record in records:
            emit(record)
        # workers may have joined or left: keep IN_FLIGHT_PER_WORKER tasks per thread queued
        for batch in _take(batches, max(1, threads() * IN_FLIGHT_PER_WORKER - len(running))):
            pending.add(submit(batch))


def _take(iterator: Iterator[Any], n: int) -> list[Any]:
    out = []
    for value in iterator:
        out.append(value)
        if len(out) >= n:
            break
    return out
