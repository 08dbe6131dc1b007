"""Audio fingerprints of known carrier recordings: spectral-peak landmarks and matching.

A carrier plays the same recording every time, so its spectrogram's strongest peaks sit at
the same time-frequency positions, whatever noise, codec or gain the call adds. Pairs of
nearby peaks (anchor frequency, frequency step, time step) are hashed into landmarks; a
query matches a recording when many of its landmarks are found in that recording *at the
same time offset* (time-offset consistency voting, as in Wang 2003 / audfprint).

Designed for 8 kHz telephony: 64 ms FFT every 16 ms over 250-3500 Hz; targets within
0.5 s of their anchor so a match needs well under a second of audio. Streaming: landmarks
are emitted as soon as the peaks that make them are confirmed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from .audio import SAMPLE_RATE, frames_of
from .errors import ModelError

FINGERPRINT_VERSION = 1
"""Bumped when landmarks change; stored in a library and checked when it opens."""


@dataclass(frozen=True)
class FingerprintConfig:
    sample_rate: int = SAMPLE_RATE
    n_fft: int = 512
    """64 ms: 15.6 Hz bins."""
    hop: int = 128
    """16 ms frames."""
    min_bin: int = 16
    """250 Hz."""
    max_bin: int = 224
    """3500 Hz."""
    peak_bins: int = 5
    """A peak is the maximum within ±this many bins ..."""
    peak_frames: int = 3
    """... and ±this many frames."""
    peaks_per_frame: int = 5
    peak_floor_db: float = 40.0
    """Peaks more than this below the loudest frame so far are ignored (silence, hiss)."""
    absolute_floor_db: float = -10.0
    """... and so are peaks under this level: about 50 dB below a full-scale tone (digital
    silence has no peaks, only ties)."""
    fan_out: int = 4
    """Targets paired with each anchor."""
    max_dt: int = 31
    """Targets lie within this many frames after their anchor (0.5 s)."""
    max_df: int = 63
    """... and within this many bins of it."""
    version: int = FINGERPRINT_VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> FingerprintConfig:
        return cls(**values)

    @property
    def frame_s(self) -> float:
        return self.hop / self.sample_rate


HASH_BITS = 21
"""Bits of a landmark's hash (``hash_landmark``): what the index's lookup table spans."""


def hash_landmark(f1: np.ndarray, df: np.ndarray, dt: np.ndarray, config: FingerprintConfig) -> np.ndarray:
    """``HASH_BITS``-bit hashes: anchor bin (8 bits), frequency step (7 bits), time step (6 bits)."""
    return (
        ((f1.astype(np.uint32) & 0xFF) << 13)
        | (((df + config.max_df + 1) & 0x7F).astype(np.uint32) << 6)
        | (dt.astype(np.uint32) & 0x3F)
    )


def _running_max(values: np.ndarray, half: int, axis: int) -> np.ndarray:
    """Maximum over ±*half* neighbours along *axis* (2-D float; edges see fewer), by doubling:
    after k whole-array ``np.maximum`` calls each value holds the maximum of the 2**k from
    it, and two such overlapping spans cover a window (4 calls for ±5, not 10 shifted ones)."""
    n = values.shape[axis]
    if n == 0 or half == 0:
        return values.copy()
    width = 2 * half + 1
    rows = values if axis == 1 else values.T  # the window runs along each row
    spans = np.full((rows.shape[0], n + 2 * half), -np.inf, dtype=values.dtype)  # spans of 1
    spans[:, half : half + n] = rows
    span = 1
    while 2 * span <= width:
        spans = np.maximum(spans[:, : spans.shape[1] - span], spans[:, span:])
        span *= 2
    out = np.maximum(spans[:, :n], spans[:, width - span : width - span + n])
    return out if axis == 1 else out.T


PEAK_BIN_CODES = 256
"""A peak's code is ``frame * 256 + bin``: one sortable integer per (frame, bin)."""


PAIR_ROWS = 4096
"""Anchors paired per numpy pass (a pass holds ``peaks_per_frame * (max_dt + 1)`` = 160
candidates per anchor: about 10 MB per array at this size)."""


