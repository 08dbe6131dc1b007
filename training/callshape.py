"""A call-shaped check set: announcements, answers and tones as calls play them, with real voices.

    python -m training.callshape OUT_DIR [--per-label 40] [--reachable 2000] [--negatives 280]
    python -m training.callshape OUT_DIR --enrolled [--copies 4] [--nonenrolled 2000]
    python -m training.callshape OUT_DIR --tiny [--enrolled]         # a few clips per group
    audio-classifier evaluate OUT_DIR/manifest.csv --no-asr --by group --by lead --by codec

The held-out split varies voices and noise around one call shape. This set varies the call
shape itself, each choice a manifest column so that ``evaluate --by COLUMN`` shows where the
classifier fails: what plays before (``lead``: nothing, silence, ringback of the CN, NANP,
ITU or UK plan, ``plan``, or music ringback), a Special Information Tone before the
announcement (``sit``, at its real-world pairing or at random, ``sit_pairing``), the
announcement once or twice (``repeat``), and the line (``codec`` G.711 mu-law / A-law,
GSM 06.10, AMR-NB at 4.75-12.2 kbit/s (``amr_kbps``) or linear; ``bandpass`` 300-3400 Hz;
``noise`` white / pink / babble / none at ``snr_db`` 10-30; ``gain_db`` ±12). ``onset_s``
is where the announcement or answer starts (a SIT alone: where the SIT starts; tones,
music and negatives: 0), ``reachable`` is 1 for ringback, music ringback, human and
voicemail. Groups (``group``):

- ``announcement``: every announcement label (``labels.ANNOUNCEMENT_LABELS``), spoken by
  the held-out synthetic voices (``training.corpus`` with ``heldout=True``, as
  ``training.fresh`` draws them) or, where a real prompt says it, by a real voice.
- ``sit_alone``: a SIT of each subtype (ic, vc, nc, ro, io and the plain E.180 tone) and
  nothing after it but silence, or the end of the file; expected label the SIT's own
  (``tone_plans.SIT_SUBTYPE_LABELS``: vacant for vc, network_busy for nc,
  wrong_number_format for ro, sit for the others).
- ``reachable``: ringback of each plan, music ringback, and human and voicemail answers
  (mostly after ringback), synthetic and real: what must never get a destructive action.
- ``negative``: steady single tones anywhere in 300-3400 Hz (not at 400 Hz, the UK
  number-unobtainable tone, nor 2100 Hz, the fax answer tone, which mean something),
  steady dual tones, dial tones (425, 450, 350+440 Hz), tones of a frequency no plan has in
  an on/off cadence, white and pink noise: label ``unknown``; and music that follows no
  plan's cadence, labelled ``color_ringback`` (music is what a music ringback is, so
  ``unknown`` would count the right answer wrong). 3-10 s each, through the same line.

Real voices: human recordings from Debian's Asterisk prompt packages under
``/usr/share/asterisk/sounds`` (``REAL_VOICES``). They speak Spanish, French, Italian and
Russian, which the classifier does not understand: they are here to be enrolled and found
again (``--enrolled``) and to check that reachable calls never get a destructive action.
The labels of their prompts are ``REAL_PROMPTS``; a voicemail greeting is also composed
the way Asterisk plays it (``vm-theperson``, digits, ``vm-isunavail`` or ``vm-isonphone``,
``vm-intro``; ``content`` = greeting). Never used, because they are kept for independent
evaluation: asterisk-core-sounds-en* and asterisk-core-sounds-es* (sound folders ``en*``
and ``es_*``), nor the ``it`` and ``it_IT`` links (the Menardi voice again). Licences
(``/usr/share/doc/<package>/copyright``):

- ``es``: asterisk-prompt-es-co, Avatar Ltda. (voice July E. Jiménez), GPL-2.
- ``fr``: asterisk-prompt-fr-armelle, Michel Gutierrez (voice Armelle Desjardins), a
  BSD-style licence (redistribution with the copyright notice, no endorsement).
- ``fr_CA_f_June``: asterisk-core-sounds-fr-wav, June Wallack, CC-BY-SA-3.0.
- ``it_IT_m_Carlo``: asterisk-core-sounds-it-wav, Carlo Flora, CC-BY-3.0.
- ``ru_RU_f_IvrvoiceRU``: asterisk-core-sounds-ru-wav, Maxim Topal (ivrvoice.ru), CC-BY-3.0.
- ``it_IT_f_Menardi``: asterisk-prompt-it-menardi-gsm, Marco Menardi and Paola Dal Zot,
  CC-BY-SA-3.0.

The clips are generated, never committed (write them under ``work/``), and derived from
these recordings: the licences above apply to them.

``--enrolled`` also writes ``enrol.csv`` (the clean recording of each prompt to enrol, for
``audio-classifier samples import``: real prompts of all six voices, some prompts of each
voice kept out, and synthetic prompts in held-out voices), ``enrolled.csv`` (call-shaped
copies of the enrolled prompts) and ``nonenrolled.csv`` (call-shaped clips whose speech is
not enrolled: the kept-out prompts of the same voices, other synthetic speech, music and
ringback), both with ``enrolled`` 1 / 0 and ``prompt``: a sample match in the second is a
false one.

Deterministic: every clip comes from its own seeded generator (``seed`` column), so the
same arguments write the same files, and a larger size keeps the smaller one's clips;
``--draw N`` draws them all again from other seeds (one draw to tune on, another to report).
Writes 8 kHz mono 16-bit WAV (the codecs are applied already). Needs espeak-ng, sox with
AMR-NB (libsox-fmt-all) and the six prompt packages.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal as sps

from audio_classifier import g711, synth
from audio_classifier.audio import SAMPLE_RATE
from audio_classifier.labels import ANNOUNCEMENT_LABELS, LABELS
from audio_classifier.tone_plans import SIT_SUBTYPE_LABELS, TONE_SPECS, ToneSpec

from . import channel, corpus, recode, recordings, tts
from .parallel import map_in_order

SEED = 30_300
"""Every clip's generator is seeded from this, its group, its label and its index."""

SOUNDS = Path("/usr/share/asterisk/sounds")


@dataclass(frozen=True)
class RealVoice:
    package: str
    lang: str
    licence: str


