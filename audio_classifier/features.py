"""Acoustic features for the trained model: streaming log-mel frames and window summaries.

The same code computes features for training (``training/``) and at run time, so the
model sees identical numbers both ways; frames sit at absolute stream positions, so
chunking does not change them either.

Shapes: log-mel frames are ``(n_frames, n_mels)``; a window summary is a 1-D float32
vector of ``FeatureConfig.dimension`` values describing the last ``window_s`` seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache

import numpy as np

from .audio import frames_of
from .pitch import PitchStream

FEATURE_VERSION = 3
"""Bumped whenever the feature computation changes; stored in the model card."""

MIN_SHORT_WINDOW_FRAMES = 50
"""A stream shorter than one window is summarised at its end if it has 0.5 s of frames."""

LOG_FLOOR = 1e-10
"""Added to mel power before the log (-100 dB): only keeps the log finite."""

CEPSTRAL_STD_FLOOR = 0.5
"""Cepstra are divided by their spread over the window plus this (log-mel units): variance
normalisation takes out much of how strongly a voice modulates each coefficient (measured:
held-out-voice clip accuracy 0.89 -> 0.92); the floor keeps steady sounds from being blown up."""

DYNAMIC_RANGE_DB = 50.0
"""A window's log-mel values are clamped to this far below its peak, so the features do not
depend on the input gain (an absolute floor would make quiet bins gain-dependent)."""


@dataclass(frozen=True)
class FeatureConfig:
    """Feature parameters. Stored in the model card and checked when a model loads."""

    sample_rate: int = 8000
    frame_len: int = 200
    """Analysis window, samples (25 ms)."""
    hop: int = 80
    """Frame step, samples (10 ms)."""
    n_fft: int = 256
    n_mels: int = 40
    fmin_hz: float = 100.0
    fmax_hz: float = 3800.0
    window_s: float = 2.0
    """Context of one prediction, seconds. The recipe's is ``training.train.WINDOW_S`` (1.5 s
    since 2026-12-03); a model's card says which it was trained with."""
    step_s: float = 0.25
    """A prediction is made every this many seconds."""
    sub_blocks: int = 4
    """The window is also summarised in this many consecutive parts (word order)."""
    n_cepstra: int = 16
    """Cepstral coefficients (1..n) kept: the spectral envelope without pitch harmonics."""
    cepstral_step_frames: int = 10
    """Cepstra are averaged over this many frames (100 ms) to form the time pattern."""
    recent_s: float = 1.0
    """The window's last this many seconds are summarised again on their own (0: not), so
    an announcement that fills only the end of the window is seen at its own scale."""
    pitch: bool = False
    """Summarise the window's pitch contour too (``pitch.PitchStream``; 63 more values, at
    the end): Mandarin syllables differ by tone as much as by their sounds. Off here, on in
    the recipe (``training.train.PITCH``) and so in the shipped model since 2026-12-02: more
    accurate on every check set and sooner, at about half the features' cost per audio
    second (docs/history.md, "Pitch"); a model's card says which it was trained with."""
    version: int = FEATURE_VERSION

    def __post_init__(self) -> None:
        if not 0.0 <= self.recent_s <= self.window_s:
            raise ValueError(f"recent_s must be within [0, window_s = {self.window_s}], got {self.recent_s}")

    @property
    def window_frames(self) -> int:
        return round(self.window_s * self.sample_rate / self.hop)

    @property
    def step_frames(self) -> int:
        return round(self.step_s * self.sample_rate / self.hop)

    @property
    def recent_frames(self) -> int:
        return round(self.recent_s * self.sample_rate / self.hop)

    def frames_in(self, n_samples: int) -> int:
        """Log-mel frames complete in the first *n_samples* samples."""
        return (n_samples - self.frame_len) // self.hop + 1 if n_samples >= self.frame_len else 0

    def frame_end_sample(self, frames: int) -> int:
        """Samples needed to complete the first *frames* frames: a window ending at frame
        count *frames* ends at this sample."""
        return (frames - 1) * self.hop + self.frame_len

    def window_end_frames(self, frames: int, after: int = 0) -> np.ndarray:
        """Frame counts at which windows end, ``window_frames + k * step_frames``, from
        above *after* up to *frames* (both frame counts), ascending."""
        k = max(0, -(-(after + 1 - self.window_frames) // self.step_frames))
        return np.arange(self.window_frames + k * self.step_frames, frames + 1, self.step_frames)

    @property
    def frame_rows(self) -> int:
        """Values per frame: the log-mel bands, then voicing strength and pitch if ``pitch``."""
        return self.n_mels + (2 if self.pitch else 0)

    @property
    def dimension(self) -> int:
        steps = self.window_frames // self.cepstral_step_frames
        size = self.n_mels * (4 + self.sub_blocks) + 6 + self.n_cepstra * (steps + 1)
        if self.recent_frames:
            recent_steps = self.recent_frames // self.cepstral_step_frames
            size += self.n_mels * 2 + 4 + self.n_cepstra * (recent_steps + 1)
        if self.pitch:
            size += 3 * steps + 3
        return size

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> FeatureConfig:
        return cls(**values)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (linear below 1 kHz, logarithmic above), as librosa's default."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    mel = hz / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-9) / min_log_hz) / logstep, mel)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


@cache
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin_hz: float, fmax_hz: float) -> np.ndarray:
    """Slaney-normalised triangular mel filters, shape ``(n_mels, n_fft // 2 + 1)``.

    Equal to ``librosa.filters.mel`` with its defaults (a test checks it); written here so
    the run-time path does not import librosa and its numba start-up cost.
    """
    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mel_points = _mel_to_hz(np.linspace(_hz_to_mel(fmin_hz), _hz_to_mel(fmax_hz), n_mels + 2))
    spacing = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / spacing[:-1, None]
    upper = ramps[2:] / spacing[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_points[2 : n_mels + 2] - mel_points[:n_mels]))[:, None]
    return weights.astype(np.float32)


