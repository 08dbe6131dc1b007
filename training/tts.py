"""Text to speech with espeak-ng, resampled to the classifier's 8 kHz.

Mandarin goes through the ``cmn-latn-pinyin`` voice with pinyin input (pypinyin converts
the characters): espeak-ng's ``cmn`` voice reads characters as English-ish pinyin with the
tone digits spoken. Speaker variety comes from voice variants (``+f3``, ``+m2``, ...),
speeds and pitches.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache

import numpy as np
import soundfile as sf

from audio_classifier.audio import SAMPLE_RATE
from audio_classifier.resample import Resampler

ZH_VOICE = "cmn-latn-pinyin"
EN_VOICES = ("en-us", "gmw/en", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
"""British English is named by its file, gmw/en: espeak-ng 1.51 silently ignores the variant
in "en-gb+f2" (same output as "en-gb"), which would quietly remove speaker variety."""

TRAIN_VARIANTS = (
    "",
    "f1",
    "f2",
    "f3",
    "f5",
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m7",
    "klatt",
    "klatt2",
    "Andy",
    "Denis",
    "max",
    "norbert",
    "anika",
    "belinda",
    "edward",
    "john",
    "linda",
    "paul",
)
HELDOUT_VARIANTS = ("f4", "m6", "klatt4", "adam", "caleb", "benjamin", "grandma", "iven2")
"""Voice variants never used for training: the held-out speakers."""

HELDOUT_EN_VOICES = ("en-gb-x-gbcwmd",)
"""An English accent that only the held-out split hears."""

_PUNCTUATION = re.compile(r"[，。、？！；：,.?!;:]+")


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: espeak-ng voice, variant, speed (wpm) and pitch (0-99)."""

    language: str
    name: str
    variant: str
    speed: int
    pitch: int

    @property
    def spec(self) -> str:
        return f"{self.name}+{self.variant}" if self.variant else self.name

    def describe(self) -> str:
        return f"{self.spec}/s{self.speed}/p{self.pitch}"


def pick_voice(language: str, rng: np.random.Generator, heldout: bool) -> Voice:
    variants = HELDOUT_VARIANTS if heldout else TRAIN_VARIANTS
    if language == "zh":
        name = ZH_VOICE
    else:
        names = EN_VOICES if heldout else tuple(v for v in EN_VOICES if v not in HELDOUT_EN_VOICES)
        name = names[rng.integers(len(names))]
    return Voice(
        language,
        name,
        variants[rng.integers(len(variants))],
        int(rng.integers(125, 190)),
        int(rng.integers(25, 75)),
    )


@cache
def _pinyin_converter():
    from pypinyin import Style, lazy_pinyin, load_phrases_dict

    # phrase-dictionary readings that are wrong in carrier prompts ("打的" is not "taxi" here)
    load_phrases_dict({"打的": [["dǎ"], ["de"]], "拨打的": [["bō"], ["dǎ"], ["de"]]})
    return lambda text: lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)


def to_pinyin(text: str) -> str:
    """Chinese text as espeak-ng pinyin input: ``nin2 bo1 da3 de5 ...``, commas for pauses."""
    parts = [p for p in _PUNCTUATION.split(text) if p.strip()]
    convert = _pinyin_converter()
    return ", ".join(" ".join(convert(part)) for part in parts)


def check_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")


def speak(text: str, voice: Voice) -> np.ndarray:
    """Synthesise *text*; float32 mono at 8 kHz."""
    spoken = to_pinyin(text) if voice.language == "zh" else text
    result = subprocess.run(
        ["espeak-ng", "-v", voice.spec, "-s", str(voice.speed), "-p", str(voice.pitch), "--stdout", spoken],
        capture_output=True,
        check=True,
    )
    samples, rate = sf.read(io.BytesIO(result.stdout), dtype="float32")
    resampler = Resampler(rate, SAMPLE_RATE)
    out = np.concatenate([resampler.process(samples), resampler.flush()])
    # espeak pads with silence; trim it so onsets are where speech starts
    loud = np.flatnonzero(np.abs(out) > 0.01)
    return out[loud[0] : loud[-1] + 1] if len(loud) else out