REAL_VOICES: dict[str, RealVoice] = {
    "es": RealVoice("asterisk-prompt-es-co", "es", "GPL-2 (Avatar Ltda.; voice July E. Jiménez)"),
    "fr": RealVoice(
        "asterisk-prompt-fr-armelle", "fr", "BSD-style (Michel Gutierrez; voice Armelle Desjardins)"
    ),
    "fr_CA_f_June": RealVoice("asterisk-core-sounds-fr-wav", "fr", "CC-BY-SA-3.0 (June Wallack)"),
    "it_IT_m_Carlo": RealVoice("asterisk-core-sounds-it-wav", "it", "CC-BY-3.0 (Carlo Flora)"),
    "ru_RU_f_IvrvoiceRU": RealVoice("asterisk-core-sounds-ru-wav", "ru", "CC-BY-3.0 (Maxim Topal)"),
    "it_IT_f_Menardi": RealVoice(
        "asterisk-prompt-it-menardi-gsm", "it", "CC-BY-SA-3.0 (Marco Menardi, Paola Dal Zot)"
    ),
}
"""The real voices: sound folder -> Debian package, language, licence. GSM files are read
with sox, WAV files with soundfile."""

RESERVED_FOLDERS = ("en", "es_")
"""Sound folders (by prefix) of asterisk-core-sounds-en* and -es*: kept for independent
evaluation, never read here (``_voice_folder`` refuses them)."""

REAL_PROMPTS: dict[str, str] = {
    # announcement-like: what a switch plays
    "ss-noservice": "vacant",  # the number is not in service
    "all-circuits-busy-now": "network_busy",
    "cannot-complete-as-dialed": "wrong_number_format",
    "number-not-answering": "no_answer",
    # voicemail greetings and the pieces Asterisk builds its greetings from
    "vm-intro": "voicemail",  # leave your message after the tone
    "vm-nobodyavail": "voicemail",  # nobody is available to take your call
    "vm-theperson": "voicemail",  # the person at extension ...
    "vm-isunavail": "voicemail",  # ... is unavailable
    "vm-isonphone": "voicemail",  # ... is on the phone
    "vm-rec-busy": "voicemail",  # a mailbox's busy message
    "vm-rec-unv": "voicemail",  # its unavailable message
    "vm-rec-temp": "voicemail",  # its temporary greeting
    # short spoken phrases: stand-ins for a person answering
    "hello": "human",
    "hello-world": "human",
    "auth-thankyou": "human",
    "privacy-thankyou": "human",
    "vm-goodbye": "human",
    "queue-thankyou": "human",
    "privacy-unident": "human",
    "dir-nomatch": "human",
}
"""Real prompt -> expected label (only the voices that have a prompt use it)."""

GREETING = "greeting"
"""``content`` of a voicemail greeting composed as Asterisk plays one (``_greeting``)."""

PLANS = {"cn": "CN", "nanp": "NANP", "itu": "ITU", "uk": "UK"}
"""Ringback plans (the ``plan`` column) -> ``tone_plans`` plan: CN 450 Hz 1/4 s, NANP
440+480 Hz 2/4 s, ITU 425 Hz 1/4 s, UK 400+450 Hz 0.4/0.2/0.4/2.0 s."""
LEADS = ("none", "silence", "ringback", "music")
LEAD_ODDS = {
    "announcement": (0.2, 0.2, 0.4, 0.2),
    "answer": (0.1, 0.1, 0.6, 0.2),  # an answer comes after ringback
    "sit": (0.3, 0.3, 0.3, 0.1),
}
"""Odds of each of ``LEADS`` by what follows it."""
LEAD_S = (1.0, 8.0)
SIT_SUBTYPES = ("ic", "vc", "nc", "ro", "io", "plain")
"""``plain`` is the ITU-T E.180 SIT (no Telcordia code: ``SIT_SUBTYPE_LABELS[None]``)."""
SIT_SHARE = 0.35
"""Share of announcements with a SIT before them; half at the real-world pairing."""
GENERIC_SIT = ("plain", "ic", "io")
"""The SITs of an announcement without a Telcordia code of its own (``corpus.SIT_CODES_FOR``
has vacant, network_busy and wrong_number_format): the plain E.180 tone, an operator
intercept or "ineffective other"."""
CODECS = ("mulaw", "alaw", "gsm", "amr-nb", "linear")
NOISES = ("white", "pink", "babble", "none")
SNR_DB = (10.0, 30.0)
GAIN_DB = (-12.0, 12.0)
BANDPASS_SHARE = 0.7
REAL_PEAK = 0.5
"""Real recordings are scaled to this peak (about where the synthetic voices speak); the
line then varies the gain."""
NEGATIVE_KINDS = ("tone", "dual", "dial", "cadenced", "white", "pink", "music")
MEANINGFUL_STEADY_HZ = (400.0, 2100.0)
"""Steady tones that mean something (UK number unobtainable, fax answer): kept out of the
negatives, by ``OFF_PLAN_MARGIN``."""
OFF_PLAN_MARGIN = 0.06
REACHABLE_CYCLE = (
    ("ringback", "none"),
    ("human", "synthetic"),
    ("voicemail", "real"),
    ("human", "real"),
    ("color_ringback", "none"),
    ("voicemail", "synthetic"),
    ("ringback", "none"),
    ("human", "real"),
    ("voicemail", GREETING),
    ("human", "synthetic"),
    ("voicemail", "synthetic"),
    ("voicemail", "real"),
)
"""The reachable group, clip by clip (label, source), round and round."""
NONENROLLED_CYCLE = (
    "real",
    "announcement",
    "real",
    "human",
    "music",
    "real",
    "voicemail",
    "real",
    "announcement",
    "ringback",
)
"""The non-enrolled set, clip by clip: a kept-out real prompt, synthetic speech of a label,
music ringback or ringback."""
SAME_WORDS = (
    ("hello", "hello-world"),
    ("auth-thankyou", "privacy-thankyou", "queue-thankyou"),
    ("vm-rec-busy", "vm-rec-unv", "vm-rec-temp"),
)
"""Real prompts that say some of the same words, which a voice may have recorded once and
spliced (Menardi's "queue-thankyou" holds her "auth-thankyou"): enrolled or kept out
together, so that no kept-out prompt holds an enrolled one's audio."""
SYNTHETIC_ENROLLED = 2
"""Synthetic prompts enrolled per label (every announcement label, human and voicemail):
one Mandarin, one English sentence, each in a held-out voice."""
ENROL_PITCH = (76, 91)
"""Pitches of the enrolled synthetic prompts: above what ``tts.pick_voice`` draws (25-74),
so no synthetic speech of the other clips repeats an enrolled rendering."""
GROUP_CODES = {
    "announcement": 1,
    "sit_alone": 2,
    "reachable": 3,
    "negative": 4,
    "enrolled": 5,
    "nonenrolled": 6,
}
GROUPS = ("announcement", "sit_alone", "reachable", "negative")
COLUMNS = [
    "path",
    "label",
    "group",
    "source",
    "content",
    "voice",
    "lang",
    "prompt",
    "recording",
    "package",
    "lead",
    "plan",
    "lead_s",
    "sit",
    "sit_pairing",
    "repeat",
    "tail",
    "onset_s",
    "duration_s",
    "reachable",
    "codec",
    "amr_kbps",
    "bandpass",
    "noise",
    "snr_db",
    "gain_db",
    "seed",
    "text",
    "voice_detail",
]
"""The manifest's columns; ``enrolled.csv`` and ``nonenrolled.csv`` add ``enrolled``."""
ENROL_COLUMNS = ["path", "label", "carrier", "note", "lang"]
DEFAULT_SIZES = {"per_label": 40, "reachable": 2000, "negatives": 280, "copies": 4, "nonenrolled": 2000}
TINY_SIZES = {"per_label": 1, "reachable": 12, "negatives": 7, "copies": 1, "nonenrolled": 10}
TINY_ENROLLED_COPIES = 6
"""``--tiny``: call-shaped copies of only this many enrolled prompts (spread over them)."""


