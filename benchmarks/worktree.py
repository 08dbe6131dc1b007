"""A git worktree of another revision, for benchmarks that measure two trees in one run."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
"""This checkout: where worktrees are made from, and where the measured tree runs."""


@contextmanager
def worktree(revision: str, folder: Path) -> Iterator[Path]:
    """A detached git worktree of *revision* under *folder*; removed on exit."""
    tree = folder / "baseline"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", "--force", str(tree), revision],
        check=True,
        capture_output=True,
    )
    try:
        yield tree
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], capture_output=True
        )
