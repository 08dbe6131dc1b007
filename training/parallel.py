"""Run one recipe step over many items on a process pool, results in order, with progress."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from audio_classifier.batch import exit_with_parent


def map_in_order(
    function: Callable[[Any], Any],
    tasks: Sequence[Any],
    jobs: int,
    *,
    desc: str,
    unit: str,
    chunksize: int,
    progress: bool = True,
) -> list[Any]:
    """``[function(t) for t in tasks]`` on *jobs* processes, with a tqdm bar on stderr."""
    from tqdm import tqdm

    with ProcessPoolExecutor(jobs, initializer=exit_with_parent) as pool:
        results = pool.map(function, tasks, chunksize=chunksize)
        return list(
            tqdm(results, total=len(tasks), desc=desc, unit=unit, disable=not progress, file=sys.stderr)
        )