# --- real recordings ----------------------------------------------------------------------


def _voice_folder(voice: str) -> Path:
    if voice.startswith(RESERVED_FOLDERS) or voice not in REAL_VOICES:
        raise ValueError(f"{voice!r} is not one of the real voices this set may use")
    folder = SOUNDS / voice
    if folder.is_symlink():
        raise ValueError(f"{folder} is a link (a duplicate voice)")
    return folder


def recording_path(voice: str, name: str) -> Path | None:
    """The file of prompt *name* (may be ``digits/4``) in *voice*, or None."""
    folder = _voice_folder(voice)
    for suffix in (".wav", ".gsm"):
        path = folder / f"{name}{suffix}"
        if path.is_file():
            if not path.resolve().is_relative_to(folder.resolve()):
                raise ValueError(f"{path} leads outside {folder}")
            return path
    return None


def read_recording(voice: str, name: str) -> np.ndarray:
    """Prompt *name* of *voice* as float32 mono at 8 kHz, as recorded (read-only)."""
    path = recording_path(voice, name)
    if path is None:
        raise FileNotFoundError(f"no {name} in {SOUNDS / voice} ({REAL_VOICES[voice].package})")
    return recordings.read_audio(path)


def _trimmed(x: np.ndarray) -> np.ndarray:
    """*x* without its leading and trailing quiet, at ``REAL_PEAK``."""
    return recordings.trimmed(x, REAL_PEAK)


@cache
def real_prompts() -> tuple[tuple[str, str, str], ...]:
    """Every (voice, prompt, label) of ``REAL_PROMPTS`` that a voice has."""
    return tuple(
        (voice, name, label)
        for voice in REAL_VOICES
        for name, label in REAL_PROMPTS.items()
        if recording_path(voice, name) is not None
    )


def _voice_by_voice(items: list, voice_of=lambda item: item[0]) -> list:
    """*items* reordered voice by voice in turn (``voice_of`` an item is its voice): a run
    of them visits every voice before any voice's second item."""
    by_voice = [[item for item in items if voice_of(item) == voice] for voice in REAL_VOICES]
    out = []
    for round_ in range(max((len(b) for b in by_voice), default=0)):
        out += [b[round_] for b in by_voice if round_ < len(b)]
    return out


def _real_by_label(label: str) -> list[tuple[str, str]]:
    """(voice, prompt) of *label*, voice by voice in turn (``_voice_by_voice``)."""
    return _voice_by_voice([(v, p) for v, p, lab in real_prompts() if lab == label])


# --- pieces of a call -----------------------------------------------------------------------


