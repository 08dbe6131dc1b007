"""Synthetic telephony signals: tone plans, SIT, fax tones, noise and channel effects.

Used by the tests, the benchmarks and the training recipe. All functions return float32
mono at ``sample_rate`` (default the internal 8 kHz) and take a numpy ``Generator`` where
randomness is involved, so every signal is reproducible from a seed.
"""

from __future__ import annotations

import numpy as np

from . import g711
from .audio import SAMPLE_RATE
from .tone_plans import SIT_LOW_HIGH_HZ, SIT_SHORT_LONG_S, TONE_SPECS, ToneSpec

TONE_LEVEL = 0.25
"""Default tone amplitude per component (about -15 dBFS for a dual tone)."""


def spec(plan: str, name: str) -> ToneSpec:
    """The tone spec named *name* in *plan* (for example ``spec("CN", "busy")``)."""
    for s in TONE_SPECS:
        if s.plan == plan and s.name == name:
            return s
    raise KeyError(f"no tone {name!r} in plan {plan!r}")


def tone(
    freqs_hz: tuple[float, ...],
    duration_s: float,
    *,
    amplitude: float = TONE_LEVEL,
    sample_rate: int = SAMPLE_RATE,
    phase: float = 0.0,
) -> np.ndarray:
    """A steady sum of sines, *amplitude* each."""
    t = np.arange(int(round(duration_s * sample_rate))) / sample_rate
    out = np.zeros_like(t)
    for f in freqs_hz:
        out += amplitude * np.sin(2 * np.pi * f * t + phase)
    return out.astype(np.float32)


