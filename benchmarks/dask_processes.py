"""Real processes for the cluster's tests and benchmark: a Dask scheduler and workers
(``dask scheduler``, ``dask worker``) and an S3-compatible server (moto's server mode),
each a separate process started here and stopped on exit."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
S3_KEY, S3_SECRET = "testing", "testing"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def s3_env(endpoint: str) -> dict[str, str]:
    """Environment that points boto and fsspec's s3fs at *endpoint*."""
    return {
        "AWS_ACCESS_KEY_ID": S3_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "FSSPEC_S3_ENDPOINT_URL": endpoint,
        "FSSPEC_S3_KEY": S3_KEY,
        "FSSPEC_S3_SECRET": S3_SECRET,
    }


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free loopback port; yields its endpoint URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the S3 server did not start") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        _stop(process)


def upload(endpoint: str, bucket: str, files: dict[str, Path]) -> None:
    """Put *files* (key -> local path) into *bucket*, made if missing."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
    )
    try:
        client.create_bucket(Bucket=bucket)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    for key, path in files.items():
        client.upload_file(str(path), bucket, key)


class DaskCluster:
    """A scheduler and *workers* worker processes (one thread each), with *env*."""

    def __init__(self, workers: int, env: dict[str, str] | None = None) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="audio-classifier-dask-"))
        self.scheduler_file = self.folder / "scheduler.json"
        self.env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        self.env.pop("AUDIO_CLASSIFIER_MODEL", None)
        self.processes: list[subprocess.Popen] = []
        self._logs: list = []
        self.workers = workers
        self.address = ""

    def _spawn(self, *args: str) -> subprocess.Popen:
        log = open(self.folder / f"{args[0]}-{len(self.processes)}.log", "wb")
        self._logs.append(log)
        process = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_" + args[0], *args[1:]],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.folder,
        )
        self.processes.append(process)
        return process

    def start(self) -> DaskCluster:
        import json

        from distributed import Client

        self._spawn(
            "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
            "--scheduler-file", str(self.scheduler_file),
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not self.scheduler_file.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the dask scheduler did not start: {self.log()}")
            time.sleep(0.1)
        time.sleep(0.2)
        self.address = json.loads(self.scheduler_file.read_text())["address"]
        for _ in range(self.workers):
            self.add_worker()
        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(self.workers, timeout=120)
        return self

    def add_worker(self) -> subprocess.Popen:
        return self._spawn(
            "worker",
            self.address,
            "--nworkers",
            "1",
            "--nthreads",
            "1",
            "--no-dashboard",
            "--host",
            "127.0.0.1",
        )

    def worker_processes(self) -> list[subprocess.Popen]:
        return [p for p in self.processes[1:] if p.poll() is None]

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in sorted(self.folder.glob("*.log")))

    def stop(self) -> None:
        import shutil

        for process in reversed(self.processes):
            _stop(process)
        for log in self._logs:
            log.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> DaskCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
