"""The streaming protocol: stream metadata as the dialer taps send it, and message shapes.

FreeSWITCH mod_audio_fork / mod_audio_stream send one JSON text frame of metadata (what the
dial plan put there), then binary 16-bit PCM frames; jambonz ``listen`` sends call
attributes with ``sampleRate``; our own clients send ``sample_rate`` and ``encoding``. All
of these are accepted; missing fields take telephony defaults (8 kHz 16-bit PCM, mono).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..audio import ENCODINGS, SAMPLE_RATE, check_rate_and_channels, normalise_encoding
from ..channels.signalling import Hints
from ..errors import AudioClassifierError
from ..evidence import Decision

SUBPROTOCOLS = ("audio.drachtio.org", "audio.jambonz.org")
"""WebSocket subprotocols of mod_audio_fork and jambonz, accepted when offered."""

_RATE_KEYS = ("sample_rate", "sampleRate", "rate", "sample-rate")
_ENCODING_KEYS = ("encoding", "audio_format", "format", "codec")
_CALL_KEYS = ("call_id", "callSid", "call_sid", "callId", "uuid", "channel_uuid")
_NUMBER_KEYS = ("number", "to", "called_number", "destination")


class ProtocolError(AudioClassifierError, ValueError):
    """A message that breaks the protocol; ``code`` is a stable machine-readable name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class StreamStart:
    sample_rate: int = SAMPLE_RATE
    encoding: str = "pcm_s16le"
    channels: int = 1
    channel: int | None = None
    call_id: str | None = None
    number: str | None = None
    hints: Hints = field(default_factory=Hints)
    close_on_final: bool = False
    interim: bool = True
    """Send interim decisions (not only the final one)."""


def _first(data: dict, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in data and data[key] not in (None, ""):
            return data[key]
    return None


def parse_start(text: str | bytes) -> StreamStart:
    """The first (metadata) frame of a stream; raises :class:`ProtocolError`."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ProtocolError("bad_json", "the metadata is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(
            "bad_json", f"the first message must be a JSON object of metadata: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_metadata", "the first message must be a JSON object of metadata")
    # jambonz nests user metadata under "metadata"; fork modules put it at the top level
    nested = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    merged = {**nested, **data}
    try:
        rate = int(_first(merged, _RATE_KEYS) or SAMPLE_RATE)
        encoding = normalise_encoding(str(_first(merged, _ENCODING_KEYS) or "pcm_s16le"))
        if encoding == "float32":
            raise ProtocolError("bad_encoding", f"stream encoding must be one of {', '.join(ENCODINGS[:3])}")
        mix = str(merged.get("mixType", merged.get("mix_type", "mono"))).lower()
        channels = int(merged.get("channels") or (2 if mix == "stereo" else 1))
        channel = merged.get("channel")
        channel = None if channel in (None, "") else int(channel)
        check_rate_and_channels(rate, channels, channel)
        hints_source = merged.get("hints") if isinstance(merged.get("hints"), dict) else merged
        hints = Hints.from_mapping(hints_source)
    except ProtocolError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: int(inf), 1e400
        code = "bad_encoding" if isinstance(exc, AudioClassifierError) else "bad_metadata"
        raise ProtocolError(code, str(exc)) from None
    call_id = _first(merged, _CALL_KEYS)
    number = _first(merged, _NUMBER_KEYS)
    return StreamStart(
        sample_rate=rate,
        encoding=encoding,
        channels=channels,
        channel=channel,
        call_id=None if call_id is None else str(call_id),
        number=None if number is None else str(number),
        hints=hints,
        close_on_final=bool(merged.get("close_on_final", False)),
        interim=bool(merged.get("interim", True)),
    )


def decision_message(decision: Decision, start: StreamStart | None = None, **extra: Any) -> dict[str, Any]:
    """The JSON object sent for a decision."""
    message: dict[str, Any] = {"type": "decision", **decision.to_dict()}
    if start is not None:
        message["call_id"] = start.call_id
        message["number"] = start.number
    message.update(extra)
    return message


def error_message(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "error": message}