class LogMelStream:
    """Log-mel frames of a stream, computed as samples arrive."""

    def __init__(self, config: FeatureConfig) -> None:
        self.config = config
        c = config
        self._window = np.hanning(c.frame_len + 1)[:-1].astype(np.float32)  # periodic Hann
        self._fbank = mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, c.fmin_hz, c.fmax_hz).T.copy()
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add samples; return the log-mel frames they complete, ``(n, n_mels)``."""
        c = self.config
        buf = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        n = c.frames_in(len(buf))
        if n <= 0:
            self._pending = buf
            return np.zeros((0, c.n_mels), dtype=np.float32)
        frames = frames_of(buf, c.frame_len, c.hop, n)
        spectrum = np.fft.rfft(frames * self._window, n=c.n_fft, axis=1)
        power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
        self._pending = buf[n * c.hop :].copy()
        # einsum without BLAS sums in a fixed order: frames come out bit-identical however
        # the stream was chunked (a BLAS matmul picks kernels by batch size).
        mel = np.einsum("ij,jk->ik", power, self._fbank, optimize=False)
        return np.log(mel + LOG_FLOOR).astype(np.float32)


class FrameStream:
    """Per-frame values of a stream, ``(n, config.frame_rows)``: the log-mel bands, then (if
    ``config.pitch``) voicing strength and pitch in semitones (``pitch.PitchStream``)."""

    def __init__(self, config: FeatureConfig) -> None:
        self._logmel = LogMelStream(config)
        self._pitch = PitchStream(config.sample_rate, config.frame_len, config.hop) if config.pitch else None

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add samples; return the frames they complete."""
        logmel = self._logmel.push(samples)
        if self._pitch is None:
            return logmel
        strength, semitones = self._pitch.push(samples)
        # both streams count frames from the same sample, so they complete the same frames
        return np.concatenate([logmel, strength[:, None], semitones[:, None]], axis=1)


