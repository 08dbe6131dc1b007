"""Streaming transports as small adapters for :func:`calls.run_call`: each turns its
client's messages into events and delivers decisions as its client expects them.

- ``WebSocketStream``: our protocol on ``/v1/stream`` (and the FreeSWITCH fork modules' and
  jambonz's): one JSON metadata frame, then binary audio; decisions sent back as JSON.
- ``TwilioStream``: Twilio Media Streams on ``/v1/twilio`` (base64 mu-law in JSON events).
- ``AudioSocketStream``: Asterisk AudioSocket over TCP (type, length, payload frames).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from ..evidence import Decision
from .calls import SHUTDOWN_REASON, Audio, CallStream, ClientGone, Event, Start, Stop, Tick
from .protocol import ProtocolError, StreamStart, decision_message, error_message, parse_start

STOP_MESSAGES = ("stop", "close", "hangup")
"""``type`` of the text frames that end a ``/v1/stream`` call."""


class _WebSocketBase:
    """Receiving, sending and closing that survive a vanished client. (How long a client may
    stay silent is the call loop's: ``calls.read_ahead``.)"""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws

    async def _receive(self) -> dict[str, Any] | None:
        """The next message, or None when the client closed."""
        try:
            message = await self.ws.receive()
        except WebSocketDisconnect:
            raise ClientGone from None
        except RuntimeError:  # the socket was already closed under us
            raise ClientGone from None
        return None if message["type"] == "websocket.disconnect" else message

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            await self.ws.send_json(message)
        except (WebSocketDisconnect, RuntimeError, ConnectionError):
            raise ClientGone from None

    async def _close(self, code: int, reason: str) -> None:
        try:
            await self.ws.close(code=code, reason=reason[:120])
        except (WebSocketDisconnect, RuntimeError, ConnectionError):
            pass

    async def fail(self, code: str, message: str) -> None:
        try:
            await self._send(error_message(code, message))
        except ClientGone:
            return
        await self._close(self._close_code(code), code)

    @staticmethod
    def _close_code(code: str) -> int:
        if code == "frame_too_large":
            return 1009
        if code == "internal_error":
            return 1011
        if code in ("idle_timeout", "no_audio"):
            return 1000
        return 1007

    async def close(self, reason: str) -> None:
        await self._close(1001 if reason == SHUTDOWN_REASON else 1000, reason)


class WebSocketStream(_WebSocketBase):
    """``/v1/stream``: a JSON metadata frame, then binary audio frames; ``{"type": "stop"}``."""

    name = "websocket"
    reports = False  # its client receives every decision itself

    async def events(self) -> AsyncIterator[Event]:
        first = await self._receive()
        if first is None:
            return
        if first.get("text") is None:
            raise ProtocolError("bad_metadata", "the first message must be a JSON text frame of metadata")
        yield Start(parse_start(first["text"]))
        while (message := await self._receive()) is not None:
            if message.get("bytes") is not None:
                yield Audio(message["bytes"])
                continue
            try:
                control = json.loads(message.get("text") or "")
            except (ValueError, RecursionError):
                raise ProtocolError("bad_json", "text frames after the metadata must be JSON") from None
            if isinstance(control, dict) and control.get("type") in STOP_MESSAGES:
                yield Stop("stop")
                return
            raise ProtocolError(
                "bad_message", 'unknown control message; send binary audio or {"type": "stop"}'
            )

    async def deliver(self, call: CallStream, decision: Decision, ended: str | None) -> None:
        if decision.final or call.start.interim:
            extra = {"ended": ended} if ended else {}
            await self._send(decision_message(decision, call.start, **extra))


TWILIO_IGNORED = ("connected", "mark", "dtmf")
"""Twilio events that carry no audio."""


class TwilioStream(_WebSocketBase):
    """``/v1/twilio``: Twilio Media Streams (connected, start, media, mark, dtmf, stop). Final
    decisions are reported (log, callback); sent back too with the custom parameter
    ``send_decisions=true``."""

    name = "twilio"
    reports = True

    def __init__(self, ws: WebSocket) -> None:
        super().__init__(ws)
        self.send_decisions = False

    async def events(self) -> AsyncIterator[Event]:
        while (message := await self._receive()) is not None:
            try:
                event = json.loads(message.get("text") or "")
            except (ValueError, RecursionError):
                raise ProtocolError("bad_json", "Twilio messages are JSON text frames") from None
            kind = event.get("event") if isinstance(event, dict) else None
            if kind == "start":
                yield Start(self._start(event.get("start")))
            elif kind == "media":
                media = event.get("media")
                payload = media.get("payload", "") if isinstance(media, dict) else None
                if not isinstance(payload, str):
                    raise ProtocolError("bad_payload", "a media event needs media.payload, a base64 string")
                try:
                    data = base64.b64decode(payload, validate=True)
                except (binascii.Error, ValueError):
                    raise ProtocolError("bad_payload", "media payload is not base64") from None
                yield Audio(data)
            elif kind == "stop":
                yield Stop("stop")
                return
            elif kind in TWILIO_IGNORED:
                yield Tick()
            else:
                raise ProtocolError("bad_message", f"unknown Twilio event {str(kind)[:40]!r}")

    def _start(self, info: Any) -> StreamStart:
        info = info if isinstance(info, dict) else None
        params = info.get("customParameters") if info else None
        fmt = info.get("mediaFormat") if info else None
        if info is None or not isinstance(params or {}, dict) or not isinstance(fmt or {}, dict):
            raise ProtocolError(
                "bad_metadata", "a start event needs start, with customParameters and mediaFormat objects"
            )
        params, fmt = params or {}, fmt or {}
        metadata = {
            "sample_rate": fmt.get("sampleRate", 8000),
            "encoding": fmt.get("encoding", "audio/x-mulaw"),
            "channels": fmt.get("channels", 1),
            "call_id": info.get("callSid"),
            "number": params.get("number"),
            **{k: params[k] for k in ("sip_status", "q850_cause") if k in params},
        }
        self.send_decisions = str(params.get("send_decisions", "")).lower() in ("1", "true", "yes")
        return parse_start(json.dumps(metadata))

    async def deliver(self, call: CallStream, decision: Decision, ended: str | None) -> None:
        if self.send_decisions:
            await self._send(decision_message(decision, call.start))

    async def close(self, reason: str) -> None:
        await self._close(1000, reason)


AUDIOSOCKET_RATES = {0x10: 8000, 0x11: 12000, 0x12: 16000, 0x13: 24000, 0x14: 32000, 0x15: 44100, 0x16: 48000}
"""Audio frame types: signed linear 16-bit mono, by sample rate."""
AS_HANGUP, AS_UUID, AS_DTMF, AS_ERROR = 0x00, 0x01, 0x03, 0xFF
AS_UUID_BYTES = 16


class AudioSocketStream:
    """Asterisk AudioSocket: a UUID frame, audio frames (their type gives the rate), DTMF,
    hang-up. Asterisk takes no decisions back: final decisions are reported (log, callback)."""

    name = "audiosocket"
    reports = True

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.call_id: str | None = None

    async def _frame(self) -> tuple[int, bytes] | None:
        """The next frame, or None at a clean end of the connection."""
        try:
            header = await self.reader.readexactly(3)
            length = int.from_bytes(header[1:3], "big")
            payload = await self.reader.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise ProtocolError("truncated_frame", "the connection closed inside a frame") from None
            return None
        except (ConnectionError, OSError):
            raise ClientGone from None
        return header[0], payload

    async def events(self) -> AsyncIterator[Event]:
        rate: int | None = None
        while (frame := await self._frame()) is not None:
            kind, payload = frame
            if kind == AS_HANGUP:
                yield Stop("hangup")
                return
            if kind == AS_UUID:
                if len(payload) != AS_UUID_BYTES:
                    raise ProtocolError(
                        "bad_uuid", f"a UUID frame holds {AS_UUID_BYTES} bytes, not {len(payload)}"
                    )
                self.call_id = payload.hex()
                yield Tick()
            elif kind in AUDIOSOCKET_RATES:
                if rate is None:
                    rate = AUDIOSOCKET_RATES[kind]
                    yield Start(StreamStart(sample_rate=rate, call_id=self.call_id))
                elif AUDIOSOCKET_RATES[kind] != rate:
                    raise ProtocolError("rate_change", "the sample rate changed mid-call")
                yield Audio(payload)
            elif kind in (AS_DTMF, AS_ERROR):
                yield Tick()  # an error frame is Asterisk's own trouble: the call goes on
            else:
                raise ProtocolError("bad_frame", f"unknown frame type 0x{kind:02x}")

    async def deliver(self, call: CallStream, decision: Decision, ended: str | None) -> None:
        return None

    async def fail(self, code: str, message: str) -> None:
        await self.close(code)

    async def close(self, reason: str) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass
