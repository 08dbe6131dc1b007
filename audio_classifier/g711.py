"""G.711 mu-law and A-law codecs (ITU-T G.711), vectorised with lookup tables.

Decoded samples are float32 in [-1, 1) (16-bit linear scaled by 1/32768). Encoding picks
the nearest code, so a decode-encode-decode round trip is exact.
"""

from __future__ import annotations

from functools import cache

import numpy as np


def _mulaw_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _alaw_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    sign = a & 0x80
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(
        exponent == 0,
        (mantissa << 4) + 8,
        ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0),
    )
    return np.where(sign != 0, magnitude, -magnitude).astype(np.int16)


@cache
def _tables(law: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(decode table as float32, sorted levels, codes in level order, decision midpoints)."""
    pcm = _mulaw_table() if law == "mulaw" else _alaw_table()
    decoded = pcm.astype(np.float32) / 32768.0
    order = np.argsort(decoded, kind="stable")
    levels = decoded[order]
    # mu-law has two codes for zero; keep one of each level for the search.
    unique_levels, first = np.unique(levels, return_index=True)
    codes = order[first].astype(np.uint8)
    midpoints = (unique_levels[1:] + unique_levels[:-1]) / 2
    return decoded, unique_levels, codes, midpoints


def decode(codes: bytes | np.ndarray, law: str) -> np.ndarray:
    """Decode G.711 bytes (*law* ``"mulaw"`` or ``"alaw"``) to float32 samples."""
    table = _tables(law)[0]
    return table[np.frombuffer(codes, dtype=np.uint8) if isinstance(codes, bytes) else codes]


@cache
def _encoder(law: str) -> tuple[np.ndarray, int]:
    """(code of every ceil(x * 65536), its lowest index): nearest-level encoding as a lookup.

    Decision midpoints sit halfway between levels that are multiples of 1/32768, so each
    is an integer k / 65536, and for integer k, ``k < x * 65536`` exactly when
    ``k < ceil(x * 65536)``: the code only depends on that ceiling.
    """
    _, _, codes, midpoints = _tables(law)
    grid = np.round(midpoints.astype(np.float64) * 65536).astype(np.int64)
    assert np.array_equal(grid / 65536, midpoints), "G.711 midpoints off the 1/65536 grid"
    ceilings = np.arange(grid[0], grid[-1] + 2)
    table = codes[np.searchsorted(grid, ceilings)]
    table.flags.writeable = False
    return table, int(grid[0])


def encode(samples: np.ndarray, law: str) -> np.ndarray:
    """Encode float samples in [-1, 1] to G.711 codes (uint8), nearest level (ties go to
    the lower level; values beyond the range to the extreme levels, NaN to the highest)."""
    table, lowest = _encoder(law)
    with np.errstate(over="ignore"):  # beyond float32's range is beyond the last level
        scaled = np.ceil(np.asarray(samples, dtype=np.float32) * np.float32(65536))
    np.nan_to_num(scaled, copy=False, nan=np.inf)
    index = np.clip(scaled, lowest, lowest + len(table) - 1).astype(np.intp) - lowest
    return table[index]


def round_trip(samples: np.ndarray, law: str) -> np.ndarray:
    """What a G.711 channel does to *samples*: encode then decode."""
    return decode(encode(samples, law), law)
