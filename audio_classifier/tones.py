"""Tone detection: call-progress tones, SIT, fax tones and silence (pure numpy; the channel
around it is ``channels/tone.py``).

Three stages, all streaming:

1. Frames (32 ms Hann windows every 10 ms, at absolute stream positions) are tested for
   tonality: the share of in-band power within the two strongest spectral peaks.
2. Runs of tonal frames with a steady peak become *segments*. When a segment closes, its
   frequencies are measured precisely with one long FFT over the whole segment (0.25 s of
   tone gives 4 Hz resolution, enough to tell 425 from 440 Hz or resolve 440 + 480 Hz).
3. Segments are matched against the tone plans (``tone_plans.py``): cadence matching for
   call-progress tones and fax calling tones, segment triples for SIT, duration for
   continuous tones. Evidence is emitted whenever a claim gets stronger, and again as a
   cadenced or steady tone goes on (its span then reaches further).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from .audio import SAMPLE_RATE, frames_of
from .evidence import Evidence
from .tone_plans import (
    CADENCE_TOLERANCE,
    FREQ_TOLERANCE,
    PARTIAL_SIT_SCORE,
    SIT_BANDS_HZ,
    SIT_CODES,
    SIT_DURATION_TOLERANCE_S,
    SIT_FREQ_TOLERANCE,
    SIT_LOW_HIGH_HZ,
    SIT_MAX_GAP_S,
    SIT_SEGMENT_S,
    SIT_SHORT_LONG_S,
    SIT_SUBTYPE_LABELS,
    TIMING_SLACK_S,
    TONE_SPECS,
    ToneSpec,
)

CHANNEL = "tone"

FRAME_HOP = 80
"""Frame step in samples (10 ms at 8 kHz)."""
FRAME_LEN = 256
"""Analysis window in samples (32 ms): 31.25 Hz bins."""

TONE_BAND_HZ = (300.0, 3400.0)
"""Where tone peaks are searched: the telephone band, so that a tone no plan knows (a test
tone, a modem, an off-plan beep up to 3.4 kHz) is measured as a tone, not left to the
model, which takes it for music or a voicemail beep."""
POWER_BAND_HZ = (100.0, 3800.0)
"""The band whose power the peaks must dominate."""

PEAK_HALF_WIDTH_BINS = 2
"""A peak's power is summed over ±2 bins: the Hann main lobe."""
SECOND_PEAK_DB = -12.0
"""A second peak counts as a component if within this of the strongest."""
TONAL_RATIO_MIN = 0.7
"""A frame is tonal when its (up to two) peaks hold this share of the in-band power."""
MIN_TONE_DBFS = -50.0
"""Quietest tone considered (dBFS, a full-scale sine being -3 dBFS)."""
SILENCE_DBFS = -55.0
"""Frames below this level count as silent."""
PEAK_CONTINUITY = 0.1
"""A frame continues a segment if its main peak is within this relative distance of a peak
of the previous frame (and vice versa)."""
ANCHOR_FRAMES = 4
"""...and shares a peak with the tonal frame this many tonal frames before it (40 ms, longer
than a window): a frame straddling two tones played back to back (a SIT) holds both, so
frame-to-frame continuity alone would chain one tone into the next."""
HANGOVER_FRAMES = 8
"""Non-tonal frames tolerated inside a segment: bridges a dropout (lost packets, clicks) of
up to about 110 ms (frames overlapping its edges still hold tone), while the shortest real
off period, 0.2 s less the cadence tolerance, leaves at least 10 non-tonal frames."""
EDGE_TRIM_DB = 4.0
"""Leading and trailing frames this far below the segment's median level are trimmed:
they only overlap the tone partly, and trimming them makes durations unbiased."""
MIN_SEGMENT_FRAMES = 3
"""Shorter runs (under 30 ms) are ignored."""
CUT_START_S = 0.1
"""A segment starting this close to the stream start may have been cut by it."""
HISTORY_S = 2.0
"""Samples kept for precise frequency measurement of the latest segment."""
MAX_ANALYSIS_S = 1.0
"""At most this much of a segment (its middle) is used for the precise FFT."""
COMPONENT_DB = -10.0
"""Spectral peaks within this of the strongest count as components of a segment."""
SIDEBAND_HZ = 30.0
"""Extra components this close to an expected frequency are modulation sidebands."""
MAX_HISTORY_SEGMENTS = 32
OPEN_CHECK_S = 0.25
"""An open (still sounding) segment is re-measured every this many seconds."""
FAINT_SEGMENT_DB = 15.0
"""A segment this far below the loudest segment of a tone plan's recent bursts is noise in
a gap (babble, crosstalk, a voice's harmonic at the tone's frequency): cadence matching
looks through it instead of letting it split or end the pattern."""
CUT_BURST_SHARE = 0.5
"""A last burst cut off by the end of the stream counts as a matched element once it has
lasted this share of the expected burst (and not longer than the burst may be); shorter,
it is consistent but proves nothing."""
SILENCE_SHARE = 0.95
"""Share of silent frames at the end of the stream that makes it 'silence'."""
SILENCE_SCORE = 0.95
STEADY_TONE_S = 3.0
"""A steady tone this long that no plan's continuous tone explains is no call-progress
sound of any plan: longer than every cadenced burst (NANP ringback's 2 s, with tolerance)."""
STEADY_LEVEL_SPREAD_DB = 0.75
"""... and whose level holds within this (standard deviation of its frames' levels, dB): a
generated tone under 10 dB SNR white or pink noise spreads 0.2-0.35 dB; music that holds a
chord for seconds spreads 1.1-1.8 dB (notes start and fade on the beat). A tone that held
its level that long stays steady while it sounds, whatever babble or a codec does to its
level later."""
STEADY_TONE_SCORE = 0.85
"""Score of the "unknown" claim for such a tone (dial tone, an unlisted plan's tone, a
test tone): below the decision threshold, so it decides only when nothing else is heard,
and any announcement after it explains it; it keeps a steady tone from passing for music
ringback."""
PLAN_BURST_S = 2.0
"""A burst at a plan's frequency this long may still be the plan's, whatever the listed
cadence: national plans on the same frequencies ring longer than the ones listed (Spain's
425 Hz ringback is 1.5 s on, Turkey's 450 Hz 2 s); 2 s is NANP ringback's, the longest."""
UNEXPLAINED_SPAN_S = 0.75
"""A stretch of tone no plan explains (see ``ToneDetector._match_unexplained``) is claimed
as ``unknown`` once its tone and the quiet after it span this long (its span then also
covers the quiet before it): over that span it outranks what the model hears (a voicemail
beep, music). Until then it is pending (``ToneDetector.pending``), which holds a rival
claim of the model for up to ``DecisionConfig.pending_wait_s`` from when it first was."""
UNEXPLAINED_SOUNDING_S = 1.0
"""... or, until quiet has followed its last burst, this long: longer than most notes of a
tune played in pure tones, and soon enough that the claim comes while the pending claim
(from the first check, 0.25 s into the tone) still holds the model."""
UNEXPLAINED_TONE_S = 0.5
"""... and once its bursts add up to this much tone: a lone syllable of a voice ("喂？",
0.2-0.4 s, whose neighbouring harmonics look like a tone pair) is no tone."""
UNEXPLAINED_GAP_S = 4.0
"""Longest quiet gap inside such a stretch (and after its last burst, which the stretch's
span reaches over while it stays quiet): the longest off period of any cadence in use."""
QUIET_GAP_DB = 6.0
"""A gap is quiet (line noise, distant babble; not a voice) when it is silent
(``SILENCE_DBFS``), or its loudest part stays this far below the tone on either side and it
is steady (``GAP_DYNAMICS_DB``), or far below the tone (``FAR_BELOW_DB``)."""
LOUDEST_SPAN_FRAMES = 10
"""A gap's loudness is that of its loudest 0.1 s (mean frame level, dB): a syllable's."""
FLOOR_PERCENTILE = 10.0
"""A gap's floor is the level of its quietest tenth of frames."""
FAR_BELOW_DB = 20.0
"""A gap whose loudest 0.1 s stays this far below the tone is quiet, whatever it holds."""
GAP_DYNAMICS_DB = 8.0
"""... and so is one below the tone by ``QUIET_GAP_DB`` whose loudest 0.1 s rises no more
than this above its floor: line noise and babble are steady, a voice's syllables stand out
from its pauses."""
HARMONIC_RATIOS = (1.5, 2.0, 3.0)
"""Two components in one of these ratios are a note and its harmonic, or a fifth: music (no
plan, and no DTMF pair, pairs tones so)."""
HARMONIC_TOLERANCE = 0.015
"""Relative distance from a ratio of ``HARMONIC_RATIOS`` that still counts as that ratio."""
EXTEND_FRAMES = 10
"""A claim over a tone still sounding is extended every this many frames (0.1 s)."""
BLIP_S = 0.08
"""Tonal runs shorter than this (a vowel's harmonic, a click, a babble voice) do not end a
quiet gap and are looked through in a stretch."""
ECHO_S = 0.15
"""A tonal run this short that begins within ``ECHO_AFTER_S`` of a louder tone's end and at
least ``ECHO_BELOW_DB`` below it is that tone's echo, not a tone of its own: AMR-NB rings
for about 0.1 s after a burst, near its frequency and 8-11 dB down. Patterns look through
it like a blip."""
ECHO_AFTER_S = 0.2
ECHO_BELOW_DB = 6.0
GAP_LEVELS_KEPT = int(UNEXPLAINED_GAP_S * SAMPLE_RATE / FRAME_HOP) + 1
"""Frame levels kept per gap (its latest): a longer gap ends a stretch whatever its level."""
UNEXPLAINED_TONE_SCORE = 0.6
"""Score of the ``unknown`` claim for such a stretch: above the outcome floor, so that it
outranks the model's claims within its span and ends progress, below the steady-tone claim
(which adds duration and a steady level) and far below the decision threshold."""


