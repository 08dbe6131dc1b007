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
from dataclasses import dataclass, replace
from functools import cache

import numpy as np
import soundfile as sf

from audio_classifier.audio import SAMPLE_RATE
from audio_classifier.resample import Resampler

ZH_VOICE = "cmn-latn-pinyin"
EN_VOICES = (
    "en-us",
    "gmw/en",
    "en-gb-scotland",
    "en-029",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)
"""British English is named by its file, gmw/en: espeak-ng 1.51 silently ignores the variant
in "en-gb+f2" (same output as "en-gb"), which would quietly remove speaker variety."""

HELDOUT_VARIANTS = ("f4", "m6", "klatt4", "adam", "caleb", "benjamin", "grandma", "iven2")
"""Voice variants never used for training: the held-out speakers."""

HELDOUT_SIBLINGS = ("iven", "iven3", "iven4", "klatt3", "klatt5", "klatt6", "grandpa")
"""Variants derived from a held-out one (same base settings): kept out of training too, so
the held-out speakers stay unheard."""

UNUSED_VARIANTS = ("whisper", "whisperf")
"""Whispered (unvoiced) speech: no carrier announcement sounds like this."""

TRAIN_VARIANTS = (
    "",
    *(
        "Alex Alicia Andrea Andy Annie AnxiousAndy Demonic Denis Diogo Gene Gene2 Henrique Hugo "
        "Jacky Lee Marco Mario Michael Mike Mr Nguyen RicishayMax RicishayMax2 RicishayMax3 Storm "
        "Tweaky UniRobot anika anikaRobot announcer antonio aunty belinda boris croak david ed "
        "edward edward2 f1 f2 f3 f5 fast gustave john kaukovalta klatt klatt2 linda m1 m2 m3 m4 m5 "
        "m7 m8 marcelo max michel miguel norbert pablo paul pedro quincy rob robert robosoft "
        "robosoft2 robosoft3 robosoft4 robosoft5 robosoft6 robosoft7 robosoft8 sandro shelby steph "
        "steph2 steph3 travis victor zac"
    ).split(),
)
"""Every espeak-ng 1.51 variant except the held-out ones, their siblings and whispers."""

HELDOUT_EN_VOICES = ("en-gb-x-gbcwmd",)
"""An English accent that only the held-out split hears."""

TRAIN_ONLY_EN_VOICES = ("en-us-nyc",)
"""English voices that only training hears (kept out of EN_VOICES, which the held-out split
draws from)."""

WARP_RANGE = (45, 55)
"""Training voices are resampled by 50/k for k in this range (inclusive): speech about 10 %
faster or slower with every formant and the pitch shifted alike, as a longer or shorter
vocal tract would (speed perturbation). Held-out voices are never warped."""

_PUNCTUATION = re.compile(r"[，。、？！；：,.?!;:]+")


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: espeak-ng voice, variant, speed (wpm) and pitch (0-99)."""

    language: str
    name: str
    variant: str
    speed: int
    pitch: int
    warp: int = 50
    """Resampling 50/warp after synthesis; 50 leaves the voice as espeak-ng makes it."""

    @property
    def spec(self) -> str:
        return f"{self.name}+{self.variant}" if self.variant else self.name

    def describe(self) -> str:
        warp = f"/w{self.warp}" if self.warp != 50 else ""
        return f"{self.spec}/s{self.speed}/p{self.pitch}{warp}"


def pick_voice(language: str, rng: np.random.Generator, heldout: bool) -> Voice:
    variants = HELDOUT_VARIANTS if heldout else TRAIN_VARIANTS
    if language == "zh":
        name = ZH_VOICE
    else:
        names = (
            EN_VOICES
            if heldout
            else tuple(v for v in EN_VOICES if v not in HELDOUT_EN_VOICES) + TRAIN_ONLY_EN_VOICES
        )
        name = names[rng.integers(len(names))]
    voice = Voice(
        language,
        name,
        variants[rng.integers(len(variants))],
        int(rng.integers(125, 190)),
        int(rng.integers(25, 75)),
    )
    if heldout:
        return voice
    return replace(voice, warp=int(rng.integers(WARP_RANGE[0], WARP_RANGE[1] + 1)))


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
    if voice.warp != 50:
        from scipy.signal import resample_poly

        out = resample_poly(out, 50, voice.warp).astype(np.float32)
    # espeak pads with silence; trim it so onsets are where speech starts
    loud = np.flatnonzero(np.abs(out) > 0.01)
    return out[loud[0] : loud[-1] + 1] if len(loud) else out