def silence(duration_s: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    return np.zeros(int(round(duration_s * sample_rate)), dtype=np.float32)


def cadenced(
    tone_spec: ToneSpec,
    duration_s: float,
    *,
    freq_scale: float = 1.0,
    cadence_scale: float = 1.0,
    start_offset_s: float = 0.0,
    amplitude: float = TONE_LEVEL,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """*tone_spec* played for *duration_s* seconds.

    ``freq_scale`` and ``cadence_scale`` drift the frequencies and timing;
    ``start_offset_s`` starts the media that far into the pattern (a cut first burst).
    """
    freqs = tuple(f * freq_scale for f in tone_spec.freqs_hz)
    total = int(round(duration_s * sample_rate))
    if tone_spec.cadence is None:
        return tone(freqs, duration_s, amplitude=amplitude, sample_rate=sample_rate)
    pattern = [d * cadence_scale for d in tone_spec.cadence]
    pieces: list[np.ndarray] = []
    made = 0
    skip = int(round(start_offset_s * sample_rate))
    i = 0
    while made < total + skip:
        length = int(round(pattern[i % len(pattern)] * sample_rate))
        if i % 2 == 0:
            t = np.arange(made, made + length) / sample_rate
            piece = sum(amplitude * np.sin(2 * np.pi * f * t) for f in freqs)
        else:
            piece = np.zeros(length)
        pieces.append(np.asarray(piece, dtype=np.float32))
        made += length
        i += 1
    return np.concatenate(pieces)[skip : skip + total].astype(np.float32)


def sit(
    code: str | None = None,
    *,
    freq_scale: float = 1.0,
    amplitude: float = TONE_LEVEL,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """A Special Information Tone: a Telcordia code (ic, vc, nc, ro, io) or, for ``None``,
    the plain ITU-T E.180 tone (950/1400/1800 Hz, 330 ms each)."""
    if code is None:
        parts = [(950.0, 0.33), (1400.0, 0.33), (1800.0, 0.33)]
    else:
        layouts = {
            "ic": ("SSL", "LL"),
            "vc": ("LSL", "HL"),
            "nc": ("LLL", "HH"),
            "ro": ("SLL", "HL"),
            "io": ("LSL", "LH"),
        }
        durations, freqs = layouts[code]
        dur = {"S": SIT_SHORT_LONG_S[0], "L": SIT_SHORT_LONG_S[1]}
        f1 = SIT_LOW_HIGH_HZ[0][freqs[0] == "H"]
        f2 = SIT_LOW_HIGH_HZ[1][freqs[1] == "H"]
        parts = [(f1, dur[durations[0]]), (f2, dur[durations[1]]), (1776.7, dur[durations[2]])]
    return np.concatenate(
        [tone((f * freq_scale,), d, amplitude=amplitude, sample_rate=sample_rate) for f, d in parts]
    )


def fax_cng(duration_s: float, **kwargs) -> np.ndarray:
    """Calling fax tone: 1100 Hz, 0.5 s on, 3 s off."""
    return cadenced(spec("T.30", "fax_cng"), duration_s, **kwargs)


def fax_ced(
    duration_s: float = 3.3,
    *,
    amplitude: float = TONE_LEVEL,
    am: bool = False,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Answer tone: 2100 Hz continuous; ``am`` adds ANSam's 15 Hz amplitude modulation."""
    t = np.arange(int(round(duration_s * sample_rate))) / sample_rate
    x = amplitude * np.sin(2 * np.pi * 2100.0 * t)
    if am:
        x *= 1 + 0.2 * np.sin(2 * np.pi * 15.0 * t)
    return x.astype(np.float32)


def speech_like(duration_s: float, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A voice-like signal: glottal pulse train with gliding pitch through moving formant
    resonances, in syllable-sized bursts. Not speech, but it has speech's spectral shape and
    rhythm, which is what a tone detector must not mistake for tones."""
    n = int(round(duration_s * sample_rate))
    t = np.arange(n) / sample_rate
    pitch = 120 + 60 * rng.random() + 30 * np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * t)
    phase = np.cumsum(pitch / sample_rate)
    pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
    signal = np.zeros(n)
    for formant in (rng.uniform(500, 800), rng.uniform(1000, 1800), rng.uniform(2200, 3000)):
        r = np.exp(-np.pi * 120 / sample_rate)
        w = 2 * np.pi * formant / sample_rate
        a1, a2 = -2 * r * np.cos(w), r * r
        y = np.zeros(n)
        y1 = y2 = 0.0
        for i in range(n):  # short signals only: the formant filter is a plain IIR loop
            y0 = pulses[i] - a1 * y1 - a2 * y2
            y[i] = y0
            y2, y1 = y1, y0
        signal += y
    syllables = (np.sin(2 * np.pi * rng.uniform(3, 5) * t + rng.uniform(0, 6)) > -0.2).astype(float)
    signal *= syllables
    signal += 0.05 * rng.standard_normal(n) * signal.std()
    return (0.3 * signal / (np.abs(signal).max() + 1e-9)).astype(np.float32)


def add_noise(
    signal: np.ndarray, snr_db: float, rng: np.random.Generator, *, reference: float | None = None
) -> np.ndarray:
    """Add white noise at *snr_db* below the signal's mean power (or *reference* power)."""
    power = float(np.mean(signal.astype(np.float64) ** 2)) if reference is None else reference
    noise = rng.standard_normal(len(signal)) * np.sqrt(power / 10 ** (snr_db / 10))
    return (signal + noise).astype(np.float32)


def tone_power(tone_spec_or_freqs: ToneSpec | tuple[float, ...], amplitude: float = TONE_LEVEL) -> float:
    """Mean power while a tone sounds (for SNR relative to the tone, not to its gaps)."""
    freqs = tone_spec_or_freqs.freqs_hz if isinstance(tone_spec_or_freqs, ToneSpec) else tone_spec_or_freqs
    return len(freqs) * amplitude**2 / 2


def g711_channel(signal: np.ndarray, law: str = "mulaw") -> np.ndarray:
    """A G.711 round trip, as on a telephone trunk."""
    return g711.round_trip(np.clip(signal, -1.0, 1.0), law)
