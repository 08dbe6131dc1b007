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
from ..fingerprint import (
    PEAK_BIN_CODES,
    FingerprintConfig,
    Index,
    LandmarkStream,
    Matcher,
    peak_agreement,
)
from ..samples import CHANNEL, MIN_MARGIN, MIN_VOTES, SCORE_BY_VOTES, SampleInfo, SampleLibrary
from .base import ChannelInfo

PENDING_VOTES = 8
"""Aligned votes from which a recording, leading its rivals by ``MIN_MARGIN``, is reported
as pending (``FingerprintStream.pending``): about a third of a match, a few hundred ms into
an enrolled prompt, so the decision waits the moment it takes to confirm it."""
PENDING_AGREED_VOTES = 5
"""... or from this many, when its own peaks agree already (``VERIFIED_AGREEMENT`` over
at least ``PENDING_MIN_PEAKS``): a recording heard under a low-rate codec can take a second
to gather ``VERIFY_VOTES``, and the model must not decide in that second."""
PENDING_MIN_PEAKS = 4
"""... of the recording's peaks on the stretch heard."""
VERIFY_VOTES = 8
"""Aligned votes from which a recording still short of ``MIN_VOTES`` is checked against
its own constellation (``peak_agreement``): a short prompt under a low-rate codec and
noise may never gather ``MIN_VOTES``, and a long one gathers them a second later."""
VERIFIED_AGREEMENT = 0.5
"""... and claimed when the call meets at least this fraction of the recording's peaks
over the stretch heard. Speech, music and tones that are not the recording stay near
chance (about 0.1; at most about 0.2 for unrelated audio, see ``peak_agreement``); a
coincidental alignment of the same voice saying the same words can reach 0.5, and the
margin over the rival recording is what tells those apart."""
VERIFY_MIN_PEAKS = 12
"""... over a stretch that holds at least this many of the recording's peaks (a fraction
of a handful says nothing)."""
WHOLE_RECORDING = 0.8
"""A recording counts as heard whole when the stretch holds this fraction of its peaks ..."""
WHOLE_AGREEMENT = 0.3
"""... and a recording heard whole is claimed from this agreement: a shared phrase cannot
agree over the rest of the recording, and audio that is not the recording stays under 0.2,
where a short prompt under a low-rate codec and noise keeps 0.3-0.5 of its peaks."""


def confirms(votes: int, fraction: float, count: int, size: int) -> bool:
    """Whether a recording's own peaks confirm an alignment that has *votes* aligned votes:
    *fraction* of the *count* peaks of the recording (of *size* in all) on the stretch heard
    are met (``peak_agreement``)."""
    return votes >= VERIFY_VOTES and (
        (fraction >= VERIFIED_AGREEMENT and count >= VERIFY_MIN_PEAKS)
        or (count >= WHOLE_RECORDING * size and fraction >= WHOLE_AGREEMENT)
    )