@cache
def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II rows 1..n_out, shape ``(n_in, n_out)``: log-mel -> cepstra."""
    k = np.arange(1, n_out + 1)[None, :]
    n = np.arange(n_in)[:, None]
    return (np.sqrt(2.0 / n_in) * np.cos(np.pi * k * (2 * n + 1) / (2 * n_in))).astype(np.float32)


def _mean(values: np.ndarray, axis: int | tuple[int, ...], keepdims: bool = False) -> np.ndarray:
    """``values.mean(axis)`` of float32 values, bit for bit (the same pairwise sum, then one
    correctly rounded division), without ``np.mean``'s Python bookkeeping, which costs more
    than the arithmetic on one window's few thousand values."""
    axes = (axis,) if isinstance(axis, int) else axis
    count = 1
    for a in axes:
        count *= values.shape[a]
    return np.add.reduce(values, axis=axis, keepdims=keepdims) / np.float32(count)


def _share(flags: np.ndarray) -> np.ndarray:
    """``np.mean(flags, axis=1)`` of booleans ``(n, m)``, float64, bit for bit."""
    return np.add.reduce(flags, axis=1, dtype=np.float64) / flags.shape[1]


@cache
def _percentile_plan(length: int, percents: tuple[float, ...]) -> tuple[np.ndarray, ...]:
    """Sorted positions and float32 weights of linearly interpolated percentiles."""
    position = np.array(percents) / 100 * (length - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, length - 1)
    weight = (position - low).astype(np.float32)
    return low, high, 1 - weight, weight


def _percentiles(values: np.ndarray, percents: tuple[float, ...]) -> np.ndarray:
    """``np.percentile(values, percents, axis=1)`` (linear interpolation) of float32 values,
    ``(len(percents), n)``; a sort of a few hundred values costs far less than np.percentile's
    bookkeeping."""
    low, high, rest, weight = _percentile_plan(values.shape[1], percents)
    ordered = np.sort(values, axis=1)
    return (ordered[:, low] * rest + ordered[:, high] * weight).T


