"""The tone channel: call-progress tones, SIT, fax and silence, measured by frequency and
cadence (the DSP is ``tones.py``; the plans ``tone_plans.py``)."""

from __future__ import annotations

from ..tones import CHANNEL, ToneDetector
from .base import ChannelInfo

INFO = ChannelInfo(
    CHANNEL,
    exact_labels=frozenset({"fax", "busy_tone", "congestion_tone", "sit", "ringback"}),
    gapped_labels=frozenset({"ringback"}),
    authority=1,
)
"""The tone channel measures tones by frequency and cadence: its ringback, busy, congestion,
SIT and fax claims are exact, and ringback's gaps are part of ringback. Over the span of a
tone it measured, what another channel hears there is the tone (the model calling a steady
test tone "voicemail"): it outranks the model and speech recognition, not an identified
recording."""


class ToneStream(ToneDetector):
    """One call's tone detector, as a channel stream."""

    info = INFO


class ToneChannel:
    """Factory of the tone channel (it has no shared resources)."""

    info = INFO

    def open(self) -> ToneStream:
        return ToneStream()

    def reload(self) -> None:
        return None
