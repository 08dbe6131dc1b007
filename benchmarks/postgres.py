"""A throwaway PostgreSQL server on a free loopback port, for the registry's tests and
benchmarks: initdb into a temporary folder, pg_ctl start, stop and remove on exit. As root
it runs as the postgres user (the server refuses root)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
)
"""A disposable server: durability is not what it is for."""


def postgres_bin(name: str) -> str:
    """A PostgreSQL program (Debian keeps them in /usr/lib/postgresql/VERSION/bin)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name)]
    if not found or not found[-1]:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed: tests/setup installs the postgresql package"
        )
    return found[-1]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server; yield its admin URL (``postgresql+psycopg://postgres@127.0.0.1:PORT``)."""
    root = Path(tempfile.mkdtemp(prefix="audio-classifier-pg-"))  # not under a folder private to root
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = root / "data"
    initdb = [
        postgres_bin("initdb"),
        "-D",
        str(data),
        "-A",
        "trust",
        "-U",
        "postgres",
        "--no-sync",
        "-E",
        "UTF8",
    ]
    subprocess.run([*as_user, *initdb], check=True, capture_output=True)
    options = f"-p {port} -k {root} {SERVER_OPTIONS}"
    pg_ctl = postgres_bin("pg_ctl")
    subprocess.run(
        [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def create_database(admin_url: str, name: str) -> str:
    """Create database *name* on the server; return its URL."""
    import sqlalchemy as sa

    engine = sa.create_engine(f"{admin_url}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return f"{admin_url}/{name}"