def _band_stats(logmel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and spread (std) over time of ``(n, n_mels, frames)``, each ``(n, n_mels)``."""
    mean = _mean(logmel, 2)
    # two passes: a one-pass variance loses a steady band (std 0) to float32 rounding
    deviation = logmel - mean[:, :, None]
    return mean, np.sqrt(_mean(np.square(deviation, out=deviation), 2))


def _energy_contour(energy: np.ndarray) -> list[np.ndarray]:
    """How speech-like a loudness contour ``(n, frames)`` is: level spreads, the share of
    frames well below the loud ones (pauses) and the mean frame-to-frame jump, each ``(n,)``."""
    level = _percentiles(energy, (10, 50, 90))
    return [
        level[2] - level[0],
        level[1] - level[0],
        _share(energy < (level[2] - 6.0)[:, None]),
        _mean(np.abs(energy[:, 1:] - energy[:, :-1]), 1),
    ]


def _cepstral_pattern(cepstra: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Cepstra ``(n, n_cepstra, frames)``, centred and variance-normalised in place, as their
    time pattern ``(n, steps * n_cepstra)`` (means of ``step`` frames) and their normalised
    spread ``(n, n_cepstra)``."""
    n, n_cepstra, frames = cepstra.shape
    cepstra -= _mean(cepstra, 2, keepdims=True)
    spread = np.sqrt(_mean(np.square(cepstra), 2))  # the std: cepstra are centred
    cepstra /= (spread + CEPSTRAL_STD_FLOOR)[:, :, None]
    steps = frames // step
    pattern = _mean(cepstra[:, :, : steps * step].reshape(n, n_cepstra, steps, step), 3)
    return pattern.transpose(0, 2, 1).reshape(n, -1), spread / (spread + CEPSTRAL_STD_FLOOR)


VOICED_STRENGTH = 0.45
"""A frame is voiced when its normalised autocorrelation at the pitch lag exceeds this."""

MIN_VOICED_FRAMES = 5
"""A window with fewer voiced frames has no pitch contour (its pitch values are zeros)."""

PITCH_RANGE_ST = 12.0
"""Pitch relative to the window's median is clipped to this many semitones (an octave):
octave errors of the tracker stay bounded."""

MAX_PITCH_JUMP_ST = 2.0
"""A frame-to-frame change larger than this (semitones per 10 ms) is a tracking jump or a
new syllable, not a tone's slope, and is left out of the slopes."""


def _pitch_pattern(strength: np.ndarray, semitones: np.ndarray, step: int) -> np.ndarray:
    """A window's pitch contour, speaker-independent, ``(n, 3 * steps + 3)`` from
    ``(n, frames)`` tracks: per ``step`` frames the voiced share, the mean pitch relative to
    the window's voiced median (semitones) and its mean slope (semitones per frame); then
    the voiced share, the pitch spread and the mean absolute slope of the whole window."""
    n, frames = strength.shape
    steps = frames // step
    voiced = strength > VOICED_STRENGTH
    count = np.add.reduce(voiced, axis=1)
    # the (lower) median of each window's voiced frames: unvoiced ones sorted to the end
    ordered = np.sort(np.where(voiced, semitones, np.inf), axis=1)
    median = ordered[np.arange(n), np.maximum(count - 1, 0) // 2]
    median = np.where(count > 0, median, 0).astype(np.float32)
    weight = voiced.astype(np.float32)
    relative = np.clip(semitones - median[:, None], -PITCH_RANGE_ST, PITCH_RANGE_ST) * weight
    jump = relative[:, 1:] - relative[:, :-1]
    pairs = voiced[:, 1:] & voiced[:, :-1] & (np.abs(jump) < MAX_PITCH_JUMP_ST)
    slope = np.concatenate([np.where(pairs, jump, 0), np.zeros((n, 1), np.float32)], axis=1)
    paired = np.concatenate([pairs, np.zeros((n, 1), bool)], axis=1).astype(np.float32)
    cut = steps * step
    per_step = np.add.reduce(weight[:, :cut].reshape(n, steps, step), axis=2)
    level = np.add.reduce(relative[:, :cut].reshape(n, steps, step), axis=2) / np.maximum(per_step, 1)
    step_pairs = np.add.reduce(paired[:, :cut].reshape(n, steps, step), axis=2)
    step_slope = np.add.reduce(slope[:, :cut].reshape(n, steps, step), axis=2) / np.maximum(step_pairs, 1)
    voiced_count = np.maximum(count, 1).astype(np.float32)
    total_pairs = np.maximum(np.add.reduce(paired, axis=1), 1)
    whole = np.stack(
        [
            count / np.float32(frames),
            np.sqrt(np.add.reduce(np.square(relative), axis=1) / voiced_count),
            np.add.reduce(np.abs(slope), axis=1) / total_pairs,
        ],
        axis=1,
    )
    out = np.concatenate([per_step / np.float32(step), level, step_slope, whole], axis=1, dtype=np.float32)
    out[count < MIN_VOICED_FRAMES] = 0
    return out


@cache
def _sub_blocks(frames: int, parts: int) -> tuple[np.ndarray, np.ndarray]:
    """Start frames and float32 sizes of *parts* consecutive parts of *frames* frames."""
    sizes = np.array([len(b) for b in np.array_split(np.arange(frames), parts)])
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes.astype(np.float32)


def summarise_windows(windows: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Windows of frames, ``(n, frame_rows, window_frames)`` (time last), as
    ``(n, dimension)``.

    Gain-invariant: each window's mean log-energy is removed first. Holds:

    - the spectral envelope: per-band mean, spread, peak and mean absolute delta;
    - word order, coarse: per-band means of ``sub_blocks`` consecutive parts;
    - word order, fine: cepstra (mean- and variance-normalised over the window, so the
      channel and much of the speaker drop out) averaged every ``cepstral_step_frames``,
      and their spread;
    - how speech-like the energy contour is (pauses, level spread, band jumps);
    - the last ``recent_s`` seconds again on their own: band mean and spread, energy
      contour and cepstral pattern, normalised over those seconds alone. A network that
      sees an announcement only in the window's last second otherwise has it diluted by
      what came before (ringback, silence), and waits for the window to fill;
    - the pitch contour (``pitch``): per ``cepstral_step_frames`` the voiced share, the
      pitch relative to the window's voiced median, and its slope (``_pitch_pattern``).

    Every reduction runs over one window's own axes, so a window's numbers do not depend
    on how many windows are summarised together (streaming equals whole-clip, bit for bit).
    Time is the last axis so that most reductions run over contiguous memory. Runs for
    every window of every call: written for few numpy calls (ufunc reductions, no
    ``np.mean``), not for brevity.
    """
    n, _, frames = windows.shape
    tracks = windows[:, config.n_mels :]
    windows = windows[:, : config.n_mels]
    top = np.maximum.reduce(windows, axis=(1, 2), keepdims=True)
    logmel = np.maximum(windows, top - np.float32(DYNAMIC_RANGE_DB * np.log(10) / 10))
    centred = logmel - _mean(logmel, (1, 2), keepdims=True)
    mean, spread = _band_stats(centred)
    delta = _mean(np.abs(centred[:, :, 1:] - centred[:, :, :-1]), 2)
    peak = np.maximum.reduce(centred, axis=2)
    starts, sizes = _sub_blocks(frames, config.sub_blocks)
    blocks = np.add.reduceat(centred, starts, axis=2) / sizes
    block_means = (blocks - mean[:, :, None]).transpose(0, 2, 1).reshape(n, -1)
    energy = np.maximum.reduce(logmel, axis=1)
    peak_band = np.argmax(logmel, axis=1)
    contour = np.array(
        [
            *_energy_contour(energy),
            np.sqrt(_mean(np.square(spread), 1) + _mean(np.square(mean), 1)),  # whole-window spread
            _share(np.abs(peak_band[:, 1:] - peak_band[:, :-1]) > 2),  # peak-band jumps
        ]
    ).T.astype(np.float32)
    # a stack of equal-shaped products: each window's cepstra come from the same BLAS call
    cepstra = np.matmul(dct_matrix(config.n_mels, config.n_cepstra).T, centred)  # (n, n_cepstra, frames)
    parts = [mean, spread, delta, peak, block_means, contour]
    recent = config.recent_frames
    # the DCT rows sum to zero over the bands, so the recent frames' cepstra are a slice of
    # the window's whatever mean each part removes first (copied: the slice is normalised anew)
    recent_cepstra = cepstra[:, :, frames - recent :].copy() if recent else None
    parts += _cepstral_pattern(cepstra, config.cepstral_step_frames)
    if recent:
        tail_mean, tail_spread = _band_stats(centred[:, :, frames - recent :])
        parts += [
            tail_mean - _mean(tail_mean, 1, keepdims=True),
            tail_spread,
            np.array(_energy_contour(energy[:, frames - recent :])).T.astype(np.float32),
            *_cepstral_pattern(recent_cepstra, config.cepstral_step_frames),
        ]
    if config.pitch:
        parts.append(_pitch_pattern(tracks[:, 0], tracks[:, 1], config.cepstral_step_frames))
    return np.concatenate(parts, axis=1, dtype=np.float32)


class WindowFeatures:
    """Streaming window summaries: every ``step_s`` once ``window_s`` of audio is in."""

    def __init__(self, config: FeatureConfig) -> None:
        self.config = config
        self._stream = FrameStream(config)
        self._frames = np.zeros((config.frame_rows, 0), dtype=np.float32)  # (frame_rows, frames): time last
        self._start = 0  # absolute index of the first frame held
        self._emitted = False

    def push(self, samples: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """Add samples; return ``(end_s, features)`` for every window they complete.

        Windows end on absolute frame counts ``window_frames + k * step_frames``.
        """
        c = self.config
        new = self._stream.push(samples)
        if not len(new):
            return []
        held = self._start + self._frames.shape[1]  # frames already in before these
        self._frames = np.concatenate([self._frames, new.T], axis=1)
        ends = c.window_end_frames(self._start + self._frames.shape[1], after=held)
        out = []
        if len(ends):
            windows = np.stack(
                [self._frames[:, end - c.window_frames : end] for end in (ends - self._start).tolist()]
            )
            vectors = summarise_windows(windows, c)
            times = [c.frame_end_sample(end) / c.sample_rate for end in ends.tolist()]
            out = list(zip(times, vectors, strict=True))
        self._emitted = self._emitted or bool(out)
        if self._frames.shape[1] > c.window_frames:
            self._start += self._frames.shape[1] - c.window_frames
            self._frames = self._frames[:, -c.window_frames :]  # the next push concatenates anew
        return out

    def finish(self) -> list[tuple[float, np.ndarray]]:
        """End of stream: a stream too short for one window (an answer, "喂？") still gets
        one, its missing beginning filled with its quietest frame (silence before it)."""
        c = self.config
        held = self._frames.shape[1]
        if self._emitted or held < MIN_SHORT_WINDOW_FRAMES:
            return []
        self._emitted = True
        quietest = int(np.argmin(self._frames[: c.n_mels].max(axis=0)))
        pad = np.repeat(self._frames[:, [quietest]], c.window_frames - held, axis=1)
        end_s = c.frame_end_sample(held) / c.sample_rate
        return [(end_s, summarise_windows(np.concatenate([pad, self._frames], axis=1)[None], c)[0])]


def clip_windows(
    samples: np.ndarray, config: FeatureConfig, keep: Sequence[int] | None = None
) -> list[tuple[float, np.ndarray]]:
    """Every window summary of a whole clip (the streaming path, fed the clip at once), or
    only the windows at positions *keep* (in the order of ``window_ends``): the same
    numbers, since each window is summarised on its own, without the cost of the others."""
    if keep is None:
        stream = WindowFeatures(config)
        return stream.push(samples) + stream.finish()
    c = config
    # (frame_rows, frames) and C-contiguous, as WindowFeatures holds them: the reductions'
    # summation order follows the memory layout
    frames = np.ascontiguousarray(FrameStream(c).push(samples).T)
    ends = c.window_end_frames(frames.shape[1])
    if not len(ends):  # shorter than a window: at most one, padded as the stream pads it
        windows = clip_windows(samples, c)
        return [windows[i] for i in keep]
    ends = ends[np.asarray(keep, dtype=int)]
    if not len(ends):
        return []
    vectors = summarise_windows(
        np.stack([frames[:, end - c.window_frames : end] for end in ends.tolist()]), c
    )
    return [
        (c.frame_end_sample(end) / c.sample_rate, v) for end, v in zip(ends.tolist(), vectors, strict=True)
    ]


def window_ends(n_samples: int, config: FeatureConfig) -> list[float]:
    """End times, seconds, of the windows ``clip_windows`` gives a clip of *n_samples*
    samples: what a clip's windows will cover, known before any feature is computed."""
    c = config
    frames = c.frames_in(n_samples)
    ends = c.window_end_frames(frames)
    if not len(ends):
        return [c.frame_end_sample(frames) / c.sample_rate] if frames >= MIN_SHORT_WINDOW_FRAMES else []
    return [c.frame_end_sample(end) / c.sample_rate for end in ends.tolist()]