VERIFY_SPAN_S = 10.0
"""The stretch is at most the last this many seconds of the call: the call's peaks are kept
that long (a few kB per second), and a recording that has played longer has its votes."""
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
        peaks = index.peaks(config)
        with self._lock:
            self._state = (index, infos, config, peaks)
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

    A match is claimed once it has ``MIN_VOTES``, or ``VERIFY_VOTES`` and the recording's
    own peaks confirm the alignment (``VERIFIED_AGREEMENT``); its claim is reported again,
    with its span reaching the present, while the recording is still heard
    (``HOLDING_VOTES``). Before that, a recording gathering votes is ``pending``."""

    info = INFO

    def __init__(
        self,
        index: Index,
        infos: dict[int, SampleInfo],
        config: FingerprintConfig,
        peaks: dict[int, np.ndarray],
    ) -> None:
        self._infos = infos
        self._config = config
        self._sample_peaks = peaks  # each recording's constellation (``Index.peaks``)
        self._heard: list[np.ndarray] = []  # the call's peaks of recent pushes (codes)
        self._span_frames = int(VERIFY_SPAN_S / config.frame_s)
        self._confirmed: tuple[int, int, float, int] | None = None  # (sample, offset, fraction, count)
        self._labels = {sample_id: info.label for sample_id, info in infos.items()}
        self._landmarks = LandmarkStream(config, keep_peaks=True)
        self._matcher = Matcher(index)
        self._frame_s = config.frame_s
        self._now_s = 0.0
        self._reported: tuple[int, float] | None = None  # (sample, score) last claimed
        self._pending: Evidence | None = None

    def prepare(self, samples: np.ndarray, start_sample: int) -> None:
        self._landmarks.prepare(samples)

    def process(self, samples: np.ndarray, start_sample: int) -> list[Evidence]:
        self._add(*self._landmarks.push(samples))
        self._now_s = (start_sample + len(samples)) / SAMPLE_RATE
        return self._judge(self._now_s)

    def finish(self) -> list[Evidence]:
        self._add(*self._landmarks.finish())
        return self._judge(None)

    def _add(self, hashes: np.ndarray, times: np.ndarray) -> None:
        self._matcher.add(hashes, times)
        peaks = self._landmarks.take_peaks()
        if len(peaks):
            self._heard.append(peaks)
        horizon = (self._landmarks.checked - self._span_frames) * PEAK_BIN_CODES
        while self._heard and self._heard[0][-1] < horizon:
            self._heard.pop(0)

    def _agreement(self, sample_id: int, offset: int, votes: int) -> tuple[float, int, bool]:
        """``peak_agreement`` of the call's recent peaks with a recording at an offset, and
        whether it ``confirms`` the alignment (kept once it does: votes only grow)."""
        kept = self._confirmed
        if kept is not None and kept[:2] == (sample_id, offset):
            return kept[2], kept[3], True
        reference = self._sample_peaks.get(sample_id)
        if reference is None or not self._heard:
            return 0.0, 0, False
        query = np.concatenate(self._heard)  # in order: each push's peaks follow the last's
        last = self._landmarks.checked - 1
        fraction, count = peak_agreement(query, reference, offset, max(0, last - self._span_frames), last)
        confirmed = confirms(votes, fraction, count, len(reference))
        if confirmed:
            self._confirmed = (sample_id, offset, fraction, count)
        return fraction, count, confirmed

    def heard(self) -> None:
        return None

    def pending(self) -> Evidence | None:
        """The recording gathering votes towards a match, located from when it began to."""
        return self._pending

    def _judge(self, now_s: float | None) -> list[Evidence]:
        if self._matcher.best_votes < PENDING_AGREED_VOTES:  # nothing to report: skip the margin's work
            return []
        best = self._matcher.best(self._labels)
        if best is None or best.sample_id not in self._infos:
            self._pending = None
            return []
        sample_id, offset, votes = best.sample_id, best.offset, best.votes
        info = self._infos[sample_id]
        start_s = round(max(0.0, -offset * self._frame_s), 3)
        fraction, count, verified = (
            self._agreement(sample_id, offset, votes) if votes < MIN_VOTES else (0.0, 0, False)
        )
        agreed = fraction >= VERIFIED_AGREEMENT
        if best.recent_votes < MIN_MARGIN * best.recent_rival_votes and not (
            agreed and best.rival is not None and self._agreement(*best.rival, 0)[0] < VERIFIED_AGREEMENT
        ):  # a rival whose own peaks do not agree is a coincidence, however many its votes
            self._pending = None
            return []
        if votes < MIN_VOTES and not verified:
            if votes < PENDING_VOTES and not (agreed and count >= PENDING_MIN_PEAKS):
                self._pending = None
                return []
            if self._pending is None or self._pending.detail["sample_id"] != sample_id:
                at = self._now_s if now_s is None else now_s
                self._pending = Evidence(
                    CHANNEL, info.label, 0.0, round(at, 3), round(at, 3), {"sample_id": sample_id}
                )
            return []
        self._pending = None
        score = max((s for v, s in SCORE_BY_VOTES if votes >= v), default=SCORE_BY_VOTES[0][1])
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
                    **({"agreement": round(fraction, 3), "agreement_peaks": count} if verified else {}),
                },
            )
        ]