@dataclass
class Segment:
    """A run of tone with steady frequency. Times are seconds from the stream start."""

    start_s: float
    end_s: float
    freqs_hz: tuple[float, ...]
    level_db: float
    cut: bool
    """May have been cut by the stream's start."""
    closed: bool = True
    cut_end: bool = False
    """Closed by the stream's end while still sounding (or within the hangover)."""
    specs: frozenset[int] = frozenset()
    """Indices of the tone specs whose frequencies this segment matches."""
    level_spread_db: float = 0.0
    """Standard deviation of its frames' levels (dB)."""
    gap_before_db: float = -np.inf
    """Level (dBFS) of the loudest 0.1 s of the non-tonal frames since the previous segment
    (``LOUDEST_SPAN_FRAMES``), ``-inf`` when there were none."""
    gap_floor_db: float = -np.inf
    """Level (dBFS) of the quietest tenth of those frames (``FLOOR_PERCENTILE``): the gap's
    floor, to tell a steady noise from a voice (syllables over pauses)."""
    gap_before_s: float = 0.0
    """Length of that gap (s; at most ``UNEXPLAINED_GAP_S``)."""
    explained: bool = False
    """Part of a pattern a plan explains (a SIT) although its frequency matches no plan."""
    echo: bool = False
    """The echo of the tone before it (``ECHO_S``)."""

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def incidental(self) -> bool:
        """A blip (``BLIP_S``) or an echo: patterns look through it."""
        return self.duration_s < BLIP_S or self.echo


@functools.lru_cache(maxsize=int(MAX_ANALYSIS_S * SAMPLE_RATE / FRAME_HOP) + 1)
def _hann(n: int) -> np.ndarray:
    """``np.hanning(n)``, made once per length, read-only: excerpts are mostly whole frame
    hops (a sample more or less) up to ``MAX_ANALYSIS_S``, so a few lengths recur; the
    cache keeps the last 101 (at most 64 KB each)."""
    window = np.hanning(n)
    window.flags.writeable = False
    return window


