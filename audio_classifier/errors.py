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
    """Decoded samples that are not finite numbers (NaN or infinity) or far beyond full scale."""


class SessionClosedError(AudioClassifierError, RuntimeError):
    """Audio was fed to a session after ``close()``."""


class ConfigError(AudioClassifierError, ValueError):
    """An option value outside its allowed range."""


class ModelError(AudioClassifierError, RuntimeError):
    """A model file is missing, corrupt or does not match its model card."""


class UsageError(AudioClassifierError, ValueError):
    """A batch or evaluation was asked for something impossible (a bad manifest, an output
    that is not this program's, settings that differ from the run being resumed)."""


class OutputError(AudioClassifierError, OSError):
    """Records cannot be written any more (a full disk, a device that refuses them): the
    records already written are kept and the same command resumes."""