def _ringback(plan: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Ringback of *plan* starting anywhere in its cadence (the first burst may be cut)."""
    spec = synth.spec(PLANS[plan], "ringback")
    return synth.cadenced(
        spec,
        seconds,
        freq_scale=1 + rng.uniform(-0.01, 0.01),
        cadence_scale=1 + rng.uniform(-0.1, 0.1),
        start_offset_s=rng.uniform(0, sum(spec.cadence or (0,))),
        amplitude=rng.uniform(0.05, 0.3),
    )


def _lead(odds: str, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """What plays before: nothing, silence, ringback or music ringback (``LEAD_ODDS``)."""
    kind = LEADS[int(rng.choice(len(LEADS), p=LEAD_ODDS[odds]))]
    plan = "none"
    if kind == "none":
        audio = np.zeros(0, dtype=np.float32)
    elif kind == "silence":
        audio = synth.silence(rng.uniform(0.5, LEAD_S[1]))
    else:
        if kind == "ringback":
            plan = tuple(PLANS)[int(rng.integers(len(PLANS)))]
            audio = _ringback(plan, rng.uniform(*LEAD_S), rng)
        else:
            audio = corpus._music_ringback(*LEAD_S, rng)
        audio = np.concatenate([audio, synth.silence(rng.uniform(0.0, 0.4))])  # it stops, then
    return audio, {"lead": kind, "plan": plan, "lead_s": round(len(audio) / SAMPLE_RATE, 3)}


def _sit_code(subtype: str) -> str | None:
    return None if subtype == "plain" else subtype


def sit_label(subtype: str) -> str:
    """What a SIT of *subtype* alone means (``SIT_SUBTYPE_LABELS``)."""
    return SIT_SUBTYPE_LABELS[_sit_code(subtype)][0]


def real_sit_pairing(label: str) -> tuple[str, ...]:
    """The SITs a switch plays before *label*'s announcement (Telcordia's SIT codes, as
    ``corpus.SIT_CODES_FOR`` pairs them)."""
    codes = corpus.SIT_CODES_FOR.get(label)
    return tuple("plain" if code is None else code for code in codes) if codes else GENERIC_SIT


def _sit(subtype: str, rng: np.random.Generator) -> np.ndarray:
    return synth.sit(
        _sit_code(subtype), freq_scale=1 + rng.uniform(-0.005, 0.005), amplitude=rng.uniform(0.1, 0.3)
    )


def _beep(rng: np.random.Generator) -> np.ndarray:
    return synth.tone((rng.uniform(700, 1500),), rng.uniform(0.3, 0.8), amplitude=0.3)


def _variants(descriptions: list[str]) -> str:
    """The espeak-ng variants of voice descriptions ("gmw/en+f4/s150/p40" -> "f4"): few
    enough values for ``evaluate --by voice``."""
    specs = [re.sub(r"/s\d+/p\d+(/w\d+)?$", "", d) for d in descriptions if d]
    return ";".join(sorted({spec.partition("+")[2] or spec for spec in specs}))


def _synthetic_announcement(label: str, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """One play of *label*'s announcement in held-out voices (``corpus._announcement``),
    from its first word to its last: the SIT and the busy tone it may add are left out,
    as this set places its own."""
    parts, meta = corpus._announcement(label, rng, heldout=True)
    kinds = [kind for _, kind in parts]
    first, last = kinds.index("speech"), len(kinds) - 1 - kinds[::-1].index("speech")
    unit = np.concatenate([samples for samples, _ in parts[first : last + 1]])
    texts = meta["texts"].split("|")
    english_only = len(texts) == 2
    voices = meta["voice"].split(";")
    spoken = voices[1:] if english_only else voices
    return unit, {
        "voice": _variants(spoken),
        "voice_detail": ";".join(spoken),
        "lang": "en" if english_only else "zh+en",
        "text": meta["texts"],
    }


def _synthetic_answer(label: str, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A held-out voice answering (human) or greeting with its beep (voicemail), and the
    silence after: ``corpus.make_clip`` without a lead-in."""
    clip, meta = corpus.make_clip(label, rng, heldout=True, lead="none")
    voices = meta["voice"].split(";")
    return clip, {
        "voice": _variants(voices),
        "voice_detail": meta["voice"],
        "lang": "zh" if voices[0].startswith(tts.ZH_VOICE) else "en",
        "text": meta["text"],
    }


def _real_facts(voice: str, prompt: str) -> dict:
    path = recording_path(voice, prompt) if prompt != GREETING else None
    return {
        "voice": voice,
        "voice_detail": voice,
        "lang": REAL_VOICES[voice].lang,
        "prompt": prompt,
        "package": REAL_VOICES[voice].package,
        "recording": str(path.relative_to(SOUNDS)) if path else f"{voice}/{prompt}",
    }