def measure_components(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[float, ...]:
    """Frequencies (Hz, strongest first, at most two) of the tonal components of *samples*.

    One Hann-windowed FFT over the whole excerpt, zero-padded for interpolation.
    """
    n = len(samples)
    nfft = 1 << max(13, int(np.ceil(np.log2(n * 2))))
    spectrum = np.abs(np.fft.rfft(samples * _hann(n), nfft)) ** 2
    bin_hz = sample_rate / nfft
    lo, hi = int(TONE_BAND_HZ[0] / bin_hz), int(TONE_BAND_HZ[1] / bin_hz)
    band = spectrum[lo:hi]
    # peaks closer than the window's main lobe (2 * fs / n) are one component
    lobe_bins = int(np.ceil(2.0 * sample_rate / n / bin_hz))
    comps: list[float] = []
    top = band.max()
    work = band.copy()
    for _ in range(2):
        k = int(np.argmax(work))
        if work[k] <= 0 or 10 * np.log10(work[k] / top + 1e-30) < COMPONENT_DB:
            break
        comps.append(_interpolate(band, k) * bin_hz + lo * bin_hz)
        work[max(0, k - lobe_bins) : k + lobe_bins + 1] = 0
    return tuple(comps)


def _interpolate(power: np.ndarray, k: int) -> float:
    """Parabolic interpolation of a peak on log power; returns a fractional bin."""
    if 0 < k < len(power) - 1:
        a, b, c = np.log(power[k - 1 : k + 2] + 1e-30)
        denom = a - 2 * b + c
        if denom < 0:
            return k + 0.5 * (a - c) / denom
    return float(k)


def matches_freqs(freqs: tuple[float, ...], expected: tuple[float, ...]) -> bool:
    """True when every expected frequency is present and nothing else strong is."""
    if not freqs:
        return False
    for f in expected:
        if not any(abs(c - f) <= FREQ_TOLERANCE * f for c in freqs):
            # Two close components (440 + 480 Hz) can merge in a short excerpt: accept a
            # single measured peak between them when the segment is short.
            return False
    for c in freqs:
        if not any(abs(c - f) <= FREQ_TOLERANCE * f + SIDEBAND_HZ for f in expected):
            return False
    return True


def _element_matches(observed: float, expected: float, may_be_short: bool = False) -> bool:
    tolerance = CADENCE_TOLERANCE * expected + TIMING_SLACK_S
    if may_be_short:
        return observed <= expected + tolerance
    return abs(observed - expected) <= tolerance


@dataclass
class _FrameTrack:
    """The segment being built from tonal frames."""

    first: int
    last: int
    peaks: tuple[float, ...]
    levels: list[float] = field(default_factory=list)
    recent_peaks: list[tuple[float, ...]] = field(default_factory=list)
    """Peaks of its last ``ANCHOR_FRAMES`` tonal frames, oldest first."""
    misses: int = 0
    last_check_frames: int = 0
    gap_levels: list[float] = field(default_factory=list)
    """Levels of the non-tonal frames of the gap before it (a run too short to become a
    segment gives them back, its own frames with them)."""
    gap_loudness: tuple[float, float] | None = None
    """``_gap_loudness`` of the last ``GAP_LEVELS_KEPT`` of them, once asked (they do not
    change while the track is open, and every check of it asks)."""
    miss_levels: list[float] = field(default_factory=list)
    """Levels of the non-tonal frames since its last tonal one: the next gap's first."""


class ToneDetector:
    """Streaming tone detection. Feed float32 mono samples at ``SAMPLE_RATE``."""

    def __init__(self, specs: tuple[ToneSpec, ...] = TONE_SPECS) -> None:
        import scipy.fft  # here, not at import: start-up; it transforms many frames at once faster than numpy's

        self._rfft = scipy.fft.rfft
        self.specs = specs
        self._window = np.hanning(FRAME_LEN).astype(np.float32)
        self._level_scale = 1.0 / float(np.sum(self._window.astype(np.float64) ** 2))
        self._second_peak_ratio = 10 ** (SECOND_PEAK_DB / 10)
        bin_hz = SAMPLE_RATE / FRAME_LEN
        self._tone_slice = slice(int(np.ceil(TONE_BAND_HZ[0] / bin_hz)), int(TONE_BAND_HZ[1] / bin_hz) + 1)
        self._power_slice = slice(int(np.ceil(POWER_BAND_HZ[0] / bin_hz)), int(POWER_BAND_HZ[1] / bin_hz) + 1)
        self._pending = np.zeros(0, dtype=np.float32)  # samples not yet in a full frame
        self._pending_start = 0  # absolute index of _pending[0]
        self._next_frame = 0
        self._prepared: tuple[int, np.ndarray, list[tuple[float, ...]], np.ndarray] | None = None
        """(first frame, tonal, peaks, level): stage 1 of frames ``prepare`` analysed ahead."""
        self._history = np.zeros(0, dtype=np.float32)
        self._history_start = 0
        self._track: _FrameTrack | None = None
        self._segments: list[Segment] = []
        self._best: dict[tuple[str, str], tuple[float, float]] = {}  # (score, end_s) claimed
        self._frames = 0
        self._silent_frames = 0
        self._heard_before = False  # any tonal frame or loud frame so far
        self._gap_levels: list[float] = []  # levels of the non-tonal frames since the last segment
        self._dropped_unexplained = False  # an unexplained segment fell out of the history
        self._voice_db = -np.inf  # the loudest gap so far that sounded like a voice (_remember_gap)
        self._pending_claim: Evidence | None = None  # see _match_unexplained
        self._pending_since: tuple[float, float] | None = None  # (its first burst, since when) pending
        self._open_claim: Evidence | None = None  # its claim over the tone still sounding
        self._steady_start: float | None = None  # start of the latest tone claimed steady

    # -- public channel interface --------------------------------------------------------

    def prepare(self, samples: np.ndarray, start_sample: int) -> None:
        """Run stage 1 over the frames the coming samples complete, in one call: each
        frame's numbers are its own, whatever frames are analysed with it. The state
        machine (stages 2 and 3) still runs block by block in ``process``."""
        buf = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        n_frames = (len(buf) - FRAME_LEN) // FRAME_HOP + 1 if len(buf) >= FRAME_LEN else 0
        if n_frames > 0:
            self._prepared = (
                self._next_frame,
                *self._analyse(frames_of(buf, FRAME_LEN, FRAME_HOP, n_frames)),
            )

    def process(self, samples: np.ndarray, start_sample: int) -> list[Evidence]:
        """Analyse the next samples (which start at absolute index *start_sample*)."""
        self._append_history(samples, start_sample)
        buf = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        n_frames = (len(buf) - FRAME_LEN) // FRAME_HOP + 1 if len(buf) >= FRAME_LEN else 0
        evidence: list[Evidence] = []
        if n_frames > 0:
            analysed = self._take_prepared(n_frames)
            if analysed is None:
                analysed = self._analyse(frames_of(buf, FRAME_LEN, FRAME_HOP, n_frames))
            evidence += self._on_frames(*analysed)
            self._next_frame += n_frames
        consumed = n_frames * FRAME_HOP
        self._pending = buf[consumed:].copy()
        self._pending_start += consumed
        return evidence

    def _take_prepared(self, n_frames: int) -> tuple[np.ndarray, list[tuple[float, ...]], np.ndarray] | None:
        """Stage 1 of the next *n_frames* frames, if ``prepare`` analysed them."""
        if self._prepared is None:
            return None
        first, tonal, peaks, level = self._prepared
        a, b = self._next_frame - first, self._next_frame - first + n_frames
        if a < 0 or b > len(tonal):
            self._prepared = None
            return None
        if b == len(tonal):
            self._prepared = None
        return tonal[a:b], peaks[a:b], level[a:b]

    def heard(self) -> None:
        """Tones are not words."""
        return None

    def pending(self) -> Evidence | None:
        """The ``unknown`` claim a stretch of unexplained tone still too short to claim
        would make (``_match_unexplained``), else a SIT still arriving (``_arriving_sit``),
        or ``None``."""
        return self._pending_claim or self._arriving_sit()

    def _arriving_sit(self) -> Evidence | None:
        """A ``sit`` claim while the tones heard so far, the latest still sounding, may be
        the start of a SIT: at least ``SIT_SEGMENT_S[0]`` of its first tone, each tone in
        its band, back to back. Its ``start_s`` is the sounding tone's start, so the
        decision's wait (``pending_wait_s``) runs anew with each tone and covers the next
        one: a model window over the SIT's first tones ("voicemail" under babble) does not
        decide before the SIT is complete (``_match_sit`` claims it when its last tone ends).
        Made from the frames, without measuring the excerpt: it runs after every block."""
        track = self._track
        if track is None or not track.recent_peaks:
            return None
        first_s = self._frame_time(track.first) - FRAME_HOP / 2 / SAMPLE_RATE
        end_s = self._frame_time(track.last) + FRAME_HOP / 2 / SAMPLE_RATE
        cut = first_s <= CUT_START_S and not self._heard_before
        # the tone of the frame it is anchored on: a frame at the switch to the next tone
        # may hold both, the next one's the stronger
        sounding = Segment(first_s, end_s, track.recent_peaks[0][:1], 0.0, cut, closed=False)
        run = [sounding]
        for seg in reversed(self._segments[-2:]):
            if run[0].start_s - seg.end_s > SIT_MAX_GAP_S:
                break
            run.insert(0, seg)
        for k in range(len(run), 0, -1):
            tones = run[-k:]
            long_enough = tones[0].duration_s >= SIT_SEGMENT_S[0] or (tones[0].cut and k > 1)
            if long_enough and _sit_tones(tones, complete=False):
                detail = {"tone": "sit", "arriving": True, "tones": k}
                score = SIT_SUBTYPE_LABELS[None][1]
                return Evidence(CHANNEL, "sit", score, round(first_s, 3), round(end_s, 3), detail)
        return None

    def finish(self) -> list[Evidence]:
        """End of stream: close the open segment and judge silence."""
        evidence = self._close_track(at_end=True) if self._track else []
        evidence += self._check_trailing_gap(self._next_frame)
        if self._frames and self._silent_frames >= SILENCE_SHARE * self._frames:
            end = self._frames * FRAME_HOP / SAMPLE_RATE
            evidence += self._emit(
                "silence",
                "silence",
                SILENCE_SCORE,
                0.0,
                end,
                {"tone": "silence", "silent_share": round(self._silent_frames / self._frames, 3)},
            )
        return evidence

    # -- stage 1: frames -------------------------------------------------------------------

    def _analyse(self, frames: np.ndarray) -> tuple[np.ndarray, list[tuple[float, ...]], np.ndarray]:
        """Per frame: tonal flag, peak frequencies (Hz) and level (dBFS).

        Runs on every block of every call: written for few numpy calls, not for brevity.
        """
        windowed = frames * self._window
        spectrum = self._rfft(windowed, axis=1)
        power = spectrum.real**2 + spectrum.imag**2
        level = 10 * np.log10(np.einsum("ij,ij->i", windowed, windowed) * self._level_scale + 1e-12)
        band_power = power[:, self._power_slice].sum(axis=1)
        tone = power[:, self._tone_slice]
        n_bins = tone.shape[1]
        w = PEAK_HALF_WIDTH_BINS
        rows = np.arange(len(frames))
        cum = np.cumsum(tone, axis=1)
        k1 = tone.argmax(axis=1)
        masked = tone.copy()
        lo1, hi1 = np.maximum(k1 - w, 0), np.minimum(k1 + w, n_bins - 1)
        span = np.arange(-w, w + 1)
        masked[rows[:, None], np.clip(k1[:, None] + span, 0, n_bins - 1)] = 0.0
        k2 = masked.argmax(axis=1)
        lo2, hi2 = np.maximum(k2 - w, 0), np.minimum(k2 + w, n_bins - 1)
        # energy within ±w bins of each peak, from the running sum
        e1 = cum[rows, hi1] - cum[rows, lo1] + tone[rows, lo1]
        e2 = cum[rows, hi2] - cum[rows, lo2] + tone[rows, lo2]
        has2 = masked[rows, k2] > tone[rows, k1] * self._second_peak_ratio
        energy = e1 + e2 * has2
        tonal = (energy >= TONAL_RATIO_MIN * band_power) & (level >= MIN_TONE_DBFS)
        peaks: list[tuple[float, ...]] = [()] * len(frames)
        hit = np.flatnonzero(tonal)
        if len(hit):
            tone_hit = tone[hit]
            f1 = self._peaks_hz(tone_hit, k1[hit]).tolist()
            f2 = self._peaks_hz(tone_hit, k2[hit]).tolist()
            for j, i in enumerate(hit.tolist()):
                peaks[i] = (f1[j], f2[j]) if has2[i] else (f1[j],)
        return tonal, peaks, level

    def _peaks_hz(self, power: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Interpolated frequencies (Hz) of the peaks at bins *k* of each row of *power*
        (parabolic interpolation on log power)."""
        kc = np.clip(k, 1, power.shape[1] - 2)
        log = np.log(power[np.arange(len(k))[:, None], kc[:, None] + np.arange(-1, 2)] + 1e-30)
        a, b, c = log[:, 0], log[:, 1], log[:, 2]
        denom = a - 2 * b + c
        ok = (denom < 0) & (kc == k)
        delta = np.where(ok, 0.5 * (a - c) / np.where(ok, denom, -1.0), 0.0)
        return (self._tone_slice.start + k + delta) * (SAMPLE_RATE / FRAME_LEN)

    def _on_frames(
        self, tonal: np.ndarray, peaks: list[tuple[float, ...]], level: np.ndarray
    ) -> list[Evidence]:
        """Stage 2 over the next frames: runs of non-tonal frames with no segment open (a
        voice, noise, silence: most of most calls) go to ``_on_gap_frames`` whole, the
        others one by one to ``_on_frame``."""
        evidence: list[Evidence] = []
        tonal_at = np.flatnonzero(tonal).tolist()
        levels = level.tolist()
        n, i, t = len(levels), 0, 0
        while i < n:
            while t < len(tonal_at) and tonal_at[t] < i:
                t += 1
            run_end = tonal_at[t] if t < len(tonal_at) else n
            if self._track is None and run_end > i:
                evidence += self._on_gap_frames(self._next_frame + i, levels[i:run_end])
                i = run_end
            else:
                evidence += self._on_frame(self._next_frame + i, bool(tonal[i]), peaks[i], levels[i])
                i += 1
        return evidence

    def _on_gap_frames(self, first: int, levels: list[float]) -> list[Evidence]:
        """``_on_frame`` for a run of non-tonal frames while no segment is open, frame
        *first* onwards, in a few steps: the gap's levels are added up to each frame where
        something happens (the gap is checked every 10th frame; its kept levels are
        trimmed when they pass ``2 * GAP_LEVELS_KEPT``), in the order ``_on_frame`` adds
        them."""
        evidence: list[Evidence] = []
        self._frames += len(levels)
        self._silent_frames += sum(v < SILENCE_DBFS for v in levels)
        k, n = 0, len(levels)
        while k < n:
            check = k + (-(first + k)) % 10  # the next frame checked
            trim = k + 2 * GAP_LEVELS_KEPT - len(self._gap_levels)  # the frame whose level passes the limit
            stop = min(check, trim, n - 1)
            self._gap_levels += levels[k : stop + 1]
            if len(self._gap_levels) > 2 * GAP_LEVELS_KEPT:
                self._remember_gap(self._gap_levels[:-GAP_LEVELS_KEPT])
                del self._gap_levels[:-GAP_LEVELS_KEPT]
            if (first + stop) % 10 == 0:
                evidence += self._check_trailing_gap(first + stop)
            k = stop + 1
        return evidence

    def _on_frame(self, index: int, tonal: bool, peaks: tuple[float, ...], level: float) -> list[Evidence]:
        self._frames += 1
        if level < SILENCE_DBFS:
            self._silent_frames += 1
        evidence: list[Evidence] = []
        track = self._track
        if tonal:
            if track is not None and not (
                _continues(track.peaks, peaks) and _shares_peak(track.recent_peaks[0], peaks)
            ):
                evidence += self._close_track()
                track = None
            if track is None:
                evidence += self._check_trailing_gap(index)
                track = self._track = _FrameTrack(index, index, peaks, gap_levels=self._gap_levels)
                self._gap_levels = []
            track.last = index
            track.peaks = peaks
            track.recent_peaks.append(peaks)
            if len(track.recent_peaks) > ANCHOR_FRAMES:
                del track.recent_peaks[0]
            track.levels.append(float(level))
            track.misses = 0
            track.miss_levels.clear()
            length = (track.last - track.first + 1) * FRAME_HOP / SAMPLE_RATE
            since_check = length - track.last_check_frames * FRAME_HOP / SAMPLE_RATE
            # a stretch about to be claimed is checked as often as a claim is extended
            due = OPEN_CHECK_S if self._pending_claim is None else EXTEND_FRAMES * FRAME_HOP / SAMPLE_RATE
            if since_check >= due - 1e-9:
                track.last_check_frames = track.last - track.first + 1
                evidence += self._check_open(track)
            elif self._open_claim is not None and (index - track.first) % EXTEND_FRAMES == 0:
                evidence += self._extend_open_claim(index)
        elif track is not None:
            track.misses += 1
            track.miss_levels.append(float(level))
            if track.misses > HANGOVER_FRAMES:
                evidence += self._close_track()
        else:
            self._gap_levels.append(float(level))
            if len(self._gap_levels) > 2 * GAP_LEVELS_KEPT:
                self._remember_gap(self._gap_levels[:-GAP_LEVELS_KEPT])
                del self._gap_levels[:-GAP_LEVELS_KEPT]
            if index % 10 == 0:
                evidence += self._check_trailing_gap(index)
        return evidence

    def _remember_gap(self, levels: list[float]) -> None:
        """Keep the loudness of a gap (or a part of one) that sounded like a voice (its
        loudest 0.1 s more than ``GAP_DYNAMICS_DB`` over its floor): the call carried
        something else than tones, however long ago."""
        if levels:
            loudest, floor = _gap_loudness(levels)
            if loudest - floor > GAP_DYNAMICS_DB:
                self._voice_db = max(self._voice_db, loudest)

    def _gap_quiet(self, tone_db: float) -> bool:
        """Whether the gap so far is quiet next to a tone this loud (``_quiet``)."""
        return _quiet(*_gap_loudness(self._gap_levels), tone_db)

    # -- stage 2: segments -----------------------------------------------------------------

    def _append_history(self, samples: np.ndarray, start_sample: int) -> None:
        self._history = np.concatenate([self._history, samples])
        excess = len(self._history) - int(HISTORY_S * SAMPLE_RATE)
        if excess > 0:
            self._history = self._history[excess:]
            self._history_start += excess

    def _frame_time(self, frame: int) -> float:
        """Centre of a frame, seconds."""
        return (frame * FRAME_HOP + FRAME_LEN / 2) / SAMPLE_RATE

    def _segment_from_track(self, track: _FrameTrack, closed: bool, at_end: bool = False) -> Segment | None:
        levels = np.asarray(track.levels)
        if len(levels) < MIN_SEGMENT_FRAMES:
            return None
        median = float(np.median(levels))
        floor = median - EDGE_TRIM_DB
        keep = np.flatnonzero(levels >= floor)
        first, last = track.first + int(keep[0]), track.first + int(keep[-1])
        # levels only holds tonal frames; hangover frames inside are counted by index
        start_s = self._frame_time(first) - FRAME_HOP / 2 / SAMPLE_RATE
        end_s = self._frame_time(last) + FRAME_HOP / 2 / SAMPLE_RATE
        a = max(int(start_s * SAMPLE_RATE), self._history_start)
        b = int(end_s * SAMPLE_RATE) - self._history_start
        a -= self._history_start
        b = min(b, len(self._history))
        excerpt = self._history[max(a, 0) : b]
        limit = int(MAX_ANALYSIS_S * SAMPLE_RATE)
        if len(excerpt) > limit:
            mid = (len(excerpt) - limit) // 2
            excerpt = excerpt[mid : mid + limit]
        if len(excerpt) < MIN_SEGMENT_FRAMES * FRAME_HOP:
            return None
        freqs = tuple(float(f) for f in measure_components(excerpt))
        cut = start_s <= CUT_START_S and not self._heard_before
        specs = frozenset(i for i, s in enumerate(self.specs) if matches_freqs(freqs, s.freqs_hz))
        spread = float(np.std(levels[keep]))
        if track.gap_loudness is None:
            track.gap_loudness = _gap_loudness(track.gap_levels[-GAP_LEVELS_KEPT:])
        loudest, floor_db = track.gap_loudness
        return Segment(
            start_s,
            end_s,
            freqs,
            median,
            cut,
            closed,
            at_end,
            specs,
            spread,
            gap_before_db=loudest,
            gap_floor_db=floor_db,
            gap_before_s=min(len(track.gap_levels) * FRAME_HOP / SAMPLE_RATE, UNEXPLAINED_GAP_S),
        )

    def _extend_open_claim(self, frame: int) -> list[Evidence]:
        """Reach the strongest ``unknown`` claim (steady or unexplained) of the sounding tone
        to *frame*: between the segment checks (``OPEN_CHECK_S``), so that it never lags a
        model window's end."""
        claim = self._open_claim
        assert claim is not None
        end = self._frame_time(frame) + FRAME_HOP / 2 / SAMPLE_RATE
        key = claim.detail["tone"]  # "steady" or "unexplained": the key it was claimed under
        return self._emit(claim.label, key, claim.score, claim.start_s, end, claim.detail, extend=True)

    def _close_track(self, at_end: bool = False) -> list[Evidence]:
        evidence = self._close_segment(at_end)
        self._open_claim = None  # used above: a steady claim keeps the span of its stretch
        return evidence

    def _close_segment(self, at_end: bool) -> list[Evidence]:
        track, self._track = self._track, None
        segment = self._segment_from_track(track, closed=True, at_end=at_end) if track else None
        if segment is None or segment.duration_s < BLIP_S:
            if track is not None:  # too short to be a tone: its frames are part of the gap
                frames = track.gap_levels + track.levels + track.miss_levels + self._gap_levels
                self._remember_gap(frames[:-GAP_LEVELS_KEPT])
                self._gap_levels = frames[-GAP_LEVELS_KEPT:]
            if segment is None:
                return []
        else:
            self._remember_gap(track.gap_levels)  # type: ignore[union-attr]
            self._gap_levels = list(track.miss_levels)  # type: ignore[union-attr]
        self._heard_before = True
        previous = next((s for s in reversed(self._segments) if not s.incidental), None)
        segment.echo = previous is not None and _echo_of(segment, previous)
        self._segments.append(segment)
        for dropped in self._segments[:-MAX_HISTORY_SEGMENTS]:
            if not (
                self._plan_shaped(dropped)
                or dropped.explained
                or dropped.incidental
                or _same_tone(dropped.freqs_hz, segment.freqs_hz)
            ):
                self._dropped_unexplained = True  # another tone, heard before the history
        del self._segments[:-MAX_HISTORY_SEGMENTS]
        return (
            self._match_cadences(now=None)
            + self._match_sit()
            + self._match_continuous(segment)
            + self._match_unexplained()
        )

    def _check_open(self, track: _FrameTrack) -> list[Evidence]:
        segment = self._segment_from_track(track, closed=False)
        if segment is None:
            return []
        # unexplained first: a steady-tone claim reaches over the stretch it belongs to
        self._open_claim = None  # each match below sets it when this tone still qualifies
        evidence = self._match_unexplained(open_segment=segment)
        return evidence + self._match_continuous(segment)

    def _check_trailing_gap(self, frame: int) -> list[Evidence]:
        """Count a gap after the last segment once it is long enough to match a cadence
        (and reach an unexplained tone's span over it while it stays quiet)."""
        if not self._segments:
            return []
        now = self._frame_time(frame) - FRAME_HOP / 2 / SAMPLE_RATE
        if now <= self._segments[-1].end_s:
            return []
        return self._match_cadences(now=now) + self._match_unexplained(now=now)

    # -- stage 3: patterns -----------------------------------------------------------------

    def _match_cadences(self, now: float | None) -> list[Evidence]:
        """Match the recent segments against every cadenced spec; *now* (seconds), when
        given, is the end of the gap still in progress after them."""
        evidence: list[Evidence] = []
        heard = frozenset().union(*(s.specs for s in self._segments))  # specs with a chain at all
        for index, spec in enumerate(self.specs):
            if spec.cadence is None or index not in heard:
                continue
            chain = self._chain(index, spec)
            if not chain:
                continue
            pending = None if now is None else now - chain[-1].end_s
            elements: list[float] = []
            for i, seg in enumerate(chain):
                if i:
                    elements.append(seg.start_s - chain[i - 1].end_s)
                elements.append(seg.duration_s)
            partial_gap = pending is not None and pending > 0
            if partial_gap:
                elements.append(pending)
            count = _matched_elements(
                elements, spec.cadence, chain[0].cut, partial_gap, chain[-1].cut_end and not partial_gap
            )
            if count <= 0:
                continue
            score = spec.scores[min(count, len(spec.scores) - 1)]
            if score <= 0:
                continue
            end = chain[-1].end_s + (pending if partial_gap else 0.0)
            evidence += self._emit(
                spec.label,
                f"{spec.plan}:{spec.name}",
                score,
                chain[0].start_s,
                end,
                {
                    "tone": spec.name,
                    "plan": spec.plan,
                    "frequencies_hz": [round(f, 1) for f in chain[-1].freqs_hz],
                    "bursts": len(chain),
                    "matched_elements": count,
                },
                extend=now is None,
            )
        return evidence

    def _chain(self, index: int, spec: ToneSpec) -> list[Segment]:
        """The latest run of consecutive segments that match *spec*'s frequencies, no longer
        than its scores need (each segment adds a burst and a gap). Faint segments (see
        ``FAINT_SEGMENT_DB``) and echoes are looked through; the latest other segment must match."""
        chain: list[Segment] = []
        longest_gap = max(spec.cadence or (0.0,)) * (1 + CADENCE_TOLERANCE) + TIMING_SLACK_S
        enough = len(spec.scores) // 2 + 1
        # the loudest matching burst within the span a full chain covers sets "faint"
        horizon = self._segments[-1].end_s - enough * sum(spec.cadence or (0.0,)) * (1 + CADENCE_TOLERANCE)
        levels = [s.level_db for s in self._segments if index in s.specs and s.end_s >= horizon]
        if not levels:
            return chain
        faint = max(levels) - FAINT_SEGMENT_DB
        for seg in reversed(self._segments):
            if seg.level_db < faint or seg.echo:
                continue
            if index not in seg.specs or len(chain) >= enough:
                break
            if chain and chain[0].start_s - seg.end_s > longest_gap:
                break
            chain.insert(0, seg)
        return chain

    def _match_continuous(self, segment: Segment) -> list[Evidence]:
        evidence: list[Evidence] = []
        explained = False  # a plan's continuous tone (fax answer, UK number unobtainable)
        for index, spec in enumerate(self.specs):
            if spec.cadence is not None or index not in segment.specs:
                continue
            score = 0.0
            for min_s, step_score in spec.scores:  # type: ignore[misc]
                if segment.duration_s >= min_s:
                    score = step_score
            if score > 0:
                explained = True
                evidence += self._emit(
                    spec.label,
                    f"{spec.plan}:{spec.name}",
                    score,
                    segment.start_s,
                    segment.end_s,
                    {
                        "tone": spec.name,
                        "plan": spec.plan,
                        "frequencies_hz": [round(f, 1) for f in segment.freqs_hz],
                        "duration_s": round(segment.duration_s, 3),
                    },
                )
        steady = segment.level_spread_db <= STEADY_LEVEL_SPREAD_DB or segment.start_s == self._steady_start
        if not explained and segment.duration_s >= STEADY_TONE_S and steady:
            self._steady_start = segment.start_s  # it stays steady (STEADY_LEVEL_SPREAD_DB)
            stretch = self._open_claim
            claim = Evidence(
                CHANNEL,
                "unknown",
                STEADY_TONE_SCORE,
                round(min(segment.start_s, stretch.start_s) if stretch else segment.start_s, 3),
                round(segment.end_s, 3),
                {
                    "tone": "steady",
                    "frequencies_hz": [round(f, 1) for f in segment.freqs_hz],
                    "duration_s": round(segment.duration_s, 3),
                    "level_spread_db": round(segment.level_spread_db, 2),
                },
            )
            if not segment.closed:
                self._open_claim = claim
            # the claim's span follows the tone while it sounds
            evidence += self._emit(
                claim.label, "steady", claim.score, claim.start_s, claim.end_s, claim.detail, extend=True
            )
        return evidence

    def _match_unexplained(
        self, now: float | None = None, open_segment: Segment | None = None
    ) -> list[Evidence]:
        """Claim ``unknown`` over the latest stretch of tone no plan explains (see
        ``UNEXPLAINED_SPAN_S``): bursts of one tone (the same frequencies, not a note and
        its harmonics) matching no plan and in no SIT, in a call that so far carried nothing
        else but plan tones and quiet (a beep after a voicemail greeting, a melody's notes
        are the model's to judge). *open_segment* is one still sounding, *now* (seconds)
        the end of the quiet gap still in progress after the last one. While such a stretch
        is too short to claim, it is the stream's pending claim (``pending``)."""
        pending_since, self._pending_since, self._pending_claim = self._pending_since, None, None
        segments = [*self._segments, open_segment] if open_segment is not None else self._segments
        run: list[Segment] = []
        before: list[Segment] = []
        for i in range(len(segments) - 1, -1, -1):
            seg = segments[i]
            if seg.incidental and seg is not open_segment:
                continue  # part of a gap
            if self._plan_shaped(seg) or seg.explained or _harmonic(seg.freqs_hz):
                before = segments[: i + 1]
                break
            if run and not (_quiet_gap(seg, run[0]) and _same_tone(seg.freqs_hz, run[0].freqs_hz)):
                before = segments[: i + 1]
                break
            run.insert(0, seg)
        if not run or self._dropped_unexplained:
            return []
        if (now is None or now - run[-1].end_s <= SIT_MAX_GAP_S) and _may_become_sit(run):
            return []  # a SIT's next tone may follow
        first, last = run[0], run[-1]
        tone_db = min(s.level_db for s in run)
        others = [
            s
            for s in before
            if not (
                self._plan_shaped(s) or s.explained or s.incidental or s.level_db < tone_db - FAINT_SEGMENT_DB
            )
        ]
        voice_heard = self._voice_db > max(tone_db - FAR_BELOW_DB, SILENCE_DBFS)
        if (
            others
            or voice_heard
            or not all(_quiet(s.gap_before_db, s.gap_floor_db, tone_db) for s in [*before, first])
        ):
            return []  # other sounds were heard: what this tone is, the other channels judge
        end = last.end_s
        if now is not None:
            if not (now - end <= UNEXPLAINED_GAP_S and self._gap_quiet(last.level_db)):
                return []  # something else plays now
            end = now
        tone_s = sum(s.duration_s for s in run)
        start = max(first.start_s - first.gap_before_s, 0.0)
        detail = {
            "tone": "unexplained",
            "frequencies_hz": [round(f, 1) for f in last.freqs_hz],
            "bursts": len(run),
            "tone_s": round(tone_s, 3),
        }
        span = UNEXPLAINED_SPAN_S if now is not None else UNEXPLAINED_SOUNDING_S
        if end - first.start_s < span or tone_s < UNEXPLAINED_TONE_S:
            # pending since it first was (the decision's wait runs from then)
            since = pending_since[1] if pending_since and pending_since[0] == first.start_s else end
            self._pending_since = (first.start_s, since)
            self._pending_claim = Evidence(
                CHANNEL, "unknown", UNEXPLAINED_TONE_SCORE, round(since, 3), round(end, 3), detail
            )
            return []
        self._pending_since = None
        claim = Evidence(CHANNEL, "unknown", UNEXPLAINED_TONE_SCORE, round(start, 3), round(end, 3), detail)
        if open_segment is not None:
            self._open_claim = claim
        # the claim's span follows the tone and its quiet gaps
        return self._emit(
            claim.label, "unexplained", claim.score, claim.start_s, claim.end_s, detail, extend=True
        )

    def _plan_shaped(self, seg: Segment) -> bool:
        """Whether a plan may explain *seg*: a continuous tone at its frequencies, or a
        cadenced one whose longest burst (at least ``PLAN_BURST_S``), with the cadence
        tolerance, is no shorter than it: a 1100 Hz tone sounding for seconds is no fax
        calling tone, and no plan explains it."""
        for index in seg.specs:
            cadence = self.specs[index].cadence
            longest = max(PLAN_BURST_S, *cadence[::2]) if cadence is not None else None
            if longest is None or _element_matches(seg.duration_s, longest, may_be_short=True):
                return True
        return False

    def _match_sit(self) -> list[Evidence]:
        segs = self._segments
        if len(segs) >= 3 and _sit_tones(segs[-3:], complete=True):
            s1, s2, s3 = segs[-3:]
            for seg in (s1, s2, s3):
                seg.explained = True
            subtype = _decode_sit(s1, s2)
            label, score = SIT_SUBTYPE_LABELS[subtype]
            detail = {
                "tone": "sit",
                "subtype": subtype,
                "frequencies_hz": [round(float(s.freqs_hz[0]), 1) for s in (s1, s2, s3)],
                "durations_ms": [round(1000 * s.duration_s) for s in (s1, s2, s3)],
            }
            return self._emit(label, "sit", score, s1.start_s, s3.end_s, detail, preamble=True)
        if len(segs) == 2 and segs[0].cut and _is_sit_tail(segs):
            s2, s3 = segs
            s2.explained = s3.explained = True
            detail = {
                "tone": "sit",
                "subtype": None,
                "partial": True,
                "frequencies_hz": [round(s.freqs_hz[0], 1) for s in (s2, s3)],
                "durations_ms": [round(1000 * s.duration_s) for s in (s2, s3)],
            }
            return self._emit(
                "sit", "sit_partial", PARTIAL_SIT_SCORE, s2.start_s, s3.end_s, detail, preamble=True
            )
        return []

    def _emit(
        self,
        label: str,
        key: str,
        score: float,
        start_s: float,
        end_s: float,
        detail: dict,
        preamble: bool = False,
        extend: bool = False,
    ) -> list[Evidence]:
        """Evidence for *label* if it is stronger than what this detector said before, or,
        with *extend*, as strong but reaching further (a cadenced tone's next burst: the
        claim's span follows the tone for as long as it sounds)."""
        best, end = self._best.get((label, key), (0.0, 0.0))
        if score < best or (score == best and not (extend and end_s > end)):
            return []
        self._best[(label, key)] = (score, end_s)
        return [Evidence(CHANNEL, label, score, round(start_s, 3), round(end_s, 3), detail, preamble)]


def _continues(previous: tuple[float, ...], current: tuple[float, ...]) -> bool:
    """Whether a frame's peaks continue the previous frame's tone (see PEAK_CONTINUITY)."""

    def near(f: float, options: tuple[float, ...]) -> bool:
        return any(abs(f - o) <= PEAK_CONTINUITY * o for o in options)

    return near(current[0], previous) and near(previous[0], current)


def _shares_peak(anchor: tuple[float, ...], current: tuple[float, ...]) -> bool:
    """Whether a peak of *current* is near a peak of *anchor* (see ANCHOR_FRAMES)."""
    return any(abs(f - a) <= PEAK_CONTINUITY * a for f in current for a in anchor)


def _matched_elements(
    elements: list[float],
    cadence: tuple[float, ...],
    first_cut: bool,
    partial_last: bool,
    last_cut: bool = False,
) -> int:
    """How many consecutive elements, ending with the latest, follow *cadence*.

    Elements alternate burst, gap, burst, ... The first burst may be shorter when the
    media started mid-tone (it is then consistent but not counted); a trailing gap still
    in progress counts once it has reached the expected length less the tolerance (and
    is not yet too long); a last burst cut by the end of the stream (*last_cut*) counts
    once it has reached ``CUT_BURST_SHARE`` of the expected length (and is not too long).
    """
    best = 0
    period = len(cadence)
    for phase in range(0, period, 2):  # bursts align with bursts
        count = 0
        for back, observed in enumerate(reversed(elements)):
            position = len(elements) - 1 - back
            expected = cadence[(phase + position) % period]
            if position == len(elements) - 1 and partial_last:
                tolerance = CADENCE_TOLERANCE * expected + TIMING_SLACK_S
                if observed < expected - tolerance:
                    continue  # gap still growing: neither a match nor a break yet
                ok = observed <= expected + tolerance
            elif position == len(elements) - 1 and last_cut:
                if not _element_matches(observed, expected, may_be_short=True):
                    break
                if observed < CUT_BURST_SHARE * expected:
                    continue  # consistent, too short to prove anything
                ok = True
            elif position == 0 and first_cut:
                # a cut first burst is consistent if not too long, but proves nothing
                if not _element_matches(observed, expected, may_be_short=True):
                    break
                continue
            else:
                ok = _element_matches(observed, expected)
            if not ok:
                break
            count += 1
        best = max(best, count)
    return best


def _gap_loudness(levels: list[float]) -> tuple[float, float]:
    """(loudest, floor) of a gap whose frames have these levels (``Segment.gap_before_db``,
    ``Segment.gap_floor_db``); ``-inf`` for no frames."""
    if not levels:
        return -np.inf, -np.inf
    values = np.asarray(levels)
    span = min(LOUDEST_SPAN_FRAMES, len(values))
    loudest = np.convolve(values, np.full(span, 1.0 / span), mode="valid").max()
    return float(loudest), float(np.percentile(values, FLOOR_PERCENTILE))


def _same_tone(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Whether two segments' components are one tone's (``FREQ_TOLERANCE``; two close
    components may be measured as one)."""
    if not a or not b:
        return False
    fewer, more = (a, b) if len(a) <= len(b) else (b, a)
    return all(any(abs(f - g) <= FREQ_TOLERANCE * g for g in more) for f in fewer)


def _harmonic(freqs: tuple[float, ...]) -> bool:
    """Whether two components are in a ratio of ``HARMONIC_RATIOS``."""
    if len(freqs) < 2:
        return False
    ratio = max(freqs) / min(freqs)
    return any(abs(ratio - n) <= HARMONIC_TOLERANCE * n for n in HARMONIC_RATIOS)


def _quiet(loudest_db: float, floor_db: float, tone_db: float) -> bool:
    """Whether a gap (``Segment.gap_before_db``, ``Segment.gap_floor_db``) is quiet next to a
    tone this loud: silent, far below the tone, or below it and steady (``GAP_DYNAMICS_DB``)."""
    if loudest_db < SILENCE_DBFS or loudest_db <= tone_db - FAR_BELOW_DB:
        return True
    return loudest_db <= tone_db - QUIET_GAP_DB and loudest_db - floor_db <= GAP_DYNAMICS_DB


def _echo_of(segment: Segment, before: Segment) -> bool:
    """Whether *segment* is the echo of the tone *before* it (``ECHO_S``)."""
    return (
        segment.duration_s <= ECHO_S
        and 0.0 <= segment.start_s - before.end_s <= ECHO_AFTER_S
        and segment.level_db <= before.level_db - ECHO_BELOW_DB
    )


def _quiet_gap(before: Segment, after: Segment) -> bool:
    """Whether the gap between two segments is short and quiet (``UNEXPLAINED_GAP_S``)."""
    return after.start_s - before.end_s <= UNEXPLAINED_GAP_S and _quiet(
        after.gap_before_db, after.gap_floor_db, min(before.level_db, after.level_db)
    )


def _in_band(freq: float, band: tuple[float, float]) -> bool:
    return band[0] <= freq <= band[1]


def _sit_tones(segs: list[Segment], *, complete: bool) -> bool:
    """Whether *segs* are a SIT's tones in order: each in its band, the gaps between them
    short. *complete* (all three) also checks each tone's length (the first may be cut by
    the start of the media, the last may run on into what follows); otherwise only that
    none is longer than a SIT tone (a SIT still arriving, its last tone perhaps sounding)."""
    for i, (seg, band) in enumerate(zip(segs, SIT_BANDS_HZ, strict=complete)):
        if not seg.freqs_hz or not _in_band(seg.freqs_hz[0], band):
            return False
        if i and seg.start_s - segs[i - 1].end_s > SIT_MAX_GAP_S:
            return False
        if not complete:
            if seg.duration_s > SIT_SEGMENT_S[1]:
                return False
            continue
        last_may_run_on = i == 2  # an announcement or silence follows; only check minimum
        if seg.duration_s < SIT_SEGMENT_S[0] or (not last_may_run_on and seg.duration_s > SIT_SEGMENT_S[1]):
            if not (i == 0 and seg.cut and seg.duration_s < SIT_SEGMENT_S[0]):
                return False
    return True


def _may_become_sit(run: list[Segment]) -> bool:
    """Whether the latest segments of *run* could be the start of a SIT not yet complete
    (``_match_sit`` explains a whole one)."""
    return any(_sit_tones(run[-k:], complete=False) for k in range(1, min(3, len(run)) + 1))


def _is_sit_tail(segs: list[Segment]) -> bool:
    s2, s3 = segs
    return (
        bool(s2.freqs_hz)
        and bool(s3.freqs_hz)
        and _in_band(s2.freqs_hz[0], SIT_BANDS_HZ[1])
        and _in_band(s3.freqs_hz[0], SIT_BANDS_HZ[2])
        and s3.start_s - s2.end_s <= SIT_MAX_GAP_S
        and s3.duration_s >= SIT_SEGMENT_S[0]
    )


def _decode_sit(s1: Segment, s2: Segment) -> str | None:
    """Telcordia subtype from segments 1 and 2, or ``None`` for a plain E.180 SIT."""

    def nearest(value: float, options: tuple[float, float], tolerance: float) -> str | None:
        for name, option in zip("LH" if options[0] > 100 else "SL", options, strict=True):
            if abs(value - option) <= tolerance(option):
                return name
        return None

    def freq_tol(f: float) -> float:
        return SIT_FREQ_TOLERANCE * f + 3.0

    def dur_tol(_: float) -> float:
        return SIT_DURATION_TOLERANCE_S

    f1 = nearest(s1.freqs_hz[0], SIT_LOW_HIGH_HZ[0], freq_tol)
    f2 = nearest(s2.freqs_hz[0], SIT_LOW_HIGH_HZ[1], freq_tol)
    d2 = nearest(s2.duration_s, SIT_SHORT_LONG_S, dur_tol)
    if None in (f1, f2, d2):
        return None
    if not s1.cut:
        d1 = nearest(s1.duration_s, SIT_SHORT_LONG_S, dur_tol)
        return None if d1 is None else SIT_CODES.get((d1, d2, f1, f2))  # type: ignore[arg-type]
    # segment 1 may have been cut by the start of the media: the other three values name at
    # most one code (they do for every Telcordia code), whose first tone must not be shorter
    # than what was heard of it
    codes = [(code, d1) for (d1, c2, c1, c3), code in SIT_CODES.items() if (c2, c1, c3) == (d2, f1, f2)]
    if len({code for code, _ in codes}) != 1:
        return None
    code, d1 = codes[0]
    longest = SIT_SHORT_LONG_S["SL".index(d1)] + SIT_DURATION_TOLERANCE_S
    return code if s1.duration_s <= longest else None
