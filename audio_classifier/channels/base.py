"""The evidence-channel contract every analysis stage implements.

A :class:`ChannelFactory` holds what is loaded once per process (models, libraries) and is
shared by all sessions; ``open()`` gives a :class:`ChannelStream` that holds one call's
state. Streams receive float32 mono audio at ``audio.SAMPLE_RATE`` in order.

Each channel declares what it is in a :class:`ChannelInfo`; the decision model and the
server read those facts and never ask a channel by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from ..evidence import Evidence

STRONGEST = "strongest"
"""Claim policy of detectors: a claim, once made, stands at its strongest (a busy tone that
was heard stays heard); an equal claim with a later end extends its span."""

LATEST_PER_TIER = "latest_per_tier"
"""Claim policy of channels that report a running belief (the model): each new claim
replaces the channel's previous claim of the same tier, so an early guess does not outlive
what the channel concluded later. One claim per tier survives, so an announcement is not
forgotten when the silence or busy tone after it arrives."""

ClaimPolicy = Literal["strongest", "latest_per_tier"]
CostClass = Literal["light", "heavy"]


@dataclass(frozen=True)
class ChannelInfo:
    """What a channel is, as the decision model and the server need to know it."""

    name: str
    """The ``Evidence.channel`` of its claims."""

    exact_labels: frozenset[str] = frozenset()
    """Labels it measures exactly (frequencies and cadence). Another channel's claim of one
    of them is not independent evidence: when this channel claims the label too, the label
    counts once; when it does not, the claim counts for at most ``outcome_floor`` and cannot
    end the progress phase (``decision._exact``)."""

    gapped_labels: frozenset[str] = frozenset()
    """Cadenced progress tones it recognises (ringback): while it claims one, other
    channels' "silence" is the tone's gaps, not a rival."""

    ends_progress: bool = True
    """Whether its outcome claims can end the progress phase. False for signalling hints,
    which only support or weaken what the audio shows."""

    authority: int = 0
    """Over the span of one of its claims, a channel of higher authority outranks the
    others: their claims for other labels lying within that span do not count (an
    identified recording outranks what a model hears in it)."""

    window_s: float = 0.0
    """Length of audio each claim integrates (0: claims are located exactly). A windowed
    claim straddling a transition (ringback -> speech) mixes two phases."""

    claims: ClaimPolicy = STRONGEST
    """How the session keeps its claims over time (``STRONGEST`` or ``LATEST_PER_TIER``)."""

    cost: CostClass = "light"
    """``heavy``: seconds of CPU per call (speech recognition): the server sizes its thread
    pool for it."""

    source: str = ""
    """What this instance loaded (a model file and its SHA-256, a sample library and its
    size), so that a run's records can be tied to it; empty for a channel that loads
    nothing."""

    evidence_grid: tuple[int, int] | None = None
    """``(first, step)`` in samples when its evidence arrives on a fixed grid (the model's
    windows end at ``first + k * step``): the session then ends its analysis blocks on that
    grid, so nothing waits for a block to fill."""


class ChannelStream(Protocol):
    """One call's analysis state for one channel."""

    info: ChannelInfo

    def process(self, samples: np.ndarray, start_sample: int) -> list[Evidence]:
        """Analyse the next samples, which begin at absolute index *start_sample*."""
        ...

    def prepare(self, samples: np.ndarray, start_sample: int) -> None:
        """The audio the next ``process`` calls will bring, in order and concatenated,
        beginning at *start_sample* (the batch path holds several blocks at once). A channel
        may analyse it now in one pass, batched, but ``process`` must return exactly what it
        would have returned without it, block by block. One with nothing to batch ignores it.
        (Optional for channels written before it: the session calls it when present.)"""
        ...

    def finish(self) -> list[Evidence]:
        """The stream ended: return any evidence that needed the whole call."""
        ...

    def heard(self) -> dict[str, str] | None:
        """What a channel that listens for words has heard so far, matched or not
        (``{"final": ..., "partial": ...}``), for the record; ``None`` for the others.
        (Optional, as ``prepare``.)"""
        ...

    def pending(self) -> Evidence | None:
        """A claim this channel is still accumulating and expects to make soon (its
        ``start_s`` is when it began to accumulate), or ``None``. The decision model waits a
        bounded time for a pending claim of a channel that outranks the others."""
        ...


class ChannelFactory(Protocol):
    """Process-wide, thread-safe holder of a channel's shared resources."""

    info: ChannelInfo

    def open(self) -> ChannelStream:
        """A new stream for one call."""
        ...

    def reload(self) -> int | None:
        """Re-read what the channel loaded from disk (the sample library), if anything;
        streams already open keep what they had. Returns how many items are loaded, or
        ``None`` when the channel has nothing to reload."""
        ...
