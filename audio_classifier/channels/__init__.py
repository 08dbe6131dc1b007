"""Evidence channels: one module per channel, each declaring what it is (``ChannelInfo``).

- ``tone``: call-progress tones, SIT, fax and silence, measured by frequency and cadence;
- ``model``: the trained model's running belief over 1.5 s windows;
- ``fingerprint``: enrolled carrier recordings, identified by landmarks;
- ``asr``: announcements from their words (Vosk, constrained to the lexicon);
- ``signalling``: SIP / Q.850 hints, which support or weaken what the audio shows.

``base`` holds the contract they share; the decision model (``decision.py``) and the server
read the declared facts and never ask a channel by name.
"""

from .base import LATEST_PER_TIER, STRONGEST, ChannelFactory, ChannelInfo, ChannelStream

__all__ = ["LATEST_PER_TIER", "STRONGEST", "ChannelFactory", "ChannelInfo", "ChannelStream"]
