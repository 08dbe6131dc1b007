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
    Agreement,
    FingerprintConfig,
    Index,
    LandmarkStream,
    Matcher,
    peak_agreement,
    voted_peaks,
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
"""... of the recording's peaks on the stretch heard, other than its votes' own."""
VERIFY_VOTES = 6
"""Aligned votes from which a recording still short of ``MIN_VOTES`` may be claimed on its
own constellation (``fingerprint.peak_agreement``): a short prompt under a low-rate codec
and noise may never gather ``MIN_VOTES``."""
WHOLE_RECORDING = 0.8
"""... once the stretch heard holds this share of its peaks: a recording heard whole. Not
sooner: a carrier's prompts share openings ("the number you dialed is ..."), and an opening
agrees with every recording that has it until the words differ."""
WHOLE_AGREEMENT = 0.25
"""... when the call meets at least this share of the recording's peaks on the stretch,
beyond the peaks its votes are made of (those are met by construction), over the whole
recording and over each of its two ends (``RECORDING_END``). Audio that is not the
recording stays under 0.2 at such an alignment."""
VERIFY_MIN_PEAKS = 12
"""... over at least this many of the recording's peaks (a share of a handful says nothing)."""
RECORDING_END = 0.4
"""Each end of a recording is this share of its time: a prompt that shares only a phrase
with the recording (a spliced opening, or a closing such as "please check the number and
dial again") differs at one end or the other."""
VERIFIED_AGREEMENT = 0.35
"""Agreement from which a recording's peaks are taken to agree while it is still being
heard: it is then pending from ``PENDING_AGREED_VOTES``, and a rival whose peaks agree less
than half as well does not hold it back. Audio that is not the recording stays under 0.2;
the same voice saying the same words reaches about 0.25."""
VERIFY_SPAN_S = 10.0
"""The stretch is at most the last this many seconds of the call: the call's peaks and
landmarks are kept that long, and a recording that has played longer has its votes."""


