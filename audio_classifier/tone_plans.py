"""Call-progress tone plans, SIT codes and fax tones, as data.

Sources: ../shared/reference/telephony.md §1-3 (ITU-T E.180, Telcordia SIT, T.30).
Adding a country's tone is adding a :class:`ToneSpec` here; the detector needs no change.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ToneSpec:
    """One call-progress tone: its frequencies, cadence and what it means.

    ``cadence`` is the repeating on/off pattern in seconds, flattened
    (``(on, off)`` or ``(on1, off1, on2, off2)``); ``None`` for a continuous tone.
    ``scores[n]`` is the evidence score once *n* consecutive elements (burst or gap
    lengths) of the pattern have matched; for continuous tones, ``scores`` pairs a
    minimum duration in seconds with a score.
    """

    plan: str
    name: str
    freqs_hz: tuple[float, ...]
    cadence: tuple[float, ...] | None
    label: str
    scores: tuple[float, ...] | tuple[tuple[float, float], ...]


# Evidence scores by the number of matched cadence elements (index = count).
_PERIODIC = (0.0, 0.0, 0.4, 0.75, 0.92, 0.95, 0.97)
"""Busy and congestion: on, off, on, off: four matching elements make a decision."""
_RINGBACK = (0.0, 0.55, 0.8, 0.93, 0.97)
"""Ringback: one full burst is suggestive, burst + long gap + burst is certain."""
_DOUBLE_RING = (0.0, 0.3, 0.5, 0.8, 0.9, 0.95, 0.97)
_CNG = (0.0, 0.6, 0.85, 0.95, 0.97)

TONE_SPECS: tuple[ToneSpec, ...] = (
    ToneSpec("CN", "ringback", (450.0,), (1.0, 4.0), "ringback", _RINGBACK),
    ToneSpec("CN", "busy", (450.0,), (0.35, 0.35), "busy_tone", _PERIODIC),
    ToneSpec("CN", "congestion", (450.0,), (0.7, 0.7), "congestion_tone", _PERIODIC),
    ToneSpec("NANP", "ringback", (440.0, 480.0), (2.0, 4.0), "ringback", _RINGBACK),
    ToneSpec("NANP", "busy", (480.0, 620.0), (0.5, 0.5), "busy_tone", _PERIODIC),
    ToneSpec("NANP", "reorder", (480.0, 620.0), (0.25, 0.25), "congestion_tone", _PERIODIC),
    ToneSpec("NANP", "reorder_alt", (480.0, 620.0), (0.3, 0.2), "congestion_tone", _PERIODIC),
    ToneSpec("ITU", "ringback", (425.0,), (1.0, 4.0), "ringback", _RINGBACK),
    ToneSpec("ITU", "busy", (425.0,), (0.5, 0.5), "busy_tone", _PERIODIC),
    ToneSpec("ITU", "congestion", (425.0,), (0.25, 0.25), "congestion_tone", _PERIODIC),
    ToneSpec("ITU", "congestion_alt", (425.0,), (0.2, 0.3), "congestion_tone", _PERIODIC),
    ToneSpec("UK", "ringback", (400.0, 450.0), (0.4, 0.2, 0.4, 2.0), "ringback", _DOUBLE_RING),
    ToneSpec("UK", "busy", (400.0,), (0.375, 0.375), "busy_tone", _PERIODIC),
    ToneSpec("JP", "busy", (400.0,), (0.5, 0.5), "busy_tone", _PERIODIC),
    ToneSpec("T.30", "fax_cng", (1100.0,), (0.5, 3.0), "fax", _CNG),
    # Continuous tones: (minimum seconds, score) steps.
    ToneSpec("V.25", "fax_ced", (2100.0,), None, "fax", ((0.5, 0.6), (1.0, 0.9), (2.0, 0.97))),
    # UK "number unobtainable": a steady tone where a call cannot be completed. Capped
    # below the decision threshold: a steady tone alone is weak evidence of the reason.
    ToneSpec("UK", "number_unobtainable", (400.0,), None, "vacant", ((1.5, 0.5), (3.0, 0.7), (5.0, 0.8))),
)

FREQ_TOLERANCE = 0.02
"""Relative frequency tolerance of a tone match: ±1.5 % drift plus estimation error."""

CADENCE_TOLERANCE = 0.2
"""Relative tolerance on burst and gap lengths (real switches drift by 10-20 %)."""

TIMING_SLACK_S = 0.03
"""Absolute slack on burst and gap lengths: frame quantisation and edge effects."""

# --- Special Information Tones (ITU-T E.180; Telcordia GR-1162 codes) -----------------

SIT_BANDS_HZ = ((885.0, 1015.0), (1330.0, 1470.0), (1730.0, 1870.0))
"""E.180 segment frequencies 950/1400/1800 Hz ± 50 Hz, widened by the drift tolerance."""

SIT_SEGMENT_S = (0.2, 0.46)
"""Accepted length of one SIT segment: E.180 330 ± 70 ms and Telcordia 274/380 ms ± 5 %."""

SIT_MAX_GAP_S = 0.06
"""Largest gap between SIT segments (E.180: up to 30 ms; plus frame quantisation)."""

SIT_LOW_HIGH_HZ = ((913.8, 985.2), (1370.6, 1428.5))
"""Telcordia low and high frequencies of segments 1 and 2."""

SIT_SHORT_LONG_S = (0.274, 0.380)
"""Telcordia short and long segment durations."""

SIT_FREQ_TOLERANCE = 0.015
SIT_DURATION_TOLERANCE_S = 0.045

SIT_CODES: dict[tuple[str, str, str, str], str] = {
    # (duration 1, duration 2, frequency 1, frequency 2) -> subtype
    ("S", "S", "L", "L"): "ic",
    ("L", "S", "H", "L"): "vc",
    ("L", "L", "H", "H"): "nc",
    ("L", "L", "L", "L"): "nc",
    ("S", "L", "H", "L"): "ro",
    ("S", "L", "L", "H"): "ro",
    ("L", "S", "L", "H"): "io",
}

SIT_SUBTYPE_LABELS: dict[str | None, tuple[str, float]] = {
    "vc": ("vacant", 0.93),
    "nc": ("network_busy", 0.93),
    "ro": ("wrong_number_format", 0.9),
    "ic": ("sit", 0.85),
    "io": ("sit", 0.85),
    None: ("sit", 0.85),
}
"""Label and evidence score per SIT subtype. An intercept (or an undecodable SIT) says the
call failed but not why: it stays below the decision threshold and waits for the
announcement that usually follows."""

PARTIAL_SIT_SCORE = 0.7
"""A SIT whose first segment was cut off by the start of the media."""
