"""classify --cluster: a real Dask scheduler and two worker processes, inputs in an
S3-compatible server (moto, its own process), read by the workers; the client killed
halfway and run again."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.dask_processes import DaskCluster, s3_env, s3_server, upload

from .conftest import FIXTURES, ROOT

BUCKET = "calls"


@pytest.fixture(scope="module")
def s3():
    files = {f"fixtures/{p.relative_to(FIXTURES)}": p for p in sorted(FIXTURES.rglob("*.wav"))}
    with s3_server() as endpoint:
        upload(endpoint, BUCKET, files)
        yield endpoint, files


@pytest.fixture(scope="module")
def cluster(s3):
    with DaskCluster(2, env=s3_env(s3[0])) as running:
        yield running


def _cli(*args, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audio_classifier.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        timeout=timeout,
    )


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _key(record: dict) -> tuple:
    return record["label"], record["confidence"], record["decided_at_s"]


def _manifest(folder: Path, files: dict[str, Path], rows: int) -> Path:
    """A manifest of *rows* rows (a ``row`` column) over the uploaded files in turn."""
    manifest = folder / "manifest.csv"
    keys = sorted(files)
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "row"])
        for i in range(rows):
            writer.writerow([f"s3://{BUCKET}/{keys[i % len(keys)]}", i])
    return manifest


def _start(manifest: Path, out: Path, cluster: DaskCluster, env: dict[str, str]) -> subprocess.Popen:
    """The classify command on the cluster, as a process of its own."""
    command = [sys.executable, "-m", "audio_classifier.cli", "classify", "--manifest", str(manifest),
               "--cluster", cluster.address, "--no-asr", "-o", str(out)]  # fmt: skip
    return subprocess.Popen(
        command,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for_records(out: Path, count: int, run: subprocess.Popen) -> None:
    deadline = time.monotonic() + 240
    while not out.exists() or len(out.read_text().splitlines()) < count:
        assert run.poll() is None, run.stderr.read().decode()
        assert time.monotonic() < deadline, "no records came back"
        time.sleep(0.1)


def test_cluster_run_over_s3_equals_the_local_run(s3, cluster, tmp_path):
    endpoint, files = s3
    env = s3_env(endpoint)
    out = tmp_path / "cluster.jsonl"
    done = _cli(
        "classify", f"s3://{BUCKET}/fixtures/", "--cluster", cluster.address, "--no-asr", "-o", out, env=env
    )
    assert done.returncode == 0, done.stderr + cluster.log()
    remote = {r["path"]: r for r in _records(out)}
    assert sorted(remote) == sorted(f"s3://{BUCKET}/{key}" for key in files)
    local_out = tmp_path / "local.jsonl"
    done = _cli("classify", *files.values(), "--no-asr", "-o", local_out, env={})
    assert done.returncode == 0, done.stderr
    local = {r["path"]: r for r in _records(local_out)}
    for key, path in files.items():
        assert _key(remote[f"s3://{BUCKET}/{key}"]) == _key(local[str(path)]), key
    # the records name what was read, and a missing object is an error record, not a crash
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "row"])
        writer.writerow([f"s3://{BUCKET}/fixtures/speech/vacant.wav", 1])
        writer.writerow([f"s3://{BUCKET}/no/such.wav", 2])
    missing = tmp_path / "missing.jsonl"
    done = _cli(
        "classify", "--manifest", manifest, "--cluster", cluster.address, "--no-asr", "-o", missing, env=env
    )
    assert done.returncode == 1
    errors = {r["path"]: r["error"] for r in _records(missing)}
    assert errors[f"s3://{BUCKET}/fixtures/speech/vacant.wav"] is None
    assert "no such object" in errors[f"s3://{BUCKET}/no/such.wav"]


def test_killed_and_resumed_on_the_cluster_loses_and_repeats_nothing(s3, cluster, tmp_path):
    endpoint, files = s3
    env = s3_env(endpoint)
    rows = 240
    manifest = _manifest(tmp_path, files, rows)
    out = tmp_path / "out.jsonl"
    first = _start(manifest, out, cluster, env)
    _wait_for_records(out, rows // 4, first)
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    assert len(_records(out)) < rows, "the run finished before it was killed: the check proves nothing"
    done = _cli(
        "classify", "--manifest", manifest, "--cluster", cluster.address, "--no-asr", "-o", out, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr
    records = _records(out)
    assert sorted(int(r["row"]) for r in records) == list(range(rows))  # none lost, none twice
    assert all(r["error"] is None for r in records)


def test_a_worker_killed_mid_run_loses_nothing(s3, cluster, tmp_path):
    """The scheduler gives a dead worker's tasks to the other: the run completes, every
    input once, no error records; a replacement worker joins afterwards."""
    from distributed import Client

    endpoint, files = s3
    rows = 160
    out = tmp_path / "out.jsonl"
    run = _start(_manifest(tmp_path, files, rows), out, cluster, s3_env(endpoint))
    _wait_for_records(out, 20, run)
    victim = cluster.worker_processes()[0]
    victim.send_signal(signal.SIGKILL)
    assert len(out.read_text().splitlines()) < rows, "the run finished first: the check proves nothing"
    victim.wait(10)
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr.decode() + cluster.log()
    records = _records(out)
    assert sorted(int(r["row"]) for r in records) == list(range(rows))
    assert all(r["error"] is None for r in records)
    cluster.add_worker()
    with Client(cluster.address, timeout=60) as client:
        client.wait_for_workers(2, timeout=120)


def test_parquet_output_has_the_records_fields_and_resumes(s3, cluster, tmp_path):
    import pyarrow.parquet as pq

    endpoint, files = s3
    env = s3_env(endpoint)
    jsonl, parquet = tmp_path / "out.jsonl", tmp_path / "out.parquet"

    def classify_bucket(out: Path) -> subprocess.CompletedProcess:
        return _cli(
            "classify",
            f"s3://{BUCKET}/fixtures/",
            "--cluster",
            cluster.address,
            "--no-asr",
            "-o",
            out,
            env=env,
        )

    for out in (jsonl, parquet):
        done = classify_bucket(out)
        assert done.returncode == 0, done.stderr
    table = pq.read_table(parquet)
    expected = {r["path"]: r for r in _records(jsonl)}
    # the CSV output's columns: every field of the JSONL record but 'hold' (null when final)
    assert set(table.column_names) == set(next(iter(expected.values()))) - {"hold"}
    rows = table.to_pylist()
    assert len(rows) == len(files)
    for row in rows:
        record = expected[row["path"]]
        assert _key(row) == _key(record)
        assert json.loads(row["evidence"]) == record["evidence"]
    # run again: everything is there, nothing is added
    done = classify_bucket(parquet)
    assert done.returncode == 0 and "resuming" in done.stderr
    assert pq.read_table(parquet).num_rows == len(files)
    # a part with a failed record is rewritten and the input done again
    broken = rows[0] | {"label": None, "confidence": None, "error": "internal error: test"}
    for part in parquet.glob("*.parquet"):
        part.unlink()
    pq.write_table(_table_of([broken]), parquet / "part-x-run-00001.parquet")
    done = classify_bucket(parquet)
    assert done.returncode == 0, done.stderr
    final = pq.read_table(parquet).to_pylist()
    assert len(final) == len(files) and all(r["error"] is None for r in final)


def _table_of(records: list[dict]):
    from audio_classifier.batch import ParquetRecordWriter

    writer = ParquetRecordWriter("unused.parquet", ["row"] if "row" in records[0] else [])
    return writer._table(records)


def test_url_inputs_without_a_cluster(tmp_path):
    """fsspec URLs work in a local run too: a file:// folder is searched for audio, and each
    input is read through fsspec; the records equal those of the plain paths."""
    folder = FIXTURES / "speech"
    out, plain = tmp_path / "urls.jsonl", tmp_path / "plain.jsonl"
    done = _cli("classify", f"file://{folder}/", "--no-asr", "-o", out, env={})
    assert done.returncode == 0, done.stderr
    assert _cli("classify", folder, "--no-asr", "-o", plain, env={}).returncode == 0
    by_url = {r["path"]: r for r in _records(out)}
    by_path = {r["path"]: r for r in _records(plain)}
    assert sorted(by_url) == sorted(f"file://{p}" for p in by_path)
    for path, record in by_path.items():
        assert _key(by_url[f"file://{path}"]) == _key(record)
    missing = _cli("classify", f"file://{folder}/nothing-here.wav", "--no-asr", env={})
    assert missing.returncode == 1 and "no such object" in missing.stdout


def test_http_urls_a_file_and_a_folder(tmp_path):
    """A web server's file and folder listing (Python's http.server) as inputs: the records
    name the URLs as given or found, once each."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(FIXTURES))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.log_message = lambda *args: None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        out = tmp_path / "out.jsonl"
        done = _cli("classify", f"{base}/speech/", f"{base}/tones/cn_busy.wav", "--no-asr", "-o", out, env={})
        assert done.returncode == 0, done.stderr
        paths = [r["path"] for r in _records(out)]
    finally:
        server.shutdown()
    expected = [f"{base}/speech/{p.name}" for p in sorted((FIXTURES / "speech").glob("*.wav"))]
    assert sorted(paths) == sorted([*expected, f"{base}/tones/cn_busy.wav"])