def confirms(votes: int, agreement: Agreement, ends: tuple[Agreement, Agreement] | None) -> bool:
    """Whether a recording's own peaks confirm an alignment that has *votes* aligned votes:
    its *agreement* over the stretch heard and over each of the recording's *ends* (``None``
    while the call has not reached the recording's end), where an end holds enough peaks to
    tell (a short prompt's hold a handful)."""
    return (
        ends is not None
        and votes >= VERIFY_VOTES
        and agreement.count >= VERIFY_MIN_PEAKS
        and agreement.heard >= WHOLE_RECORDING
        and agreement.fraction >= WHOLE_AGREEMENT
        and all(end.count < VERIFY_MIN_PEAKS or end.fraction >= WHOLE_AGREEMENT for end in ends)
    )


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

    A match is claimed once it has ``MIN_VOTES``, or ``VERIFY_VOTES`` and, heard whole, the
    recording's own peaks confirm the alignment (``confirms``); its claim is reported again,
    with its span reaching the present, while the recording is still heard
    (``HOLDING_VOTES``). Before that, a recording gathering votes is ``pending``. A rival of
    another label holds a match back by ``MIN_MARGIN`` unless its own peaks agree less than
    half as well."""

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
        self._heard_landmarks: list[tuple[np.ndarray, np.ndarray]] = []  # ... and its landmarks
        self._span_frames = int(VERIFY_SPAN_S / config.frame_s)
        self._confirmed: tuple[int, int, Agreement] | None = None  # (sample, offset, agreement)
        # (peaks, landmark hashes, anchor frames, their index hits) of the stretch, once per push
        self._recent: tuple[np.ndarray, np.ndarray, np.ndarray, tuple] | None = None
        self._labels = {sample_id: info.label for sample_id, info in infos.items()}
        self._landmarks = LandmarkStream(config, keep_peaks=True)
        self._matcher = Matcher(index)
        self._frame_s = config.frame_s
        self._now_s = 0.0
        self._reported: tuple[int, float] | None = None  # (sample, score) last claimed
        self._pending: Evidence | None = None
        self._prepared_hits: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        """The landmarks the last ``prepare`` made, looked up in the library: (sample ids,
        offsets, landmark), by landmark; ``LandmarkStream.last_span`` says which each push
        handed out."""

    def prepare(self, samples: np.ndarray, start_sample: int) -> None:
        made = self._landmarks.prepare(samples)
        if made is not None:  # looked up in the library at once; each push takes its landmarks' slice
            self._prepared_hits = self._matcher.index.lookup_with_query(*made)

    def process(self, samples: np.ndarray, start_sample: int) -> list[Evidence]:
        hashes, times = self._landmarks.push(samples)
        span, hits = self._landmarks.last_span, self._prepared_hits
        if span is not None and hits is not None:
            a, b = np.searchsorted(hits[2], span)
            self._matcher.add(hashes, times, (hits[0][a:b], hits[1][a:b], hits[2][a:b] - span[0]))
        else:
            self._matcher.add(hashes, times)
        self._record(hashes, times)
        self._now_s = (start_sample + len(samples)) / SAMPLE_RATE
        return self._judge(self._now_s)

    def finish(self) -> list[Evidence]:
        hashes, times = self._landmarks.finish()
        self._matcher.add(hashes, times)
        self._record(hashes, times)
        return self._judge(None)

    def _record(self, hashes: np.ndarray, times: np.ndarray) -> None:
        """Keep the stretch's peaks and landmarks, which verification compares."""
        self._recent = None
        peaks = self._landmarks.take_peaks()
        if len(peaks):
            self._heard.append(peaks)
        if len(hashes):
            self._heard_landmarks.append((hashes, times))
        # the stretch starts span + 1 frames back; a peak one frame before it can still meet
        horizon = self._landmarks.checked - self._span_frames - 2
        while self._heard and self._heard[0][-1] < horizon * PEAK_BIN_CODES:
            self._heard.pop(0)
        while self._heard_landmarks and self._heard_landmarks[0][1].max() < horizon - self._config.max_dt:
            self._heard_landmarks.pop(0)

    def _confirmed_at(self, sample_id: int, offset: int) -> Agreement | None:
        """The agreement that confirmed this alignment, if one did (votes only grow: it stays)."""
        kept = self._confirmed
        return kept[2] if kept is not None and kept[:2] == (sample_id, offset) else None

    def _stretch(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
        """The call's peaks and landmarks on the stretch, and the landmarks' index hits: made
        once per push, whichever recordings are verified against them."""
        if self._recent is None:
            hashes = np.concatenate([h for h, _ in self._heard_landmarks])
            times = np.concatenate([t for _, t in self._heard_landmarks])
            query = np.concatenate(self._heard)  # in order: each push's peaks follow the last's
            self._recent = (query, hashes, times, self._matcher.index.lookup_with_query(hashes, times))
        return self._recent

    def _agreement(self, sample_id: int, offset: int, votes: int) -> tuple[Agreement, bool]:
        """``peak_agreement`` of the call's recent peaks with a recording at an offset, less
        its votes' own peaks, and whether it ``confirms`` the alignment."""
        kept = self._confirmed_at(sample_id, offset)
        if kept is not None:
            return kept, True
        reference = self._sample_peaks.get(sample_id)
        if reference is None or not self._heard or not self._heard_landmarks:
            return Agreement(0.0, 0, 0.0), False
        query, hashes, times, hits = self._stretch()
        voted = voted_peaks(hits, hashes, times, sample_id, offset, self._config)
        last = self._landmarks.checked - 1
        first = max(0, last - self._span_frames)
        agreement = peak_agreement(query, reference, offset, first, last, voted)
        start, end = reference[0] // PEAK_BIN_CODES, reference[-1] // PEAK_BIN_CODES
        ends = None  # until the call has reached the recording's end: the words may differ there
        if last + offset >= end:
            length = RECORDING_END * (end - start)  # in the call's frames below
            ends = (
                peak_agreement(query, reference, offset, first, int(start + length) - offset, voted),
                peak_agreement(query, reference, offset, max(first, int(end - length) - offset), last, voted),
            )
        confirmed = confirms(votes, agreement, ends)
        if confirmed:
            self._confirmed = (sample_id, offset, agreement)
        return agreement, confirmed

    def _rival_disagrees(self, rival: tuple[int, int] | None, fraction: float) -> bool:
        """Whether the rival recording's own peaks at its offset agree less than half as
        well as the best's (*fraction*): its votes are then a coincidence, however many."""
        if rival is None:
            return False
        agreement, _ = self._agreement(*rival, 0)
        return agreement.count >= VERIFY_MIN_PEAKS and agreement.fraction < fraction / 2

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
        kept = self._confirmed_at(sample_id, offset) is not None
        if votes < MIN_VOTES and (best.recent_votes or kept):  # verified while it is heard
            agreement, verified = self._agreement(sample_id, offset, votes)
        else:
            agreement, verified = Agreement(0.0, 0, 0.0), False
        fraction = agreement.fraction
        agreed = verified or (fraction >= VERIFIED_AGREEMENT and agreement.count >= PENDING_MIN_PEAKS)
        if best.recent_votes < MIN_MARGIN * best.recent_rival_votes and not (
            agreed and self._rival_disagrees(best.rival, fraction)
        ):
            self._pending = None
            return []
        if votes < MIN_VOTES and not verified:
            if votes < PENDING_VOTES and not agreed:
                self._pending = None
                return []
            if self._pending is None or self._pending.detail["sample_id"] != sample_id:
                at = self._now_s if now_s is None else now_s
                self._pending = Evidence(
                    CHANNEL, info.label, 0.0, round(at, 3), round(at, 3), {"sample_id": sample_id}
                )
            return []
        self._pending = None
        # confirmed by its peaks over the whole recording: as sure as MIN_VOTES (the first step)
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
                    **(
                        {
                            "agreement": round(fraction, 3),
                            "agreement_peaks": agreement.count,
                            "heard": round(float(agreement.heard), 3),
                        }
                        if verified
                        else {}
                    ),
                },
            )
        ]
