"""The evidence-channel interface every analysis stage implements.

A :class:`ChannelFactory` holds what is loaded once per process (models, libraries) and is
shared by all sessions; ``open()`` gives a :class:`ChannelStream` that holds one call's
state. Streams receive float32 mono audio at ``audio.SAMPLE_RATE`` in order.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from .evidence import Evidence
from .tones import ToneDetector


class ChannelStream(Protocol):
    """One call's analysis state for one channel."""

    name: str

    def process(self, samples: np.ndarray, start_sample: int) -> list[Evidence]:
        """Analyse the next samples, which begin at absolute index *start_sample*."""
        ...

    def finish(self) -> list[Evidence]:
        """The stream ended: return any evidence that needed the whole call."""
        ...


class ChannelFactory(Protocol):
    """Process-wide, thread-safe holder of a channel's shared resources."""

    name: str

    def open(self) -> ChannelStream:
        """A new stream for one call."""
        ...


class ToneChannel:
    """Factory of the DSP tone channel (it has no shared resources)."""

    name = "tone"

    def open(self) -> ToneDetector:
        return ToneDetector()
