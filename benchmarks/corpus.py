"""A generated 8 kHz benchmark corpus: tones of every plan, SIT, fax, noise, silence and
speech-like audio, each clip degraded like a trunk recording. Deterministic from a seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from audio_classifier import synth
from audio_classifier.audio import SAMPLE_RATE
from audio_classifier.tone_plans import TONE_SPECS


def make_corpus(folder: Path, clips: int, seconds: float, seed: int = 7) -> list[Path]:
    """Write *clips* WAV files of *seconds* each into *folder*; return their paths."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    kinds = ["tone", "sit", "noise", "speech", "silence"]
    paths = []
    for i in range(clips):
        kind = kinds[i % len(kinds)]
        if kind == "tone":
            spec = TONE_SPECS[rng.integers(len(TONE_SPECS))]
            x = synth.cadenced(spec, seconds, start_offset_s=rng.uniform(0, 0.5))
        elif kind == "sit":
            code = [None, "ic", "vc", "nc", "ro", "io"][i % 6]
            x = np.concatenate([synth.silence(0.3), synth.sit(code)])
            x = np.concatenate([x, synth.speech_like(seconds - len(x) / SAMPLE_RATE, rng)])
        elif kind == "noise":
            x = (0.05 * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)
        elif kind == "speech":
            x = synth.speech_like(seconds, rng)
        else:
            x = (1e-4 * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)
        x = synth.g711_channel(synth.add_noise(x, 25.0, rng, reference=0.01), "mulaw")
        path = folder / f"{i:04d}_{kind}.wav"
        sf.write(path, x, SAMPLE_RATE, subtype="PCM_16")
        paths.append(path)
    return paths
