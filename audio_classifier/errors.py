"""One exception hierarchy for everything the classifier raises on purpose.

Every message says what was wrong and, where there is a choice, what is allowed.
"""

from __future__ import annotations


class AudioClassifierError(Exception):
    """Base class of every error this package raises deliberately."""


class AudioInputError(AudioClassifierError, ValueError):
    """The audio given to the classifier cannot be analysed."""


class EmptyAudioError(AudioInputError):
    """The input holds no audio samples (empty file, zero frames, empty stream)."""


class UnreadableAudioError(AudioInputError):
    """The file is missing, not audio, truncated or otherwise undecodable."""


class UnsupportedEncodingError(AudioInputError):
    """An encoding, sample rate or channel layout that the classifier does not take."""


class InvalidSamplesError(AudioInputError):
    """Decoded samples that are not finite numbers (NaN or infinity)."""


class SessionClosedError(AudioClassifierError, RuntimeError):
    """Audio was fed to a session after ``close()``."""


class ConfigError(AudioClassifierError, ValueError):
    """An option value outside its allowed range."""


class ModelError(AudioClassifierError, RuntimeError):
    """A model file is missing, corrupt or does not match its model card."""