def _greeting(voice: str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A voicemail greeting as Asterisk plays it: "the person at extension" 1-2-3-4 "is
    unavailable" (or "is on the phone") "please leave your message after the tone"."""
    digits = [f"digits/{d}" for d in rng.integers(0, 10, size=int(rng.integers(3, 5)))]
    names = ["vm-theperson", *digits, ("vm-isunavail", "vm-isonphone")[int(rng.integers(2))], "vm-intro"]
    pieces = []
    for i, name in enumerate(names):
        if i:
            short = name.startswith("digits/") and names[i - 1].startswith("digits/")
            pieces.append(synth.silence(rng.uniform(0.03, 0.12) if short else rng.uniform(0.1, 0.3)))
        pieces.append(_trimmed(read_recording(voice, name)))
    return np.concatenate(pieces), "+".join(n if not n.startswith("digits/") else n[7:] for n in names)


def _answer_tail(label: str, unit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """*unit* and what follows it in an answer: the open line after a person's words, the
    beep after a greeting (as ``corpus.make_clip`` has them)."""
    if label == "voicemail":
        return np.concatenate(
            [unit, synth.silence(rng.uniform(0.2, 0.6)), _beep(rng), synth.silence(rng.uniform(0.5, 2.0))]
        )
    return np.concatenate([unit, synth.silence(rng.uniform(1.0, 4.0))])


def _off_plan_hz(rng: np.random.Generator, avoid: tuple[float, ...]) -> float:
    while True:
        f = float(rng.uniform(300.0, 3400.0))
        if all(abs(f - a) > OFF_PLAN_MARGIN * a for a in avoid):
            return f


def _negative(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """3-10 s of something that is no plan's call-progress tone (``NEGATIVE_KINDS``)."""
    seconds = rng.uniform(3.0, 10.0)
    amplitude = rng.uniform(0.05, 0.3)
    if kind == "tone":
        freqs: tuple[float, ...] = (_off_plan_hz(rng, MEANINGFUL_STEADY_HZ),)
    elif kind == "dual":
        first = _off_plan_hz(rng, MEANINGFUL_STEADY_HZ)
        freqs = (first, _off_plan_hz(rng, (*MEANINGFUL_STEADY_HZ, first)))
    elif kind == "dial":
        choices = ((425.0,), (450.0,), (350.0, 440.0))
        freqs = tuple(f * (1 + rng.uniform(-0.01, 0.01)) for f in choices[int(rng.integers(len(choices)))])
    elif kind == "cadenced":
        every_plan_hz = tuple(sorted({f for s in TONE_SPECS for f in s.freqs_hz}))
        freqs = (_off_plan_hz(rng, every_plan_hz),)
        cadence = (float(rng.uniform(0.1, 2.5)), float(rng.uniform(0.1, 4.0)))
        spec = ToneSpec("none", "off_plan", freqs, cadence, "unknown", ())
        audio = synth.cadenced(
            spec, seconds, start_offset_s=rng.uniform(0, sum(cadence)), amplitude=amplitude
        )
        return audio, {"text": f"{freqs[0]:.0f} Hz {cadence[0]:.2f}/{cadence[1]:.2f} s"}
    elif kind in ("white", "pink"):
        n = int(seconds * SAMPLE_RATE)
        noise = rng.standard_normal(n) if kind == "white" else channel.pink_noise(n, rng)
        level = rng.uniform(0.01, 0.1)
        return (level * noise / (noise.std() + 1e-12)).astype(np.float32), {"text": f"rms {level:.3f}"}
    elif kind == "music":
        return corpus._music_ringback(3.0, 10.0, rng), {}
    else:
        raise ValueError(f"unknown negative {kind!r}")
    audio = synth.tone(freqs, seconds, amplitude=amplitude)
    return audio, {"text": "+".join(f"{f:.0f}" for f in freqs) + " Hz"}


# --- the line ------------------------------------------------------------------------------


@cache
def _babble(index: int) -> np.ndarray:
    """Held-out babble bed *index* (``corpus._babble_bed``; made once per process)."""
    return corpus._babble_bed(True, index)


def amr_nb(x: np.ndarray, mode: int) -> np.ndarray:
    """*x* through AMR-NB at *mode* (``recode.AMR_MODES_KBPS``), same length."""
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        sf.write(source, x, SAMPLE_RATE, subtype="PCM_16")
        recode.amr_round_trip(source, target, mode)
        y, _ = sf.read(target, dtype="float32")
    out = np.zeros_like(x)
    out[: min(len(x), len(y))] = y[: len(x)]
    return out


def line(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """*x* through a telephone line: band-pass (or not), noise (or none) after it, gain,
    then a codec round trip; the choices as manifest columns. Nothing is done after the
    codec, so a G.711 clip has at most 256 sample values."""
    sos = channel._bandpass_sos(rng)
    bandpass = bool(rng.random() < BANDPASS_SHARE)
    noise = NOISES[int(rng.integers(len(NOISES)))]
    snr = float(rng.uniform(*SNR_DB))
    gain_db = float(rng.uniform(*GAIN_DB))
    codec = CODECS[int(rng.integers(len(CODECS)))]
    mode = int(rng.integers(len(recode.AMR_MODES_KBPS)))
    y = sps.sosfilt(sos, x).astype(np.float32) if bandpass else x.astype(np.float32)
    if noise != "none":
        active = y[np.abs(y) > 0.02 * (np.abs(y).max(initial=0.0) + 1e-9)]
        power = float(np.mean(active**2)) if len(active) else 1e-6
        if noise == "white":
            bed = rng.standard_normal(len(y)).astype(np.float32)
        elif noise == "pink":
            bed = channel.pink_noise(len(y), rng)
        else:
            babble = _babble(int(rng.integers(corpus.BABBLE_BEDS)))
            start = int(rng.integers(0, max(1, len(babble) - len(y))))
            bed = np.resize(babble[start:], len(y))
            bed = bed / (bed.std() + 1e-9)
        y = y + bed * np.float32(np.sqrt(power / 10 ** (snr / 10)))
    y = np.clip(y * 10 ** (gain_db / 20), -1.0, 1.0).astype(np.float32)
    if codec in ("mulaw", "alaw"):
        y = g711.round_trip(y, codec)
    elif codec == "gsm":
        y = channel.gsm_round_trip(y)
    elif codec == "amr-nb":
        y = amr_nb(y, mode)
    return y.astype(np.float32), {
        "codec": codec,
        "amr_kbps": recode.AMR_MODES_KBPS[mode] if codec == "amr-nb" else "",
        "bandpass": "yes" if bandpass else "no",
        "noise": noise,
        "snr_db": round(snr, 1) if noise != "none" else "",
        "gain_db": round(gain_db, 1),
    }


# --- clips ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One clip to make: everything chosen before its generator draws the rest."""

    out: str
    group: str
    name: str
    seed: int
    label: str
    content: str
    """announcement, human, voicemail, greeting, sit, ringback, music or a negative kind."""
    source: str = "none"
    """synthetic, real or none (tones, music)."""
    voice: str = ""
    prompt: str = ""
    subtype: str = ""
    """The SIT of a ``sit_alone`` clip."""
    plan: str = ""
    """The plan of a ringback clip."""
    spoken: tuple | None = None
    """A synthetic prompt as enrolled: (language, text, espeak-ng voice, variant, speed,
    pitch); see ``_enrol_voice``."""
    enrolled: int | None = None


def _enrol_voice(spoken: tuple) -> tts.Voice:
    lang, _, name, variant, speed, pitch = spoken
    return tts.Voice(lang, name, variant, speed, pitch)


def _speech(job: Job, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """The speech of a clip and its facts: an announcement once (``_body`` repeats it), an
    answer with what follows it (the open line, or the beep)."""
    facts: dict = {}
    if job.spoken is not None:  # an enrolled synthetic prompt, as enrolled
        voice = _enrol_voice(job.spoken)
        unit = tts.speak(job.spoken[1], voice)
        facts = {
            "voice": _variants([voice.describe()]),
            "voice_detail": voice.describe(),
            "lang": voice.language,
            "text": job.spoken[1],
            "prompt": job.prompt,
        }
        if job.label in ("human", "voicemail"):
            unit = _answer_tail(job.label, unit, rng)
    elif job.source == "synthetic":
        if job.label in ("human", "voicemail"):
            unit, facts = _synthetic_answer(job.label, rng)
        else:
            unit, facts = _synthetic_announcement(job.label, rng)
    elif job.content == GREETING:
        unit, names = _greeting(job.voice, rng)
        facts = {**_real_facts(job.voice, GREETING), "text": names}
        unit = _answer_tail("voicemail", unit, rng)
    else:
        unit = _trimmed(read_recording(job.voice, job.prompt))
        facts = _real_facts(job.voice, job.prompt)
        if job.label in ("human", "voicemail"):
            unit = _answer_tail(job.label, unit, rng)
    return unit, facts


def _body(job: Job, rng: np.random.Generator) -> tuple[list[np.ndarray], int, dict]:
    """The clip before the line: its pieces, the index of the piece where the onset is, facts."""
    if job.content in NEGATIVE_KINDS:
        audio, facts = _negative(job.content, rng)
        return [audio], 0, facts
    if job.content == "ringback":
        return [_ringback(job.plan, rng.uniform(4.0, 14.0), rng)], 0, {"plan": job.plan}
    if job.content == "music":
        return [corpus._music_ringback(4.0, 14.0, rng)], 0, {}
    if job.content == "sit":
        lead, facts = _lead("sit", rng)
        ends = bool(rng.random() < 0.3)
        tail = np.zeros(0, np.float32) if ends else synth.silence(rng.uniform(0.5, 4.0))
        facts.update(sit=job.subtype, sit_pairing="none", tail="end" if ends else "silence")
        return [lead, _sit(job.subtype, rng), tail], 1, facts
    unit, facts = _speech(job, rng)
    announcement = job.label in ANNOUNCEMENT_LABELS
    lead, lead_facts = _lead("announcement" if announcement else "answer", rng)
    facts.update(lead_facts)
    pieces = [lead]
    facts.update(sit="none", sit_pairing="none", repeat=1, tail="silence")
    if announcement:
        if rng.random() < SIT_SHARE:
            real = bool(rng.random() < 0.5)
            choices = real_sit_pairing(job.label) if real else SIT_SUBTYPES
            subtype = choices[int(rng.integers(len(choices)))]
            pieces += [_sit(subtype, rng), synth.silence(rng.uniform(0.1, 0.5))]
            facts.update(sit=subtype, sit_pairing="real" if real else "random")
        onset = len(pieces)
        repeat = 1 + int(rng.random() < 0.5)
        pieces.append(unit)
        if repeat == 2:
            pieces += [synth.silence(rng.uniform(0.5, 2.0)), unit]
        pieces.append(synth.silence(rng.uniform(0.2, 1.5)))
        facts["repeat"] = repeat
        return pieces, onset, facts
    pieces.append(unit)
    return pieces, len(pieces) - 1, facts


def make(job: Job) -> dict:
    """Make one clip through the line, write it and return its manifest row."""
    rng = np.random.default_rng(job.seed)
    pieces, onset_piece, facts = _body(job, rng)
    clean = np.concatenate(pieces).astype(np.float32)
    onset = sum(len(p) for p in pieces[:onset_piece]) / SAMPLE_RATE
    noisy, chan = line(clean, rng)
    path = Path(job.out) / job.group / f"{job.name}.wav"
    corpus._write_wav(path, noisy)
    row = {
        "path": f"{job.group}/{job.name}.wav",
        "label": job.label,
        "group": job.group,
        "source": job.source,
        "content": job.content,
        "voice": "none",
        "lang": "none",
        "prompt": job.prompt or "none",
        "recording": "none",
        "package": "none",
        "lead": "none",
        "plan": "none",
        "lead_s": 0.0,
        "sit": "none",
        "sit_pairing": "none",
        "repeat": 1,
        "tail": "none",
        "onset_s": round(onset, 3),
        "duration_s": round(len(noisy) / SAMPLE_RATE, 3),
        "reachable": int(LABELS[job.label].number_state == "reachable"),
        "seed": job.seed,
        "text": "",
        "voice_detail": "",
        **facts,
        **chan,
    }
    if job.enrolled is not None:
        row["enrolled"] = job.enrolled
    return row


# --- planning ------------------------------------------------------------------------------


DRAW_STRIDE = 1_000_000_000
"""Seeds of draw *d* are those of draw 0 plus *d* times this (above every group's range)."""


def _seed(group: str, label_index: int, index: int, draw: int = 0) -> int:
    return SEED + draw * DRAW_STRIDE + GROUP_CODES[group] * 100_000_000 + label_index * 100_000 + index


def plan_announcements(out: str, per_label: int, draw: int = 0) -> list[Job]:
    """*per_label* clips of every announcement label; where real prompts say the label,
    every third clip (the first among them) is real, voice after voice."""
    jobs = []
    for li, label in enumerate(ANNOUNCEMENT_LABELS):
        real = _real_by_label(label)
        for i in range(per_label):
            common = {
                "out": out,
                "group": "announcement",
                "name": f"{label}_{i:04d}",
                "seed": _seed("announcement", li, i, draw),
            }
            if real and i % 3 == 0:
                voice, prompt = real[(i // 3) % len(real)]
                jobs.append(
                    Job(
                        **common,
                        label=label,
                        content="announcement",
                        source="real",
                        voice=voice,
                        prompt=prompt,
                    )
                )
            else:
                jobs.append(Job(**common, label=label, content="announcement", source="synthetic"))
    return jobs


def plan_sit_alone(out: str, per_subtype: int, draw: int = 0) -> list[Job]:
    return [
        Job(
            out,
            "sit_alone",
            f"{subtype}_{i:04d}",
            _seed("sit_alone", si, i, draw),
            sit_label(subtype),
            "sit",
            subtype=subtype,
        )
        for si, subtype in enumerate(SIT_SUBTYPES)
        for i in range(per_subtype)
    ]


def plan_reachable(out: str, count: int, draw: int = 0) -> list[Job]:
    """*count* reachable clips, ``REACHABLE_CYCLE`` round and round: ringback of each plan
    in turn, music ringback, answers in the synthetic voices and the real ones (voice after
    voice, prompt after prompt)."""
    jobs = []
    plans = tuple(PLANS)
    real = {label: _real_by_label(label) for label in ("human", "voicemail")}
    turns = {"ringback": 0, "human": 0, "voicemail": 0, GREETING: 0}
    for i in range(count):
        label, source = REACHABLE_CYCLE[i % len(REACHABLE_CYCLE)]
        common = {
            "out": out,
            "group": "reachable",
            "name": f"{i:05d}_{label}",
            "seed": _seed("reachable", 0, i, draw),
        }
        if label == "ringback":
            plan = plans[turns["ringback"] % len(plans)]
            turns["ringback"] += 1
            jobs.append(Job(**common, label=label, content="ringback", plan=plan))
        elif label == "color_ringback":
            jobs.append(Job(**common, label=label, content="music"))
        elif source == GREETING:
            voice = tuple(REAL_VOICES)[turns[GREETING] % len(REAL_VOICES)]
            turns[GREETING] += 1
            jobs.append(Job(**common, label=label, content=GREETING, source="real", voice=voice))
        elif source == "real":
            voice, prompt = real[label][turns[label] % len(real[label])]
            turns[label] += 1
            jobs.append(Job(**common, label=label, content=label, source="real", voice=voice, prompt=prompt))
        else:
            jobs.append(Job(**common, label=label, content=label, source="synthetic"))
    return jobs


def plan_negatives(out: str, count: int, draw: int = 0) -> list[Job]:
    jobs = []
    for i in range(count):
        kind = NEGATIVE_KINDS[i % len(NEGATIVE_KINDS)]
        label = "color_ringback" if kind == "music" else "unknown"
        jobs.append(Job(out, "negative", f"{i:05d}_{kind}", _seed("negative", 0, i, draw), label, kind))
    return jobs


@dataclass(frozen=True)
class Prompt:
    """A prompt that may be enrolled: a real recording or a synthetic sentence."""

    key: str
    label: str
    voice: str = ""
    prompt: str = ""
    spoken: tuple | None = None


def _family(name: str) -> str:
    return next((family[0] for family in SAME_WORDS if name in family), name)


def enrol_plan() -> tuple[list[Prompt], list[Prompt]]:
    """The prompts to enrol and those kept out. Real: of each voice's prompts (in
    ``REAL_PROMPTS`` order, prompts that say the same words as one, ``SAME_WORDS``), every
    third is kept out, starting at a different one per voice (so ss-noservice is enrolled
    for four voices and kept out for two). Synthetic: ``SYNTHETIC_ENROLLED`` sentences per
    label in held-out voices (``ENROL_PITCH``)."""
    enrol, kept_out = [], []
    for vi, voice in enumerate(REAL_VOICES):
        mine = [(name, label) for v, name, label in real_prompts() if v == voice]
        families = list(dict.fromkeys(_family(name) for name, _ in mine))
        for name, label in mine:
            prompt = Prompt(f"{voice}/{name}", label, voice=voice, prompt=name)
            (kept_out if (families.index(_family(name)) + vi) % 3 == 0 else enrol).append(prompt)
    kept_out = _voice_by_voice(kept_out, lambda prompt: prompt.voice)
    phrases = corpus.load_prompts()
    for li, label in enumerate((*ANNOUNCEMENT_LABELS, "human", "voicemail")):
        texts = phrases["announcements"][label] if label in ANNOUNCEMENT_LABELS else phrases[label]
        for k in range(SYNTHETIC_ENROLLED):
            rng = np.random.default_rng([SEED, 7, li, k])
            lang = ("zh", "en")[k % 2]
            name = tts.ZH_VOICE if lang == "zh" else tts.EN_VOICES[int(rng.integers(len(tts.EN_VOICES)))]
            variant = tts.HELDOUT_VARIANTS[int(rng.integers(len(tts.HELDOUT_VARIANTS)))]
            text = texts[lang][int(rng.integers(len(texts[lang])))]
            spoken = (lang, text, name, variant, int(rng.integers(125, 190)), int(rng.integers(*ENROL_PITCH)))
            enrol.append(Prompt(f"tts/{label}-{k}", label, spoken=spoken))
    return enrol, kept_out


def _clean(prompt: Prompt) -> np.ndarray:
    if prompt.spoken is not None:
        return tts.speak(prompt.spoken[1], _enrol_voice(prompt.spoken))
    return read_recording(prompt.voice, prompt.prompt)


def write_enrol_file(task: tuple[str, Prompt]) -> tuple[str, int]:
    """Write *prompt*'s clean recording under ``OUT/enrol/``; return its path (relative to
    OUT) and its fingerprint landmarks (too few and it cannot be enrolled)."""
    from audio_classifier.fingerprint import FingerprintConfig, landmarks

    out, prompt = task
    audio = _clean(prompt)
    relative = f"enrol/{prompt.key.replace('/', '_')}.wav"
    corpus._write_wav(Path(out) / relative, audio)
    hashes, _ = landmarks(audio, FingerprintConfig())
    return relative, len(hashes)


def _enrol_row(prompt: Prompt, path: str) -> dict:
    if prompt.spoken is not None:
        lang, text = prompt.spoken[0], prompt.spoken[1]
        voice = _enrol_voice(prompt.spoken).describe()
        return {
            "path": path,
            "label": prompt.label,
            "carrier": "callshape synthetic",
            "note": f"{prompt.key}: {text} ({voice})",
            "lang": lang,
        }
    real = REAL_VOICES[prompt.voice]
    return {
        "path": path,
        "label": prompt.label,
        "carrier": f"asterisk {prompt.voice}",
        "note": f"{prompt.key} ({real.package}, {real.licence})",
        "lang": real.lang,
    }


def _prompt_job(out: str, group: str, name: str, seed: int, prompt: Prompt, enrolled: int) -> Job:
    content = "announcement" if prompt.label in ANNOUNCEMENT_LABELS else prompt.label
    if prompt.spoken is not None:
        source, where = "synthetic", {"prompt": prompt.key, "spoken": prompt.spoken}
    else:
        source, where = "real", {"voice": prompt.voice, "prompt": prompt.prompt}
    return Job(out, group, name, seed, prompt.label, content, source, enrolled=enrolled, **where)


def plan_enrolled(
    out: str, enrolled: list[Prompt], copies: int, only: int | None = None, draw: int = 0
) -> list[Job]:
    """*copies* call-shaped clips of each enrolled prompt (of *only* of them, spread over
    the list, when given)."""
    chosen = (
        range(len(enrolled))
        if only is None
        else sorted({round(k * len(enrolled) / only) % len(enrolled) for k in range(only)})
    )
    return [
        _prompt_job(
            out,
            "enrolled",
            f"{pi:04d}_{c}_{enrolled[pi].label}",
            _seed("enrolled", pi, c, draw),
            enrolled[pi],
            1,
        )
        for pi in chosen
        for c in range(copies)
    ]


def plan_nonenrolled(out: str, kept_out: list[Prompt], count: int, draw: int = 0) -> list[Job]:
    """*count* clips whose speech is not enrolled (``NONENROLLED_CYCLE``): the kept-out real
    prompts in turn, synthetic speech of every label in turn, music ringback, ringback."""
    jobs = []
    turns = {"real": 0, "announcement": 0, "ringback": 0}
    for i in range(count):
        kind = NONENROLLED_CYCLE[i % len(NONENROLLED_CYCLE)]
        seed = _seed("nonenrolled", 0, i, draw)
        if kind == "real" and kept_out:
            prompt = kept_out[turns["real"] % len(kept_out)]
            turns["real"] += 1
            jobs.append(_prompt_job(out, "nonenrolled", f"{i:05d}_{prompt.label}", seed, prompt, 0))
            continue
        if kind in ("real", "announcement"):
            label = ANNOUNCEMENT_LABELS[turns["announcement"] % len(ANNOUNCEMENT_LABELS)]
            turns["announcement"] += 1
            job = Job(
                out, "nonenrolled", f"{i:05d}_{label}", seed, label, "announcement", "synthetic", enrolled=0
            )
        elif kind in ("human", "voicemail"):
            job = Job(out, "nonenrolled", f"{i:05d}_{kind}", seed, kind, kind, "synthetic", enrolled=0)
        elif kind == "music":
            job = Job(
                out, "nonenrolled", f"{i:05d}_color_ringback", seed, "color_ringback", "music", enrolled=0
            )
        else:
            plan = tuple(PLANS)[turns["ringback"] % len(PLANS)]
            turns["ringback"] += 1
            job = Job(
                out, "nonenrolled", f"{i:05d}_ringback", seed, "ringback", "ringback", plan=plan, enrolled=0
            )
        jobs.append(job)
    return jobs


# --- the build -----------------------------------------------------------------------------


def check_tools() -> None:
    """Fail early, naming the Debian package, when a tool or a voice is missing."""
    for tool, package in (("espeak-ng", "espeak-ng"), ("sox", "sox libsox-fmt-all")):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (apt-get install {package})")
    if not recode.has_amr_nb():
        raise RuntimeError("this sox cannot write AMR-NB (apt-get install libsox-fmt-all)")
    try:
        import pypinyin  # noqa: F401  (the held-out Mandarin voices read pinyin)
    except ImportError:
        raise RuntimeError("pypinyin is not installed (pip install -e '.[train]')") from None
    missing = sorted({v.package for name, v in REAL_VOICES.items() if not (SOUNDS / name).is_dir()})
    if missing:
        raise RuntimeError(f"real voices missing from {SOUNDS} (apt-get install {' '.join(missing)})")


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def build(
    out: Path,
    *,
    per_label: int,
    reachable: int,
    negatives: int,
    jobs: int,
    enrolled: bool = False,
    copies: int = DEFAULT_SIZES["copies"],
    nonenrolled: int = DEFAULT_SIZES["nonenrolled"],
    tiny: bool = False,
    progress: bool = True,
    draw: int = 0,
) -> dict[str, list[dict]]:
    """Write the set into *out*; return the rows of each manifest written (by file name).
    *draw* picks another random draw of the same plan (other shapes, noises, codecs and
    wordings; the same prompts enrolled): one draw to tune or fit on, another to report."""
    if min(per_label, reachable, negatives, copies, nonenrolled) < 0:
        raise ValueError("sizes must not be negative")
    check_tools()
    folder = str(out)
    plain = [
        *plan_announcements(folder, per_label, draw),
        *plan_sit_alone(folder, max(1, per_label // 2) if per_label else 0, draw),
        *plan_reachable(folder, reachable, draw),
        *plan_negatives(folder, negatives, draw),
    ]
    extra: list[Job] = []
    enrol_rows: list[dict] = []
    if enrolled:
        to_enrol, kept_out = enrol_plan()
        (out / "enrol").mkdir(parents=True, exist_ok=True)
        made = map_in_order(
            write_enrol_file,
            [(folder, p) for p in to_enrol],
            jobs,
            desc="enrol",
            unit="prompt",
            chunksize=4,
            progress=progress,
        )
        from audio_classifier.samples import MIN_VOTES

        usable = []
        for prompt, (path, count) in zip(to_enrol, made, strict=True):
            if count >= MIN_VOTES:
                usable.append(prompt)
                enrol_rows.append(_enrol_row(prompt, path))
            else:  # too little to fingerprint: it can only be a non-enrolled prompt
                (out / path).unlink()
                kept_out.append(prompt)
        extra = [
            *plan_enrolled(folder, usable, copies, TINY_ENROLLED_COPIES if tiny else None, draw),
            *plan_nonenrolled(folder, kept_out, nonenrolled, draw),
        ]
    for group in {job.group for job in [*plain, *extra]}:
        (out / group).mkdir(parents=True, exist_ok=True)
    rows = map_in_order(
        make, [*plain, *extra], jobs, desc="call shapes", unit="clip", chunksize=4, progress=progress
    )
    written = {"manifest.csv": rows[: len(plain)]}
    _write_csv(out / "manifest.csv", written["manifest.csv"], COLUMNS)
    if enrolled:
        _write_csv(out / "enrol.csv", enrol_rows, ENROL_COLUMNS)
        written["enrol.csv"] = enrol_rows
        for name, group in (("enrolled.csv", "enrolled"), ("nonenrolled.csv", "nonenrolled")):
            written[name] = [row for row in rows[len(plain) :] if row["group"] == group]
            _write_csv(out / name, written[name], [*COLUMNS, "enrolled"])
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the clips and manifests (e.g. work/callshape)")
    sizes = DEFAULT_SIZES
    parser.add_argument(
        "--per-label",
        type=int,
        help=f"clips per announcement label (default {sizes['per_label']}; SIT alone: half as many per subtype)",
    )
    parser.add_argument("--reachable", type=int, help=f"reachable clips (default {sizes['reachable']})")
    parser.add_argument("--negatives", type=int, help=f"negative clips (default {sizes['negatives']})")
    parser.add_argument(
        "--enrolled", action="store_true", help="also enrol.csv, enrolled.csv and nonenrolled.csv"
    )
    parser.add_argument(
        "--copies", type=int, help=f"call-shaped copies per enrolled prompt (default {sizes['copies']})"
    )
    parser.add_argument(
        "--nonenrolled", type=int, help=f"non-enrolled clips (default {sizes['nonenrolled']})"
    )
    parser.add_argument(
        "--tiny", action="store_true", help="a few clips per group (tests); explicit sizes still win"
    )
    parser.add_argument(
        "--draw",
        type=int,
        default=0,
        help="which random draw of the plan (default 0): tune on one draw, report on another",
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.draw < 0:
        parser.error("--draw must not be negative")
    base = TINY_SIZES if args.tiny else DEFAULT_SIZES
    chosen = {key: getattr(args, key) if getattr(args, key) is not None else base[key] for key in base}
    started = time.monotonic()
    try:
        written = build(
            args.out,
            jobs=args.jobs,
            enrolled=args.enrolled,
            tiny=args.tiny,
            progress=not args.no_progress,
            draw=args.draw,
            **chosen,
        )
    except ValueError as error:
        parser.error(str(error))
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    for name, rows in written.items():
        groups: dict[str, int] = {}
        for row in rows:
            groups[row.get("group", "enrol")] = groups.get(row.get("group", "enrol"), 0) + 1
        print(f"{args.out / name}: {len(rows)} rows ({', '.join(f'{g} {n}' for g, n in groups.items())})")
    print(f"{time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
