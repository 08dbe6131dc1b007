"""Streaming rational resampler (windowed-sinc polyphase FIR).

Each output sample is computed from absolute input positions, so the output does not
depend on how the input was chunked: the property the streaming session relies on.
"""

from __future__ import annotations

from functools import lru_cache
from math import gcd

import numpy as np

ZERO_CROSSINGS = 8
"""Half-length of the sinc kernel, in zero crossings of the narrower band."""

ROLLOFF = 0.92
"""Cut-off as a fraction of the lower Nyquist frequency (anti-aliasing margin)."""

KAISER_BETA = 8.0
"""Kaiser window shape: about 80 dB stop-band attenuation."""

STEP_CACHE = 8192
"""Outputs per call up to which a resampler keeps its index steps (64 KB): every chunk of a
live stream or a file read in blocks, not a whole recording passed at once."""


@lru_cache(maxsize=16)  # bounded: the rates come from the input
def _filter_bank(up: int, down: int) -> tuple[np.ndarray, int]:
    """The polyphase bank ``(up, taps)`` of a ratio and its delay (input samples x up),
    designed once per process: a design costs about 1 ms, as much as resampling a second
    of audio. Read-only, shared by every resampler of that ratio."""
    cutoff = ROLLOFF / max(up, down)  # cycles per sample of the up-sampled signal, x2
    half = int(np.ceil(ZERO_CROSSINGS / cutoff))
    n = np.arange(-half, half + 1)
    proto = cutoff * np.sinc(cutoff * n) * np.kaiser(2 * half + 1, KAISER_BETA) * up
    taps = -(-len(proto) // up)  # taps per phase
    padded = np.zeros(taps * up)
    padded[: len(proto)] = proto
    # bank[p, k] multiplies x[i_max - k] for outputs of phase p.
    bank = padded.reshape(taps, up).T.astype(np.float32)
    bank.flags.writeable = False
    return bank, half


class Resampler:
    """Convert float32 mono audio from ``in_rate`` to ``out_rate`` Hz, chunk by chunk."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} -> {out_rate}")
        g = gcd(in_rate, out_rate)
        self.up, self.down = out_rate // g, in_rate // g
        self.identity = self.up == self.down
        if self.identity:
            return
        self._bank, self._delay = _filter_bank(self.up, self.down)
        taps = self._bank.shape[1]
        self._taps = taps
        self._buffer = np.zeros(taps, dtype=np.float32)  # zeros before the stream starts
        self._buffer_start = -taps  # absolute index of _buffer[0]
        self._received = 0
        self._next_out = 0
        self._step_cache = np.zeros(0, dtype=np.int64)

    def _last_input(self, n: np.ndarray | int) -> np.ndarray | int:
        return (n * self.down + self._delay) // self.up

    def _compute(self, n_end: int) -> np.ndarray:
        count = n_end - self._next_out
        if count <= 0:
            return np.zeros(0, dtype=np.float32)
        # output n reads inputs up to (n * down + delay) // up with the phase's filter; written
        # for few numpy calls, since live streams call this every 20 ms for ~160 outputs
        last, phase = np.divmod(self._next_out * self.down + self._delay + self._steps(count), self.up)
        # row i holds x[last_i], x[last_i - 1], ...: windows of the buffer read backwards,
        # gathered by their first sample (no n x taps index array)
        buffer, taps = self._buffer, self._taps
        size = buffer.itemsize
        backwards = np.ndarray(
            (len(buffer) - taps + 1, taps), np.float32, buffer, (taps - 1) * size, (size, -size)
        )
        rows = backwards[last - (self._buffer_start + taps - 1)]
        out = np.einsum("nk,nk->n", rows, self._bank[phase])
        self._next_out = n_end
        keep_from = int(self._last_input(n_end)) - taps + 1 - self._buffer_start
        if keep_from > 0:
            self._buffer = buffer[keep_from:]
            self._buffer_start += keep_from
        return out.astype(np.float32, copy=False)

    def _steps(self, count: int) -> np.ndarray:
        """``down * arange(count)``; cached up to STEP_CACHE outputs (a stream's chunks)."""
        if count > STEP_CACHE:
            return np.arange(count, dtype=np.int64) * self.down
        if len(self._step_cache) < count:
            self._step_cache = np.arange(STEP_CACHE, dtype=np.int64) * self.down
        return self._step_cache[:count]

    def _ready_end(self, received: int) -> int:
        # output n is ready once its last input index is below the count received
        return max(((received - 1) * self.up - self._delay) // self.down + 1, self._next_out)

    def ready_after(self, more: int) -> int:
        """How many output samples ``process`` would return for *more* input samples."""
        if self.identity:
            return more
        return self._ready_end(self._received + more) - self._next_out

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Take the next input samples; return every output sample now computable."""
        if self.identity:
            return samples
        self._buffer = np.concatenate([self._buffer, samples.astype(np.float32, copy=False)])
        self._received += len(samples)
        return self._compute(self._ready_end(self._received))

    def flush(self) -> np.ndarray:
        """End of stream: return the remaining outputs (inputs past the end read as zero)."""
        if self.identity:
            return np.zeros(0, dtype=np.float32)
        total = -(-self._received * self.up // self.down)
        if total <= self._next_out:
            return np.zeros(0, dtype=np.float32)
        needed = int(self._last_input(total - 1)) + 1 - (self._buffer_start + len(self._buffer))
        if needed > 0:
            self._buffer = np.concatenate([self._buffer, np.zeros(needed, dtype=np.float32)])
        return self._compute(total)


def resample(samples: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """A whole signal from *in_rate* to *out_rate* Hz (float32): one stream, flushed."""
    resampler = Resampler(in_rate, out_rate)
    return np.concatenate([resampler.process(samples), resampler.flush()])
