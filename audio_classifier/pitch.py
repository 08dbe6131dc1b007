"""Voicing and pitch per frame, on the log-mel frame grid, computed as samples arrive.

Mandarin tells syllables apart by their pitch contour as much as by their vowels (关 guān
and 停 tíng in 关机 / 停机), and the log-mel cepstra keep only the spectral envelope. For each
log-mel frame this gives how periodic the sound is (the normalised autocorrelation at the
chosen lag) and its pitch in semitones; ``features.summarise_windows`` turns a window's
contour into speaker-independent numbers (pitch relative to the window's voiced median).

Frames sit at absolute stream positions: the analysis frame of log-mel frame *k* is the
``ANALYSIS_LEN`` samples ending where that frame ends (sample ``k * hop + frame_len``), zeros
before the stream starts, so chunking does not change a value.
"""

from __future__ import annotations

import numpy as np

from .audio import frames_of

ANALYSIS_LEN = 320
"""Samples (40 ms at 8 kHz) per autocorrelation: nearly three periods of the lowest pitch."""

FFT_LEN = 512
"""Zero-padded FFT length for the autocorrelation: longer than ANALYSIS_LEN plus the longest
lag searched, so the circular correlation equals the linear one at every lag searched."""

MIN_PITCH_HZ = 70.0
MAX_PITCH_HZ = 400.0
"""Pitch search range: men's low voices to women's and children's high ones."""

OCTAVE_TOLERANCE = 0.9
"""The shortest lag whose correlation is within this share of the best is taken, so a
period's multiples (octave-down errors) do not win on a near tie."""

REFERENCE_HZ = 100.0
"""Semitones are counted from this pitch (only differences within a window are used)."""


class PitchStream:
    """``(strength, semitones)`` per log-mel frame of a stream, each ``(n,)`` float32."""

    def __init__(self, sample_rate: int, frame_len: int, hop: int) -> None:
        import scipy.fft  # here, not at import: 0.2 s of start-up that a model without pitch never needs

        self._fft = scipy.fft
        if ANALYSIS_LEN < frame_len:
            raise ValueError(
                f"the pitch analysis ({ANALYSIS_LEN} samples) is shorter than a frame ({frame_len})"
            )
        self.sample_rate = sample_rate
        self.hop = hop
        self._min_lag = int(np.floor(sample_rate / MAX_PITCH_HZ))
        self._max_lag = int(np.ceil(sample_rate / MIN_PITCH_HZ))
        if FFT_LEN < ANALYSIS_LEN + self._max_lag + 1:
            raise ValueError(f"FFT_LEN {FFT_LEN} is too short for lags up to {self._max_lag}")
        lags = np.arange(self._max_lag + 2)
        self._unbias = (ANALYSIS_LEN / (ANALYSIS_LEN - lags)).astype(np.float32)
        # the stream's first analysis frames reach back before its start: zeros there
        self._pending = np.zeros(ANALYSIS_LEN - frame_len, dtype=np.float32)

    def push(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add samples; return strength and semitones of the frames they complete."""
        buf = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        n = (len(buf) - ANALYSIS_LEN) // self.hop + 1 if len(buf) >= ANALYSIS_LEN else 0
        if n <= 0:
            self._pending = buf
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32)
        frames = frames_of(buf, ANALYSIS_LEN, self.hop, n)
        self._pending = buf[n * self.hop :].copy()
        return self._analyse(frames)

    def _analyse(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        centred = frames - frames.mean(axis=1, keepdims=True, dtype=np.float32)
        # scipy's FFT works in float32 (numpy's in float64, 3.6x slower here); each row's
        # result does not depend on how many rows are transformed together (checked)
        spectrum = self._fft.rfft(centred, n=FFT_LEN, axis=1)
        power = spectrum.real**2 + spectrum.imag**2
        corr = self._fft.irfft(power, n=FFT_LEN, axis=1)[:, : self._max_lag + 2]
        corr *= self._unbias
        corr /= corr[:, :1] + np.float32(1e-12)
        lo, hi = self._min_lag, self._max_lag
        searched = corr[:, lo : hi + 1]
        best = np.maximum.reduce(searched, axis=1)
        # the first peak (a local maximum) that comes within OCTAVE_TOLERANCE of the best
        peaks = (searched >= corr[:, lo - 1 : hi]) & (searched > corr[:, lo + 1 : hi + 2])
        lag = np.argmax(peaks & (searched >= OCTAVE_TOLERANCE * best[:, None]), axis=1) + lo
        rows = np.arange(len(corr))
        left, mid, right = corr[rows, lag - 1], corr[rows, lag], corr[rows, lag + 1]
        # a parabola through the peak and its neighbours: pitch finer than one lag
        curvature = left - 2 * mid + right
        bent = np.abs(curvature) > 1e-9
        offset = np.where(bent, 0.5 * (left - right) / np.where(bent, curvature, np.float32(1.0)), 0.0)
        offset = np.clip(offset, -0.5, 0.5)
        semitones = 12 * np.log2(self.sample_rate / (lag + offset) / REFERENCE_HZ)
        return mid.astype(np.float32), semitones.astype(np.float32)
