"""Synthesised music ringback (彩铃): melodies over chords in several timbres and tempi.

Not MIDI rendering (which would need soundfonts and files), but the properties that matter
to the classifier: harmonic notes that change on a beat, sustained or decaying envelopes,
accompaniment, vibrato and occasional percussion.
"""

from __future__ import annotations

import numpy as np

from audio_classifier.audio import SAMPLE_RATE

SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "pentatonic": (0, 2, 4, 7, 9),
}
TIMBRES = {
    # harmonic amplitudes, envelope decay (1/s; 0 = sustained), vibrato depth
    "piano": ((1.0, 0.5, 0.3, 0.2, 0.1), 3.0, 0.0),
    "organ": ((1.0, 0.8, 0.6, 0.4, 0.3, 0.2), 0.0, 0.0),
    "strings": ((1.0, 0.7, 0.5, 0.35, 0.25, 0.15, 0.1), 0.3, 0.006),
    "flute": ((1.0, 0.2, 0.05), 0.2, 0.004),
    "guitar": ((1.0, 0.6, 0.45, 0.3, 0.2, 0.1), 4.0, 0.0),
}


def _note(freq: float, seconds: float, timbre: str, rng: np.random.Generator) -> np.ndarray:
    harmonics, decay, vibrato = TIMBRES[timbre]
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wobble = 1 + vibrato * np.sin(2 * np.pi * rng.uniform(4, 6) * t)
    phase = 2 * np.pi * freq * np.cumsum(wobble) / SAMPLE_RATE
    out = np.zeros_like(t)
    for k, amp in enumerate(harmonics, start=1):
        if freq * k < SAMPLE_RATE / 2 - 200:
            out += amp * np.sin(k * phase)
    attack = np.minimum(1.0, t / 0.02)
    release = np.minimum(1.0, (seconds - t) / 0.05)
    envelope = attack * np.clip(release, 0, 1) * (np.exp(-decay * t) if decay else 1.0)
    return out * envelope


def music(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A random piece of *seconds* seconds; float32 at 8 kHz, peak about 0.5."""
    scale = SCALES[list(SCALES)[rng.integers(len(SCALES))]]
    root = 220.0 * 2 ** (rng.integers(-5, 7) / 12)
    beat = 60.0 / rng.uniform(60, 150)
    lead, accompaniment = rng.choice(list(TIMBRES), size=2)
    n = int(seconds * SAMPLE_RATE)
    out = np.zeros(n + SAMPLE_RATE)
    t = 0.0
    degree = int(rng.integers(len(scale)))
    while t < seconds:
        length = beat * float(rng.choice([0.5, 1.0, 1.0, 2.0]))
        degree = int(np.clip(degree + rng.integers(-2, 3), 0, 2 * len(scale) - 1))
        octave, step = divmod(degree, len(scale))
        freq = root * 2 ** (octave + scale[step] / 12)
        note = _note(freq, length, lead, rng)
        at = int(t * SAMPLE_RATE)
        out[at : at + len(note)] += note[: len(out) - at]
        t += length
    bar = 4 * beat
    t = 0.0
    while t < seconds:
        chord_root = root / 2 * 2 ** (scale[int(rng.integers(len(scale)))] / 12)
        for interval in (0, 4, 7):
            note = 0.35 * _note(chord_root * 2 ** (interval / 12), bar, accompaniment, rng)
            at = int(t * SAMPLE_RATE)
            out[at : at + len(note)] += note[: len(out) - at]
        t += bar
    if rng.random() < 0.5:  # percussion: short filtered noise bursts on the beat
        hit = rng.standard_normal(int(0.05 * SAMPLE_RATE)) * np.exp(-np.arange(int(0.05 * SAMPLE_RATE)) / 80)
        for at in np.arange(0, seconds, beat):
            i = int(at * SAMPLE_RATE)
            out[i : i + len(hit)] += 0.3 * hit[: len(out) - i]
    out = out[:n]
    return (0.5 * out / (np.abs(out).max() + 1e-9)).astype(np.float32)
