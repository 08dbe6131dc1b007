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

STRONGEST = "strongest"
"""Claim policy of detectors: a claim, once made, stands at its strongest (a busy tone that
was heard stays heard)."""

LATEST_PER_TIER = "latest_per_tier"
"""Claim policy of channels that report a running belief (the model): each new claim
replaces the channel's previous claim of the same tier, so an early guess does not outlive
what the channel concluded later. One claim per tier survives, so an announcement is not
forgotten when the silence or busy tone after it arrives."""


class ChannelStream(Protocol):
    """One call's analysis state for one channel.

    ``claims`` (optional, default ``STRONGEST``) tells the session how to keep the
    channel's evidence over time.
    """

    name: str

    def process(self, samples: np.ndarray, start_sample: int) -> list[Evidence]:
        """Analyse the next samples, which begin at absolute index *start_sample*."""
        ...

    def finish(self) -> list[Evidence]:
        """The stream ended: return any evidence that needed the whole call."""
        ...


class ChannelFactory(Protocol):
    """Process-wide, thread-safe holder of a channel's shared resources.

    ``evidence_grid`` (optional) is ``(first, step)`` in samples when the channel's
    evidence arrives on a fixed grid (the model's windows end at ``first + k * step``): the
    session then ends its analysis blocks on that grid, so nothing waits for a block to fill.
    """

    name: str

    def open(self) -> ChannelStream:
        """A new stream for one call."""
        ...


class ToneChannel:
    """Factory of the DSP tone channel (it has no shared resources)."""

    name = "tone"

    def open(self) -> ToneDetector:
        return ToneDetector()
