"""The classification service: an ASGI app (FastAPI) plus an Asterisk AudioSocket listener.

One :class:`~audio_classifier.Classifier` per process, loaded at start-up and shared
read-only; one :class:`~audio_classifier.Session` per connection. Analysis runs in a
thread pool, never on the event loop, and one call's chunks are analysed in order.
A malformed message gets an error message naming what was wrong and ends that connection
only; no client can take the service down or change what other clients see.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response

from ..channels.signalling import Hints
from ..classifier import Classifier
from ..errors import AudioClassifierError, AudioInputError, EmptyAudioError
from ..evidence import Decision
from ..session import Session
from .metrics import Metrics
from .protocol import SUBPROTOCOLS, ProtocolError, StreamStart, decision_message, error_message, parse_start

log = logging.getLogger("audio_classifier.server")

SHUTDOWN_REASON = "server shutting down"
"""Streams still sending when the server is asked to stop end with their decision and this
reason (close code 1001, going away)."""

SWITCH_INTERVAL_S = 0.001
"""GIL switch interval in a server running recognisers in threads (Python's default: 5 ms)."""


@dataclass(frozen=True)
class ServerSettings:
    api_keys: frozenset[str] = frozenset()
    """Accepted API keys (header ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``, or
    ``?token=KEY`` for clients that cannot set headers). Empty: no authentication."""
    max_sessions: int = 400
    max_frame_bytes: int = 64 * 1024
    """Largest binary frame accepted (a 20 ms frame at 48 kHz stereo is 3,840 bytes)."""
    max_session_s: float = 600.0
    """Wall-clock limit of one streaming session."""
    idle_timeout_s: float = 30.0
    """A stream that sends nothing for this long is ended."""
    max_upload_bytes: int = 50 * 1024 * 1024
    analysis_threads: int = 4
    callback_url: str | None = None
    """Final decisions of AudioSocket and Twilio calls are POSTed here as JSON."""
    callback_timeout_s: float = 5.0


@dataclass
class ServerState:
    classifier: Classifier
    settings: ServerSettings
    metrics: Metrics = field(default_factory=Metrics)
    executor: ThreadPoolExecutor | None = None
    active: int = 0
    draining: bool = False
    inline: bool = True
    """Analyse on the event loop. A 100 ms block costs about a millisecond without speech
    recognition; handing every 20 ms frame to a thread instead costs more than it saves:
    with threads contending for the GIL, Python hands it over only every switch interval,
    and decisions queue up while the CPU idles. With the speech channel (tens of ms per
    block) the thread pool is used, so one call's recognition does not stall the others."""

    def authorized(self, headers: Any, query: Any) -> bool:
        keys = self.settings.api_keys
        if not keys:
            return True
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else None
        return any(k in keys for k in (token, headers.get("x-api-key"), query.get("token")) if k)


class CallStream:
    """One call's session, fed off the event loop, in order."""

    def __init__(self, state: ServerState, start: StreamStart, transport: str) -> None:
        self.state = state
        self.start = start
        self.transport = transport
        self.session: Session = state.classifier.open_session(
            start.sample_rate, start.encoding, start.hints, channels=start.channels, channel=start.channel
        )
        self.final_sent = False
        self._counted = False
        self.opened = time.monotonic()
        self._bytes_per_second = (
            start.sample_rate * start.channels * (2 if start.encoding == "pcm_s16le" else 1)
        )
        state.metrics.sessions.labels(transport).inc()

    async def feed(self, data: bytes) -> list[Decision]:
        arrived = time.perf_counter()
        if self.state.inline:
            updates = self.session.feed(data)
        else:
            loop = asyncio.get_running_loop()
            updates = await loop.run_in_executor(self.state.executor, self.session.feed, data)
        self.state.metrics.processing.observe(time.perf_counter() - arrived)
        self.state.metrics.audio.inc(len(data) / self._bytes_per_second)
        for update in updates:
            if update.final:
                self._count(update)
        return updates

    async def close(self) -> Decision | None:
        loop = asyncio.get_running_loop()
        try:
            decision = await loop.run_in_executor(self.state.executor, self.session.close)
        except EmptyAudioError:
            return None
        self._count(decision)
        return decision

    def _count(self, decision: Decision) -> None:
        """Record the call's final decision in the metrics, once per call."""
        if self._counted:
            return
        self._counted = True
        self.state.metrics.decisions.labels(decision.label).inc()
        if decision.decided_at_s is not None:
            self.state.metrics.decided_at.observe(decision.decided_at_s)

    @property
    def expired(self) -> bool:
        return time.monotonic() - self.opened > self.state.settings.max_session_s


def _post_callback(url: str, payload: dict, timeout: float) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        urllib.request.urlopen(request, timeout=timeout).close()
    except Exception as exc:  # noqa: BLE001 - a callback failure must not end the call's logging
        log.warning("decision callback to %s failed: %s", url, exc)


async def report_final(state: ServerState, call: CallStream, decision: Decision | None) -> None:
    """Log a call's final decision and POST it to the callback URL, if any."""
    if decision is None:
        log.info("%s call %s ended without audio", call.transport, call.start.call_id)
        return
    payload = decision_message(decision, call.start, transport=call.transport)
    log.info(
        "%s call %s: %s (confidence %.2f, decided at %s s)",
        call.transport,
        call.start.call_id,
        decision.label,
        decision.confidence,
        decision.decided_at_s,
    )
    if state.settings.callback_url:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            None, _post_callback, state.settings.callback_url, payload, state.settings.callback_timeout_s
        )


