"""The fingerprint channel: enrolled carrier recordings, identified by landmarks
(``fingerprint.py`` hashes and matches; ``samples.py`` keeps the library)."""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE
from ..evidence import Evidence
from ..fingerprint import FingerprintConfig, Index, LandmarkStream, Matcher
from ..samples import CHANNEL, MIN_MARGIN, MIN_VOTES, SCORE_BY_VOTES, SampleInfo, SampleLibrary
from .base import ChannelInfo

PENDING_VOTES = 8
"""Aligned votes from which a recording, leading its rivals by ``MIN_MARGIN``, is reported
as pending (``FingerprintStream.pending``): about a third of a match, a few hundred ms into
an enrolled prompt, so the decision waits the moment it takes to confirm it."""
HOLDING_VOTES = 3
"""Recent aligned votes (over the last second) that show a matched recording is still
playing: its claim's span then extends to the present."""

INFO = ChannelInfo(CHANNEL, authority=2)
"""An identified recording is the strongest evidence there is over the span it covers: it
outranks the model and the tones there."""


class FingerprintChannel:
    """The fingerprint channel's shared part: the library's index in memory, read-only.
    ``reload()`` swaps in a fresh index; sessions already running keep the one they had."""

    info = INFO

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.reload()

    def reload(self) -> int:
        """Re-read the library file; returns the number of samples now loaded."""
        with SampleLibrary(self.path) as library:
            index, infos = library.load_index()
            config = library.config
        with self._lock:
            self._state = (index, infos, config)
            stat = self.path.stat()
            self.info = replace(
                INFO,
                source=f"{self.path} ({len(infos)} samples, {stat.st_size} bytes, mtime {stat.st_mtime_ns})",
            )
        return len(infos)

    @property
    def samples(self) -> int:
        return len(self._state[1])

    def open(self) -> FingerprintStream:
        return FingerprintStream(*self._state)


class FingerprintStream:
    """One call's landmarks and votes against the library.

    A match is claimed once it has ``MIN_VOTES``; its claim is reported again, with its span
    reaching the present, while the recording is still heard (``HOLDING_VOTES``). Before
    that, a recording gathering votes is ``pending``."""

    info = INFO

    def __init__(self, index: Index, infos: dict[int, SampleInfo], config: FingerprintConfig) -> None:
        self._infos = infos
        self._labels = {sample_id: info.label for sample_id, info in infos.items()}
        self._landmarks = LandmarkStream(config)
        self._matcher = Matcher(index)
        self._frame_s = config.frame_s
        self._now_s = 0.0
        self._reported: tuple[int, float] | None = None  # (sample, score) last claimed
        self._pending: Evidence | None = None

    def prepare(self, samples: np.ndarray, start_sample: int) -> None:
        self._landmarks.prepare(samples)

    def process(self, samples: np.ndarray, start_sample: int) -> list[Evidence]:
        self._matcher.add(*self._landmarks.push(samples))
        self._now_s = (start_sample + len(samples)) / SAMPLE_RATE
        return self._judge(self._now_s)

    def finish(self) -> list[Evidence]:
        self._matcher.add(*self._landmarks.finish())
        return self._judge(None)

    def heard(self) -> None:
        return None

    def pending(self) -> Evidence | None:
        """The recording gathering votes towards a match, located from when it began to."""
        return self._pending

    def _judge(self, now_s: float | None) -> list[Evidence]:
        if self._matcher.best_votes < PENDING_VOTES:  # nothing to report: skip the margin's work
            return []
        best = self._matcher.best(self._labels)
        if (
            best is None
            or best.sample_id not in self._infos
            or best.recent_votes < MIN_MARGIN * best.recent_rival_votes
        ):
            self._pending = None
            return []
        sample_id, offset, votes = best.sample_id, best.offset, best.votes
        info = self._infos[sample_id]
        start_s = round(max(0.0, -offset * self._frame_s), 3)
        if votes < MIN_VOTES:
            if self._pending is None or self._pending.detail["sample_id"] != sample_id:
                at = self._now_s if now_s is None else now_s
                self._pending = Evidence(
                    CHANNEL, info.label, 0.0, round(at, 3), round(at, 3), {"sample_id": sample_id}
                )
            return []
        self._pending = None
        score = max(s for v, s in SCORE_BY_VOTES if votes >= v)
        if self._reported == (sample_id, score) and (now_s is None or best.recent_votes < HOLDING_VOTES):
            return []  # nothing new: the same match, no longer heard
        self._reported = (sample_id, score)
        return [
            Evidence(
                CHANNEL,
                info.label,
                score,
                start_s,
                round(now_s if now_s is not None else self._now_s, 3),
                {
                    "sample_id": sample_id,
                    "carrier": info.carrier,
                    "lang": info.lang,
                    "note": info.note,
                    "offset_s": round(offset * self._frame_s, 3),
                    "votes": votes,
                    "recent_votes": best.recent_votes,
                    "recent_rival_votes": best.recent_rival_votes,
                },
            )
        ]