class LandmarkStream:
    """Landmarks of a stream as audio arrives: ``push`` returns ``(hashes, anchor_frames)``.
    With *keep_peaks*, the peaks found are also kept for ``take_peaks`` (as codes
    ``frame * PEAK_BIN_CODES + bin``): they are known ``peak_frames`` after the audio, where
    a landmark waits for its targets."""

    def __init__(self, config: FingerprintConfig | None = None, *, keep_peaks: bool = False) -> None:
        import scipy.fft  # here, not at import: start-up; it transforms many frames at once faster than numpy's

        self._rfft = scipy.fft.rfft
        self.config = c = config or FingerprintConfig()
        self._kept_peaks: list[np.ndarray] | None = [] if keep_peaks else None
        self._window = np.hanning(c.n_fft).astype(np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._frames = np.zeros((0, c.max_bin - c.min_bin), dtype=np.float32)  # log power, recent
        self._frames_start = 0  # absolute index of self._frames[0]
        self._checked = 0  # frames before this have been tested for peaks
        self._peak_frames = np.zeros(0, dtype=np.int64)  # peaks awaiting their targets: frames ...
        self._peak_bins = np.zeros(0, dtype=np.int64)  # ... and bins, by frame then bin
        self._loudest = -np.inf
        self._anchors_paired = 0  # peaks paired as anchors so far (they left _peak_frames)
        self._prepared: tuple[int, np.ndarray] | None = None  # (first frame, log power) from prepare
        self._prepared_peaks: tuple[int, int, np.ndarray, np.ndarray, np.ndarray] | None = None
        """(first frame, last frame + 1, peak frames, peak bins, loudest up to each frame)
        of the frames ``prepare`` searched for peaks."""
        self._prepared_landmarks: _PreparedLandmarks | None = None
        self.last_span: tuple[int, int] | None = None
        """Where the last push's landmarks lie among those the last ``prepare`` returned
        (``None``: the push made its own)."""

    def prepare(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Compute the spectra of the frames the coming samples complete, find their peaks
        and pair them into landmarks, in one pass each (a frame's spectrum is its own; a
        peak depends only on the frames around it and on the loudest frame before it; an
        anchor's landmarks only on the peaks in its zone); ``push`` hands them on push by
        push, exactly as it would have made them. Returns the landmarks it made (``None``:
        none, and the pushes go on with what an earlier ``prepare`` made); ``last_span``
        says which of them each push handed out."""
        c = self.config
        buf = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        n = (len(buf) - c.n_fft) // c.hop + 1 if len(buf) >= c.n_fft else 0
        if n <= 0:
            return None
        power = self._log_power(buf, n)
        self._prepared = (self._frames_start + len(self._frames), power)
        frames = np.concatenate([self._frames, power])
        last = self._frames_start + len(frames) - c.peak_frames
        if last > self._checked:
            found = self._peaks_of(frames, self._checked, last, self._loudest)
            self._prepared_peaks = (self._checked, last, *found)
            ahead = self._landmarks_ahead(
                np.concatenate([self._peak_frames, found[0]]),
                np.concatenate([self._peak_bins, found[1]]),
                last,
            )
            self._prepared_landmarks = ahead
            return ahead.hashes, ahead.times
        return None

    def push(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = self.config
        buf = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        n = (len(buf) - c.n_fft) // c.hop + 1 if len(buf) >= c.n_fft else 0
        if n > 0:
            power = self._take_prepared(n)
            self._frames = np.concatenate([self._frames, self._log_power(buf, n) if power is None else power])
            self._pending = buf[n * c.hop :].copy()
        else:
            self._pending = buf
        self._find_peaks(final=False)
        prepared = self._take_prepared_landmarks()
        return self._pair(final=False) if prepared is None else prepared

    @property
    def checked(self) -> int:
        """Frames before this one have been searched for peaks."""
        return self._checked

    def take_peaks(self) -> np.ndarray:
        """The peaks found since the last call, sorted codes (``keep_peaks`` only)."""
        if not self._kept_peaks:
            return np.zeros(0, dtype=np.int64)
        peaks = np.concatenate(self._kept_peaks)
        self._kept_peaks.clear()
        return peaks

    def _log_power(self, buf: np.ndarray, n: int) -> np.ndarray:
        """Log power (dB) of the first *n* frames of *buf* in the landmark band, ``(n, bins)``."""
        c = self.config
        spectrum = self._rfft(frames_of(buf, c.n_fft, c.hop, n) * self._window, axis=1)[
            :, c.min_bin : c.max_bin
        ]
        return (10 * np.log10(spectrum.real**2 + spectrum.imag**2 + 1e-10)).astype(np.float32, copy=False)

    def _take_prepared(self, n: int) -> np.ndarray | None:
        """The next *n* frames' log power, if ``prepare`` computed them."""
        if self._prepared is None:
            return None
        first, power = self._prepared
        a = self._frames_start + len(self._frames) - first
        if a < 0 or a + n > len(power):
            self._prepared = None
            return None
        if a + n == len(power):
            self._prepared = None
        return power[a : a + n]

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        self._find_peaks(final=True)
        self.last_span = None
        return self._pair(final=True)

    def _find_peaks(self, final: bool) -> None:
        c = self.config
        end = self._frames_start + len(self._frames)
        # a frame can be judged once peak_frames frames after it exist
        last = end if final else end - c.peak_frames
        if last <= self._checked:
            return
        found = self._take_prepared_peaks(last)
        if found is None:
            found = self._peaks_of(self._frames, self._checked, last, self._loudest)
        peak_frames, bins, loudest = found
        if self._kept_peaks is not None and len(peak_frames):
            self._kept_peaks.append(peak_frames.astype(np.int64) * PEAK_BIN_CODES + bins)
        self._loudest = float(loudest[-1])
        self._peak_frames = np.concatenate([self._peak_frames, peak_frames])
        self._peak_bins = np.concatenate([self._peak_bins, bins])
        self._checked = last
        keep_from = max(0, self._checked - c.peak_frames - self._frames_start)
        self._frames = self._frames[keep_from:]
        self._frames_start += keep_from

    def _peaks_of(
        self, frames: np.ndarray, checked: int, last: int, loudest_before: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Peaks of frames *checked* .. *last* - 1 (absolute; *frames* begins at
        ``self._frames_start`` and reaches ``peak_frames`` past *last*, or the stream's end):
        their frames and bins, by frame then bin, and the loudest frame level up to each
        frame searched."""
        c = self.config
        # max over ±peak_bins in frequency, then over ±peak_frames in time
        local_max = _running_max(_running_max(frames, c.peak_bins, axis=1), c.peak_frames, axis=0)
        first = checked - self._frames_start
        rows = frames[first : last - self._frames_start]
        # causal floor (loudest frame up to each one), so chunking cannot change it
        loudest = np.maximum.accumulate(np.append(loudest_before, rows.max(axis=1)))[1:]
        floor = np.maximum(loudest - c.peak_floor_db, c.absolute_floor_db)
        mask = (rows >= local_max[first : first + len(rows)]) & (rows > floor[:, None])
        crowded = np.flatnonzero(mask.sum(axis=1) > c.peaks_per_frame)
        for i in crowded:  # keep the loudest peaks_per_frame candidates of a crowded frame
            candidates = np.flatnonzero(mask[i])
            mask[i] = False
            mask[i, candidates[np.argsort(rows[i, candidates])[-c.peaks_per_frame :]]] = True
        frame_index, bins = np.nonzero(mask)  # by frame, then by bin
        return frame_index + checked, bins, loudest

    def _take_prepared_peaks(self, last: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The peaks of frames ``self._checked`` .. *last* - 1, if ``prepare`` found them."""
        if self._prepared_peaks is None:
            return None
        first, end, peak_frames, bins, loudest = self._prepared_peaks
        if self._checked < first or last > end:
            self._prepared_peaks = None
            return None
        if last == end:
            self._prepared_peaks = None
        a, b = np.searchsorted(peak_frames, (self._checked, last))
        return peak_frames[a:b], bins[a:b], loudest[self._checked - first : last - first]

    def _pair(self, final: bool) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks of the anchors, in order, whose targets are all known: their target zone
        has been searched for peaks, or ``fan_out`` targets were found in it already (later
        peaks cannot come before them, so they are the targets the whole zone gives). The
        landmarks do not depend on when they are made; an anchor waits only for its own
        targets, and the anchors after it wait for it (``_search``)."""
        c = self.config
        t, f = self._peak_frames, self._peak_bins
        n = len(t)
        ready = self._checked if final else self._checked - c.max_dt
        hashes, times = [], []
        done = 0
        while done < n:  # anchors in slices: a whole recording's peaks at once would take GBs
            rows = np.arange(done, min(n, done + PAIR_ROWS))
            found = _search(t, f, rows, _widest(c), c)  # one search: few anchors wait at a time
            waiting = np.flatnonzero((t[rows] >= ready) & (found.rank[:, -1] < c.fan_out))
            stop = int(waiting[0]) if len(waiting) else len(rows)
            anchor, column = np.nonzero(found.target[:stop])  # by anchor, then by target
            if len(anchor):
                hashes.append(
                    hash_landmark(f[rows[anchor]], found.df[anchor, column], found.dt[anchor, column], c)
                )
                times.append(t[rows[anchor]].astype(np.int32))
            done += stop
            if stop < len(rows):
                break
        self._peak_frames, self._peak_bins = t[done:], f[done:]
        self._anchors_paired += done
        if not hashes:
            return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int32)
        return np.concatenate(hashes), np.concatenate(times)

    def _landmarks_ahead(self, t: np.ndarray, f: np.ndarray, known: int) -> _PreparedLandmarks:
        """The landmarks of the anchors *t*, *f* (the peaks awaiting targets, then the peaks
        ``prepare`` found, every peak before frame *known*), made in one pass, and when
        ``_pair`` would hand each out: an anchor is done once the frames searched pass its
        zone's end or its last target's frame, and waits for those before it. Only anchors
        done by *known* are kept: the last few of a run wait for peaks after it, and the
        next run (or ``_pair``) pairs them."""
        c = self.config
        hashes, times, owners, needs = [], [], [], []
        for done in range(0, len(t), PAIR_ROWS):
            rows = np.arange(done, min(len(t), done + PAIR_ROWS))
            anchor, dt, df, kth = _targets(t, f, rows, c)
            needs.append(np.where(kth >= 0, kth, t[rows] + c.max_dt))  # a last target lies in the zone
            anchor = rows[anchor]
            hashes.append(hash_landmark(f[anchor], df, dt, c))
            times.append(t[anchor].astype(np.int32))
            owners.append(anchor)
        if not needs:
            return _PreparedLandmarks(self._anchors_paired, known, np.zeros(0, np.int64), *_NO_LANDMARKS)
        needs_all = np.maximum.accumulate(np.concatenate(needs))
        done = int(np.searchsorted(needs_all, known))  # anchors done once every known frame is searched
        owners_all = np.concatenate(owners)
        kept = int(np.searchsorted(owners_all, done))
        return _PreparedLandmarks(
            self._anchors_paired,
            known,
            needs_all[:done],
            np.concatenate(hashes)[:kept],
            np.concatenate(times)[:kept],
            owners_all[:kept],
        )

    def _take_prepared_landmarks(self) -> tuple[np.ndarray, np.ndarray] | None:
        """What ``_pair(final=False)`` would return now, from ``prepare``'s landmarks, if
        they reach this far; the anchors handed out leave the peaks awaiting targets."""
        ahead = self._prepared_landmarks
        self.last_span = None
        if ahead is None:
            return None
        if self._checked > ahead.known:
            self._prepared_landmarks = None
            return None
        first = self._anchors_paired - ahead.base  # handed out by earlier pushes
        stop = int(np.searchsorted(ahead.needs, self._checked, side="left"))  # done: need < checked
        a, b = np.searchsorted(ahead.owners, (first, stop))
        taken = stop - first
        self._peak_frames, self._peak_bins = self._peak_frames[taken:], self._peak_bins[taken:]
        self._anchors_paired += taken
        self.last_span = (int(a), int(b))
        return ahead.hashes[a:b], ahead.times[a:b]


class _PreparedLandmarks(NamedTuple):
    """``LandmarkStream.prepare``'s landmarks, handed out push by push."""

    base: int
    """Anchors paired before the first of these."""
    known: int
    """Every peak before this frame was known when they were made."""
    needs: np.ndarray
    """Per anchor (from ``base``) done by ``known``: the frames searched must pass this one
    before it and every anchor before it are done (a running maximum)."""
    hashes: np.ndarray
    times: np.ndarray
    owners: np.ndarray
    """Each landmark's anchor (from ``base``), in order."""


_NO_LANDMARKS = (np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64))


NEAR_FOLLOWERS = 24
"""Followers searched for an anchor's targets first: most anchors have all theirs among
them, or their zone ends before them; the rest are searched among all that may hold one."""


class _Search(NamedTuple):
    """``_search``'s answer, row by anchor, column by follower."""

    following: np.ndarray
    """Index of each follower (clipped to the last peak where there are fewer)."""
    exists: np.ndarray
    dt: np.ndarray
    df: np.ndarray
    target: np.ndarray
    """Whether the follower is one of the anchor's targets."""
    rank: np.ndarray
    """Targets among the followers up to this one."""


def _search(t: np.ndarray, f: np.ndarray, at: np.ndarray, width: int, c: FingerprintConfig) -> _Search:
    """The targets of the anchors *at* among the *width* known peaks (*t*, *f*: frames and
    bins, in order) that follow each: the first ``fan_out`` after it that lie within
    ``max_dt`` frames (later in time) and ``max_df`` bins (another bin: a steady tone says
    nothing about which recording this is)."""
    n = len(t)
    width = min(width, n)
    following = at[:, None] + np.arange(1, width + 1)
    exists = following < n
    following = np.minimum(following, n - 1)
    dt = t[following] - t[at, None]
    df = f[following] - f[at, None]
    target = exists & (dt > 0) & (dt <= c.max_dt) & (df != 0) & (np.abs(df) <= c.max_df)
    rank = np.cumsum(target, axis=1)
    target &= rank <= c.fan_out
    return _Search(following, exists, dt, df, target, rank)


def _widest(c: FingerprintConfig) -> int:
    """Followers that may lie in an anchor's zone: ``peaks_per_frame`` in each of its frames."""
    return c.peaks_per_frame * (c.max_dt + 1)


def _targets(
    t: np.ndarray, f: np.ndarray, rows: np.ndarray, c: FingerprintConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each anchor's targets (``_search``) for the anchors *rows*. Returns, target by
    target (by anchor, then in order), the anchor (an index into *rows*) and the frame and
    bin steps; and the frame of each anchor's last target when it has all ``fan_out`` (-1
    when it has fewer: later peaks may add some, unless its zone has been searched to its
    end).

    Targets are searched among the ``NEAR_FOLLOWERS`` peaks that follow each anchor, then,
    for anchors those do not settle, among all that may lie in its zone (``_widest``): the
    same targets at a fraction of the work, for many anchors at once (``prepare``)."""
    anchors, dts, dfs = [], [], []
    kth = np.full(len(rows), -1, dtype=np.int64)
    todo = np.arange(len(rows))
    for width in (NEAR_FOLLOWERS, _widest(c)):
        found = _search(t, f, rows[todo], width, c)
        full = found.rank[:, -1] >= c.fan_out
        settled = full | ~found.exists[:, -1] | (found.dt[:, -1] > c.max_dt)  # all targets, or past the zone
        if full.any():
            column = np.argmax(found.rank[full] >= c.fan_out, axis=1)
            kth[todo[full]] = t[found.following[full, column]]
        anchor, column = np.nonzero(found.target & settled[:, None])
        anchors.append(todo[anchor])
        dts.append(found.dt[anchor, column])
        dfs.append(found.df[anchor, column])
        todo = todo[~settled]
        if not len(todo):
            break
    assert not len(todo), "the widest search reaches past every zone"
    if len(anchors) == 1:  # one search settled them all: already by anchor
        return anchors[0], dts[0], dfs[0], kth
    anchor = np.concatenate(anchors)
    order = np.argsort(anchor, kind="stable")  # each anchor's targets come from one search, in order
    return anchor[order], np.concatenate(dts)[order], np.concatenate(dfs)[order], kth


def _peak_codes(hashes: np.ndarray, times: np.ndarray, config: FingerprintConfig) -> np.ndarray:
    """``hash_landmark`` undone: each landmark's anchor, then each one's target, as codes
    ``frame * PEAK_BIN_CODES + bin`` (unsorted, a peak once per landmark it is in)."""
    h = np.asarray(hashes, dtype=np.uint32)
    t = np.asarray(times, dtype=np.int64)
    anchor_bin = ((h >> 13) & 0xFF).astype(np.int64)
    df = ((h >> 6) & 0x7F).astype(np.int64) - (config.max_df + 1)
    dt = (h & 0x3F).astype(np.int64)
    return np.concatenate([t * PEAK_BIN_CODES + anchor_bin, (t + dt) * PEAK_BIN_CODES + anchor_bin + df])


def landmark_peaks(hashes: np.ndarray, times: np.ndarray, config: FingerprintConfig) -> np.ndarray:
    """The peaks a set of landmarks was made from (anchors and targets), as sorted unique
    codes ``frame * PEAK_BIN_CODES + bin``. A library keeps only landmarks; this recovers
    the constellation of a recording from them, and the same of a call's landmarks."""
    return np.unique(_peak_codes(hashes, times, config))


_NEAR = np.array([df * PEAK_BIN_CODES + db for df in (-1, 0, 1) for db in (-1, 0, 1)], dtype=np.int64)
"""A peak meets another within ±1 frame and ±1 bin (a codec or the noise moves it that much)."""


class Agreement(NamedTuple):
    """``peak_agreement``'s answer."""

    fraction: float
    """Of the recording's peaks on the stretch, not voted, the share a call peak meets."""
    count: int
    """How many those were."""
    heard: float
    """The share of all the recording's peaks that lie on the stretch, voted or not."""


def peak_agreement(
    query: np.ndarray,
    reference: np.ndarray,
    offset: int,
    first: int,
    last: int,
    voted: np.ndarray | None = None,
) -> Agreement:
    """How much of a recording's constellation a call holds at one alignment, beyond what
    its votes say: of the *reference* peaks on query frames *first* .. *last* (reference
    frame = query frame + *offset*) that are not in *voted* (the peaks of the landmarks that
    voted for this alignment, met by construction), the fraction that a *query* peak meets.
    All are sorted unique codes (``landmark_peaks``).

    A peak survives a codec or noise far more often than a landmark does (a landmark needs
    its anchor and its target to survive, and its exact hash), so this confirms an alignment
    that has few votes. By chance it stays low: a call's frame holds at most
    ``peaks_per_frame`` peaks, so a peak is met at random with a probability of about
    9 * 5 / 208, 0.2, in the densest audio."""
    lo, hi = np.searchsorted(
        reference, [(first + offset) * PEAK_BIN_CODES, (last + offset + 1) * PEAK_BIN_CODES]
    )
    chosen = reference[lo:hi]
    heard = (hi - lo) / len(reference) if len(reference) else 0.0
    if voted is not None and len(voted) and len(chosen):
        chosen = chosen[~np.isin(chosen, voted, assume_unique=True)]
    if not len(chosen) or not len(query):
        return Agreement(0.0, len(chosen), heard)
    near = (chosen - offset * PEAK_BIN_CODES)[:, None] + _NEAR
    at = np.minimum(np.searchsorted(query, near), len(query) - 1)
    met = (query[at] == near).any(axis=1)
    return Agreement(float(met.mean()), len(chosen), heard)


def voted_peaks(
    hits: tuple[np.ndarray, np.ndarray, np.ndarray],
    hashes: np.ndarray,
    times: np.ndarray,
    sample_id: int,
    offset: int,
    config: FingerprintConfig,
) -> np.ndarray:
    """The reference peaks (codes) of the landmarks among *hashes* / *times* (a call's) that
    vote for *sample_id* at *offset* (within ``OFFSET_TOLERANCE``), at their place in the
    recording; *hits* is ``Index.lookup_with_query`` of those landmarks."""
    ids, offsets, query = hits
    mine = (ids == sample_id) & (np.abs(offsets - offset) <= OFFSET_TOLERANCE)
    return landmark_peaks(hashes[query[mine]], times[query[mine]] + offsets[mine], config)


LANDMARK_CHUNK_S = 10.0
"""``landmarks`` feeds a recording to the stream this much at a time: the same landmarks
(streaming does not depend on chunking), with the spectra of 10 s in memory instead of the
whole recording's (a 300 s one held 341 MB at once)."""


def landmarks(samples: np.ndarray, config: FingerprintConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All landmarks of a whole recording: (hashes, anchor frames)."""
    stream = LandmarkStream(config)
    step = int(LANDMARK_CHUNK_S * stream.config.sample_rate)
    parts = [stream.push(samples[i : i + step]) for i in range(0, len(samples), step)]
    parts.append(stream.finish())
    return np.concatenate([h for h, _ in parts]), np.concatenate([t for _, t in parts])


MAX_HITS_PER_HASH = 100
"""A landmark hash found in more places than this is ignored: it is common to many
recordings (the stop words of audio), costs time and carries no identity."""


SAMPLE_KEY_SHIFT = 40
"""``Index.peaks`` sorts (sample id, peak code) pairs as one integer: a code is below 2**40
for any recording shorter than a hundred years."""


class Index:
    """Landmarks of many recordings, sorted by hash for lookup. Read-only once built."""

    def __init__(self, hashes: np.ndarray, sample_ids: np.ndarray, times: np.ndarray) -> None:
        order = np.argsort(hashes, kind="stable")
        self.hashes = hashes[order].astype(np.uint32)
        self.sample_ids = sample_ids[order].astype(np.int32)
        self.times = times[order].astype(np.int32)
        if len(self.hashes) and int(self.hashes[-1]) >= 2**HASH_BITS:
            raise ModelError(
                f"a landmark hash of {int(self.hashes[-1])} is not a {HASH_BITS}-bit hash: "
                "the landmarks were not made by this fingerprint version"
            )
        self._starts = np.zeros(2**HASH_BITS + 1, dtype=np.int32)
        """Where each hash's run begins in ``hashes`` (and ends: the next one's start): a
        lookup is two reads, not two binary searches over the whole index (8 MB)."""
        np.cumsum(np.bincount(self.hashes, minlength=2**HASH_BITS), out=self._starts[1:])
        self._starts.flags.writeable = False  # shared by every thread's lookups

    def __len__(self) -> int:
        return len(self.hashes)

    def peaks(self, config: FingerprintConfig) -> dict[int, np.ndarray]:
        """Each recording's constellation (``landmark_peaks``), by sample id: one sort over
        the whole index, not one per recording."""
        ids = np.concatenate([self.sample_ids, self.sample_ids]).astype(np.int64)  # anchors, then targets
        keyed = np.unique((ids << SAMPLE_KEY_SHIFT) | _peak_codes(self.hashes, self.times, config))
        owner = keyed >> SAMPLE_KEY_SHIFT
        bounds = np.flatnonzero(np.diff(owner)) + 1
        return {
            int(owner[a]): keyed[a:b] & ((1 << SAMPLE_KEY_SHIFT) - 1)
            for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(keyed)], strict=True)
        }

    def lookup_with_query(
        self, hashes: np.ndarray, times: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For every hit of a query landmark: (sample id, time offset = reference - query,
        index of the query landmark), in the order of the query's landmarks (so the hits of
        a run of them are one slice)."""
        empty = np.zeros(0, dtype=np.int32)
        if not len(hashes) or not len(self.hashes):
            return empty, empty, empty
        lo = self._starts[hashes]
        counts = self._starts[hashes + 1] - lo
        counts[counts > MAX_HITS_PER_HASH] = 0  # too common to tell recordings apart
        if not counts.sum():
            return empty, empty, empty
        query = np.repeat(np.arange(len(hashes)), counts)
        positions = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        return self.sample_ids[positions], self.times[positions] - times[query], query


OFFSET_TOLERANCE = 1
"""Votes within ±1 frame (16 ms) of an offset count for it (frame quantisation)."""

RECENT_FRAMES = 62
"""The margin over rival recordings is judged on the votes of the last second of query:
prompts that share an opening (one recorded greeting spliced before each reason) are
told apart where they differ, not drowned by what they share."""


@dataclass(frozen=True)
class MatchState:
    sample_id: int
    offset: int
    """Reference frame minus query frame."""
    votes: int
    """Aligned votes over the whole query."""
    recent_votes: int
    recent_rival_votes: int
    """Best recent aligned votes of a recording with another label."""
    rival: tuple[int, int] | None = None
    """That recording and its offset (``None``: no rival)."""


class Matcher:
    """Streaming time-offset voting of a query against an :class:`Index`.

    Vote totals are kept incrementally (each block only touches the offsets its landmarks
    hit), and the hits of the last ``RECENT_FRAMES`` are kept for the margin, so the cost
    per block does not grow with the length of the call.
    """

    def __init__(self, index: Index) -> None:
        self.index = index
        self._totals: dict[int, int] = {}  # key (sample, offset) -> votes
        self._best_key: int | None = None
        self._best_total = 0
        self._recent: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (times, ids, offsets)
        self.landmarks = 0
        self.now = 0

    @staticmethod
    def _key(ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        return ids.astype(np.int64) * (1 << 20) + (offsets.astype(np.int64) + (1 << 19))

    def _aligned_total(self, key: int) -> int:
        totals = self._totals
        return sum(totals.get(key + d, 0) for d in range(-OFFSET_TOLERANCE, OFFSET_TOLERANCE + 1))

    def add(
        self,
        hashes: np.ndarray,
        times: np.ndarray,
        hits: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Vote with these landmarks; *hits* are their ``Index.lookup_with_query``, when
        they were looked up already (with others: ``prepare``'s whole run at once)."""
        self.landmarks += len(hashes)
        if len(times):
            self.now = max(self.now, int(times.max()))
        ids, offsets, query = self.index.lookup_with_query(hashes, times) if hits is None else hits
        if len(ids):
            keys, counts = np.unique(self._key(ids, offsets), return_counts=True)
            totals = self._totals
            raw = np.fromiter(
                (totals.get(k, 0) + c for k, c in zip(keys.tolist(), counts.tolist(), strict=True)),
                dtype=np.int64,
                count=len(keys),
            )
            totals.update(zip(keys.tolist(), raw.tolist(), strict=True))
            # only a key holding a third of the best can lift it or a neighbour above it
            for key in keys[raw * 3 >= max(self._best_total, 1)].tolist():
                for near in range(key - OFFSET_TOLERANCE, key + OFFSET_TOLERANCE + 1):
                    if near in totals:
                        total = self._aligned_total(near)
                        if total > self._best_total:
                            self._best_key, self._best_total = near, total
            self._recent.append((times[query], ids, offsets))
        horizon = self.now - RECENT_FRAMES
        while self._recent and self._recent[0][0].max() < horizon:
            self._recent.pop(0)

    @property
    def best_votes(self) -> int:
        """Aligned votes of the best-aligned recording so far (0: none), without the work
        of ``best``."""
        return self._best_total

    def best(self, label_of: dict[int, str] | None = None) -> MatchState | None:
        """The best-aligned recording so far, with the recent votes the margin is judged on.
        Without *label_of* every other recording counts as another label."""
        if self._best_key is None:
            return None
        key = self._best_key
        sample_id = key >> 20
        offset = (key & ((1 << 20) - 1)) - (1 << 19)
        times = np.concatenate([r[0] for r in self._recent]) if self._recent else np.zeros(0, np.int32)
        ids = np.concatenate([r[1] for r in self._recent]) if self._recent else np.zeros(0, np.int32)
        offsets = np.concatenate([r[2] for r in self._recent]) if self._recent else np.zeros(0, np.int32)
        recent = times >= self.now - RECENT_FRAMES
        mine = recent & (ids == sample_id) & (np.abs(offsets - offset) <= OFFSET_TOLERANCE)
        labels = label_of or {}
        label = labels.get(sample_id, sample_id)
        rival_rows = recent & (ids != sample_id)
        rival, rival_at = 0, None
        if rival_rows.any():
            keys, counts = np.unique(self._key(ids[rival_rows], offsets[rival_rows]), return_counts=True)
            smoothed = counts.copy()
            for d in (-1, 1):
                at = np.searchsorted(keys, keys + d)
                ok = (at < len(keys)) & (keys[np.minimum(at, len(keys) - 1)] == keys + d)
                smoothed[ok] += counts[at[ok]]
            for idx in np.argsort(-smoothed, kind="stable").tolist():  # strongest rival of another label
                other = int(keys[idx] >> 20)
                if labels.get(other, other) != label:
                    rival = int(smoothed[idx])
                    rival_at = (other, int((keys[idx] & ((1 << 20) - 1)) - (1 << 19)))
                    break
        return MatchState(int(sample_id), int(offset), self._best_total, int(mine.sum()), rival, rival_at)