def create_app(
    classifier_factory: Callable[[], Classifier], settings: ServerSettings | None = None
) -> FastAPI:
    """The ASGI app. The classifier is built once, at start-up, by *classifier_factory*."""
    settings = settings or ServerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loop = asyncio.get_running_loop()
        classifier = await loop.run_in_executor(None, classifier_factory)
        heavy = any(channel.info.cost == "heavy" for channel in classifier.channels)
        executor = ThreadPoolExecutor(settings.analysis_threads, "analysis")
        state = ServerState(classifier, settings, executor=executor, inline=not heavy)
        if heavy:
            sys.setswitchinterval(SWITCH_INTERVAL_S)  # shorter GIL hand-offs between loop and recognisers
        app.state.server = state
        for note in classifier.notes:
            log.info("note: %s", note)
        if not settings.api_keys:
            log.warning("no API key configured: the service accepts any client")
        yield
        state.draining = True
        state.executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="audio_classifier", version="1", lifespan=lifespan)

    def server(request_or_ws: Request | WebSocket) -> ServerState:
        return request_or_ws.app.state.server

    def error_response(status: int, code: str, message: str) -> JSONResponse:
        return JSONResponse(error_message(code, message), status_code=status)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        state = server(request)
        ready = not state.draining and state.active < state.settings.max_sessions
        body = {
            "status": "ready" if ready else "not ready",
            "channels": list(state.classifier.channel_names),
            "active_sessions": state.active,
            "max_sessions": state.settings.max_sessions,
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        state = server(request)
        state.metrics.active.set(state.active)
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.post("/v1/classify")
    async def classify(request: Request) -> JSONResponse:
        state = server(request)
        if not state.authorized(request.headers, request.query_params):
            return error_response(401, "unauthorized", "missing or unknown API key")
        declared = int(request.headers.get("content-length") or 0)
        if declared > state.settings.max_upload_bytes:
            return error_response(413, "too_large", f"upload over {state.settings.max_upload_bytes} bytes")
        fields: dict[str, Any] = dict(request.query_params)
        suffix = ".wav"
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form()
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                return error_response(400, "no_file", "multipart upload needs a 'file' field")
            data = await upload.read()
            suffix = os.path.splitext(upload.filename or "")[1] or suffix
            fields.update({k: v for k, v in form.items() if isinstance(v, str)})
        else:
            data = await request.body()
        if len(data) > state.settings.max_upload_bytes:
            return error_response(413, "too_large", f"upload over {state.settings.max_upload_bytes} bytes")
        try:
            hints = Hints.from_mapping(fields)
        except AudioClassifierError as exc:
            return error_response(400, "bad_hints", str(exc))
        with tempfile.NamedTemporaryFile(suffix=suffix) as handle:
            handle.write(data)
            handle.flush()
            loop = asyncio.get_running_loop()
            try:
                decision = await loop.run_in_executor(
                    state.executor, lambda: state.classifier.classify_file(handle.name, hints=hints)
                )
            except AudioClassifierError as exc:
                state.metrics.errors.labels("bad_audio").inc()
                return error_response(400, "bad_audio", f"{type(exc).__name__}: {exc}")
        state.metrics.decisions.labels(decision.label).inc()
        return JSONResponse(decision_message(decision))

    @app.post("/v1/admin/reload-samples")
    async def reload_samples(request: Request) -> JSONResponse:
        state = server(request)
        if not state.authorized(request.headers, request.query_params):
            return error_response(401, "unauthorized", "missing or unknown API key")
        loop = asyncio.get_running_loop()
        reloaded = {}
        for channel in state.classifier.channels:
            count = await loop.run_in_executor(None, channel.reload)
            if count is not None:
                reloaded[channel.info.name] = count
        if not reloaded:
            return error_response(409, "no_library", "the fingerprint channel is not running")
        return JSONResponse({"reloaded": reloaded})

    async def admit(ws: WebSocket, subprotocols: tuple[str, ...] = ()) -> ServerState | None:
        state = server(ws)
        if not state.authorized(ws.headers, ws.query_params):
            await ws.close(code=1008, reason="unauthorized")
            return None
        if state.draining or state.active >= state.settings.max_sessions:
            await ws.accept()
            await ws.send_json(error_message("busy", "session limit reached; try again later"))
            await ws.close(code=1013, reason="session limit")
            state.metrics.errors.labels("session_limit").inc()
            return None
        offered = [p for p in ws.scope.get("subprotocols", []) if p in subprotocols]
        await ws.accept(subprotocol=offered[0] if offered else None)
        return state

    async def fail(ws: WebSocket, state: ServerState, code: str, message: str, close_code: int) -> None:
        state.metrics.errors.labels(code).inc()
        log.info("stream error %s: %s", code, message)
        try:
            await ws.send_json(error_message(code, message))
            await ws.close(code=close_code, reason=code)
        except (WebSocketDisconnect, RuntimeError):
            pass

    async def receive(ws: WebSocket, state: ServerState) -> dict:
        return await asyncio.wait_for(ws.receive(), timeout=state.settings.idle_timeout_s)

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket) -> None:
        state = await admit(ws, SUBPROTOCOLS)
        if state is None:
            return
        state.active += 1
        call: CallStream | None = None
        ended = "client closed"
        try:
            first = await receive(ws, state)
            if first["type"] == "websocket.disconnect":
                return
            if first.get("text") is None:
                raise ProtocolError("bad_metadata", "the first message must be a JSON text frame of metadata")
            call = CallStream(state, parse_start(first["text"]), "websocket")
            while True:
                message = await receive(ws, state)
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("bytes") is not None:
                    data = message["bytes"]
                    if len(data) > state.settings.max_frame_bytes:
                        raise ProtocolError(
                            "frame_too_large",
                            f"binary frame of {len(data)} bytes; the limit is "
                            f"{state.settings.max_frame_bytes}",
                        )
                    for update in await call.feed(data):
                        if update.final or call.start.interim:
                            await ws.send_json(decision_message(update, call.start))
                        if update.final:
                            call.final_sent = True
                    if call.final_sent and call.start.close_on_final:
                        ended = "final decision"
                        await ws.close(code=1000, reason="final decision")
                        return
                    if call.expired:
                        ended = "session time limit"
                        break
                    if state.draining:
                        ended = SHUTDOWN_REASON
                        break
                else:
                    try:
                        control = json.loads(message.get("text") or "")
                    except ValueError:
                        raise ProtocolError(
                            "bad_json", "text frames after the metadata must be JSON"
                        ) from None
                    if isinstance(control, dict) and control.get("type") in ("stop", "close", "hangup"):
                        ended = "stop"
                        break
                    raise ProtocolError(
                        "bad_message", 'unknown control message; send binary audio or {"type": "stop"}'
                    )
            await finish(ws, state, call, ended)
        except TimeoutError:
            if call is not None:
                await finish(ws, state, call, "idle timeout")
            else:
                await fail(ws, state, "idle_timeout", "no metadata received", 1000)
        except ProtocolError as exc:
            await fail(ws, state, exc.code, str(exc), 1007 if exc.code.startswith("bad_") else 1009)
        except AudioInputError as exc:
            await fail(ws, state, "bad_audio", f"{type(exc).__name__}: {exc}", 1007)
        except WebSocketDisconnect:
            pass  # the client went away; its session is simply dropped
        finally:
            state.active -= 1

    async def finish(ws: WebSocket, state: ServerState, call: CallStream, reason: str) -> None:
        """Close the session; send the final decision if it was not sent, then close."""
        decision = await call.close()
        if decision is None:
            await fail(ws, state, "no_audio", "the stream ended without audio", 1000)
            return
        try:
            if not call.final_sent:
                await ws.send_json(decision_message(decision, call.start, ended=reason))
            await ws.close(code=1001 if reason == SHUTDOWN_REASON else 1000, reason=reason)
        except (WebSocketDisconnect, RuntimeError):
            pass

    @app.websocket("/v1/twilio")
    async def twilio(ws: WebSocket) -> None:
        """Twilio Media Streams (connected, start, media, mark, stop; base64 mu-law)."""
        state = await admit(ws)
        if state is None:
            return
        state.active += 1
        call: CallStream | None = None
        send_decisions = False
        try:
            while True:
                message = await receive(ws, state)
                if message["type"] == "websocket.disconnect":
                    break
                try:
                    event = json.loads(message.get("text") or "")
                except ValueError:
                    raise ProtocolError("bad_json", "Twilio messages are JSON text frames") from None
                kind = event.get("event") if isinstance(event, dict) else None
                if kind == "start":
                    info = event.get("start") or {}
                    params = info.get("customParameters") or {}
                    fmt = info.get("mediaFormat") or {}
                    metadata = {
                        "sample_rate": fmt.get("sampleRate", 8000),
                        "encoding": fmt.get("encoding", "audio/x-mulaw"),
                        "channels": fmt.get("channels", 1),
                        "call_id": info.get("callSid"),
                        "number": params.get("number"),
                        **{k: params[k] for k in ("sip_status", "q850_cause") if k in params},
                    }
                    call = CallStream(state, parse_start(json.dumps(metadata)), "twilio")
                    send_decisions = str(params.get("send_decisions", "")).lower() in ("1", "true", "yes")
                elif kind == "media":
                    if call is None:
                        raise ProtocolError("bad_message", "media before start")
                    try:
                        data = base64.b64decode((event.get("media") or {}).get("payload", ""), validate=True)
                    except (binascii.Error, ValueError):
                        raise ProtocolError("bad_payload", "media payload is not base64") from None
                    for update in await call.feed(data):
                        if update.final:
                            call.final_sent = True
                            await report_final(state, call, update)
                        if send_decisions:
                            await ws.send_json(decision_message(update, call.start))
                elif kind == "stop":
                    break
                elif kind in ("connected", "mark", "dtmf"):
                    continue
                else:
                    raise ProtocolError("bad_message", f"unknown Twilio event {kind!r}")
            if call is not None:
                decision = await call.close()
                if not call.final_sent:
                    await report_final(state, call, decision)
                    if send_decisions and decision is not None:
                        await ws.send_json(decision_message(decision, call.start))
            await ws.close(code=1000)
        except TimeoutError:
            await fail(ws, state, "idle_timeout", "no message for too long", 1000)
        except ProtocolError as exc:
            await fail(ws, state, exc.code, str(exc), 1007)
        except AudioInputError as exc:
            await fail(ws, state, "bad_audio", str(exc), 1007)
        except WebSocketDisconnect:
            pass
        finally:
            state.active -= 1

    return app


