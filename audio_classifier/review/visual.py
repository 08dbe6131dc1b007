"""What the review page draws for a recording: its waveform envelope and spectrogram,
computed here (numpy) so the page needs no signal code and no build step."""

from __future__ import annotations

import base64
import os

import numpy as np

from ..audio import SAMPLE_RATE, frames_of, open_file

COLUMNS = 800
"""Time columns drawn (about the page's width): the envelope and spectrogram are pooled to this."""
FFT_LEN = 256
"""32 ms frames ..."""
HOP = 80
"""... every 10 ms, as the tone detector sees the call."""
FREQ_ROWS = 64
"""Frequency rows, 0-4 kHz linear (62.5 Hz each): tones stay lines, speech formants bands."""
FLOOR_DB = -90.0
"""Spectrogram range: this to 0 dBFS maps to 0-255."""
MAX_S = 120.0
"""At most this much of a recording is drawn (early media lasts seconds; an hour-long file
must not cost the server an hour of audio in memory)."""


def _read(path: str | os.PathLike[str]) -> np.ndarray:
    """The first ``MAX_S`` seconds of *path* as 8 kHz mono float32."""
    info, chunks = open_file(path)
    converter = info.converter()
    parts, total, limit = [], 0, int(MAX_S * SAMPLE_RATE)
    try:
        for chunk in chunks:
            parts.append(converter.push(chunk))
            total += len(parts[-1])
            if total >= limit:
                break
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    parts.append(converter.flush())
    return np.concatenate(parts)[:limit]


def visual(path: str | os.PathLike[str]) -> dict:
    """``duration_s`` (of what is drawn: at most ``MAX_S``), ``envelope`` (min and max per
    column, -1..1, rounded to 3 places) and ``spectrogram`` (base64 of ``FREQ_ROWS`` x columns uint8, low frequencies first, row by
    row) of the recording at *path*, as 8 kHz mono."""
    samples = _read(path)
    duration = len(samples) / SAMPLE_RATE
    columns = max(1, min(COLUMNS, len(samples)))
    edges = np.linspace(0, len(samples), columns + 1).astype(int)
    if len(samples):
        lows = np.minimum.reduceat(samples, edges[:-1])
        highs = np.maximum.reduceat(samples, edges[:-1])
    else:
        lows = highs = np.zeros(columns, dtype=np.float32)
    image = np.zeros((FREQ_ROWS, 1), dtype=np.uint8)
    if len(samples) >= FFT_LEN:
        n = (len(samples) - FFT_LEN) // HOP + 1
        frames = frames_of(samples, FFT_LEN, HOP, n) * np.hanning(FFT_LEN).astype(np.float32)
        power = np.abs(np.fft.rfft(frames, axis=1)[:, :-1]) ** 2  # 128 bins, 0-4 kHz
        bands = power.reshape(n, FREQ_ROWS, -1).sum(axis=2) / (FFT_LEN / 4) ** 2
        db = 10 * np.log10(bands + 1e-12)
        cols = min(COLUMNS, n)
        at = np.linspace(0, n, cols + 1).astype(int)
        pooled = np.maximum.reduceat(db, at[:-1], axis=0)  # (cols, rows): the loudest frame of each column
        scaled = np.clip((pooled - FLOOR_DB) / -FLOOR_DB, 0, 1) * 255
        image = scaled.T.astype(np.uint8)
    return {
        "duration_s": round(duration, 3),
        "envelope": [np.round(lows, 3).tolist(), np.round(highs, 3).tolist()],
        "spectrogram": {
            "rows": int(image.shape[0]),
            "columns": int(image.shape[1]),
            "data": base64.b64encode(np.ascontiguousarray(image).tobytes()).decode("ascii"),
        },
    }
