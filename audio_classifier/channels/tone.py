"""The tone channel: call-progress tones, SIT, fax and silence, measured by frequency and
cadence (the DSP is ``tones.py``; the plans ``tone_plans.py``)."""

from __future__ import annotations

from ..tones import CHANNEL, ToneDetector
from .base import ChannelInfo

INFO = ChannelInfo(
    CHANNEL,
    exact_labels=frozenset({"fax", "busy_tone", "congestion_tone", "sit"}),
    gapped_labels=frozenset({"ringback"}),
)
"""The tone channel measures tones by frequency and cadence: its busy, congestion, SIT and
fax claims are exact, and ringback's gaps are part of ringback."""


class ToneStream(ToneDetector):
    """One call's tone detector, as a channel stream."""

    info = INFO

    def pending(self) -> None:
        """Tones are claimed as they are measured: nothing is ever pending."""
        return None


class ToneChannel:
    """Factory of the tone channel (it has no shared resources)."""

    info = INFO

    def open(self) -> ToneStream:
        return ToneStream()

    def reload(self) -> None:
        return None