# -- Asterisk AudioSocket ---------------------------------------------------------------------

AUDIOSOCKET_RATES = {0x10: 8000, 0x11: 12000, 0x12: 16000, 0x13: 24000, 0x14: 32000, 0x15: 44100, 0x16: 48000}
"""Audio frame types: signed linear 16-bit mono, by sample rate."""
AS_HANGUP, AS_UUID, AS_DTMF, AS_ERROR = 0x00, 0x01, 0x03, 0xFF


async def handle_audiosocket(
    state: ServerState, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """One AudioSocket connection: UUID, audio frames, hangup. Records the final decision."""
    if state.draining or state.active >= state.settings.max_sessions:
        writer.close()
        state.metrics.errors.labels("session_limit").inc()
        return
    state.active += 1
    call_id: str | None = None
    call: CallStream | None = None
    try:
        while True:
            try:
                header = await asyncio.wait_for(reader.readexactly(3), timeout=state.settings.idle_timeout_s)
                kind, length = header[0], int.from_bytes(header[1:3], "big")
                payload = await asyncio.wait_for(
                    reader.readexactly(length), timeout=state.settings.idle_timeout_s
                )
            except asyncio.IncompleteReadError as exc:
                if exc.partial:
                    state.metrics.errors.labels("truncated_frame").inc()
                    log.info("audiosocket %s: connection closed inside a frame", call_id)
                break
            except TimeoutError:
                state.metrics.errors.labels("idle_timeout").inc()
                break
            if kind == AS_HANGUP:
                break
            if kind == AS_UUID:
                call_id = payload.hex() if len(payload) == 16 else payload.decode(errors="replace")
            elif kind in AUDIOSOCKET_RATES:
                rate = AUDIOSOCKET_RATES[kind]
                if call is None:
                    call = CallStream(state, StreamStart(sample_rate=rate, call_id=call_id), "audiosocket")
                elif call.start.sample_rate != rate:
                    state.metrics.errors.labels("rate_change").inc()
                    log.info("audiosocket %s: sample rate changed mid-call; ending", call_id)
                    break
                for update in await call.feed(payload):
                    if update.final:
                        call.final_sent = True
                        await report_final(state, call, update)
                if call.expired or state.draining:
                    break
            elif kind == AS_ERROR:
                log.info("audiosocket %s: Asterisk reported an error (%s)", call_id, payload.hex())
            elif kind != AS_DTMF:
                state.metrics.errors.labels("bad_frame").inc()
                log.info("audiosocket %s: unknown frame type 0x%02x; ending", call_id, kind)
                break
        if call is not None:
            decision = await call.close()
            if not call.final_sent:
                await report_final(state, call, decision)
    except AudioInputError as exc:
        state.metrics.errors.labels("bad_audio").inc()
        log.info("audiosocket %s: %s", call_id, exc)
    finally:
        state.active -= 1
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass


async def start_audiosocket(app: FastAPI, host: str, port: int) -> asyncio.base_events.Server:
    """Listen for AudioSocket connections on the app's event loop (after start-up)."""
    state: ServerState = app.state.server
    return await asyncio.start_server(
        lambda r, w: handle_audiosocket(state, r, w), host, port, reuse_port=True
    )
