"""Offline classifier of telephone early media: carrier announcements, call-progress tones,
SIT, music ringback, answer types.

>>> from audio_classifier import Classifier
>>> decision = Classifier().classify_file("call.wav")  # doctest: +SKIP
>>> decision.label, decision.confidence, decision.action  # doctest: +SKIP
"""

from .audio import ENCODINGS, SAMPLE_RATE
from .channels.signalling import Hints
from .classifier import Classifier
from .config import ClassifierConfig, DecisionConfig, FusionConfig
from .errors import (
    AudioClassifierError,
    AudioInputError,
    ConfigError,
    EmptyAudioError,
    InvalidSamplesError,
    ModelError,
    OutputError,
    SessionClosedError,
    UnreadableAudioError,
    UnsupportedEncodingError,
    UsageError,
)
from .evidence import Decision, Evidence
from .labels import LABEL_IDS, LABELS, Label
from .session import Session

__version__ = "0.1.0"

__all__ = [
    "ENCODINGS",
    "LABELS",
    "LABEL_IDS",
    "SAMPLE_RATE",
    "AudioClassifierError",
    "AudioInputError",
    "Classifier",
    "ClassifierConfig",
    "ConfigError",
    "Decision",
    "DecisionConfig",
    "EmptyAudioError",
    "Evidence",
    "FusionConfig",
    "Hints",
    "InvalidSamplesError",
    "Label",
    "ModelError",
    "OutputError",
    "Session",
    "SessionClosedError",
    "UnreadableAudioError",
    "UnsupportedEncodingError",
    "UsageError",
    "__version__",
]
