"""The classification service: an ASGI app (FastAPI) plus an Asterisk AudioSocket listener.

One :class:`~audio_classifier.Classifier` per process, loaded at start-up and shared
read-only; one :class:`~audio_classifier.Session` per connection. Streams of every
transport run through one call loop (``calls.py``; the transports are adapters in
``transports.py``). A malformed message gets an error message naming what was wrong and
ends that connection only; no client can take the service down, hold unbounded memory or
change what other clients see.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect

from ..audio import ENCODINGS, SAMPLE_RATE, check_rate_and_channels, normalise_encoding, raw_encoding_for
from ..batch import exit_with_parent
from ..channels.signalling import Hints
from ..classifier import Classifier
from ..config import ClassifierConfig
from ..errors import AudioClassifierError, UnreadableAudioError, UnsupportedEncodingError
from ..evidence import Decision
from .calls import run_call
from .metrics import Metrics
from .protocol import SUBPROTOCOLS, error_message
from .transports import AudioSocketStream, TwilioStream, WebSocketStream

log = logging.getLogger("audio_classifier.server")

RECORDING_DRAIN_S = 30.0
"""At shutdown, how long the server waits for outcomes still being written to the registry."""

MAX_EVENT_BYTES = 16 * 1024
"""Largest body of ``POST /v1/numbers/{number}/events`` (a label, an agent, a note)."""

MAX_FORM_FIELDS = 20
"""Text fields a multipart upload may carry beside its file (signalling hints)."""

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
    """Largest file ``POST /v1/classify`` accepts; counted while it is read, so a larger
    one (declared or not, chunked or multipart) is refused without being held."""
    upload_idle_timeout_s: float = 30.0
    """An upload that sends nothing for this long is refused (408)."""
    max_uploads: int = 16
    """Uploads in progress at once (being received, queued for or in a file process); more
    get 503 ``busy`` with ``Retry-After`` at once. Each holds a connection, and connections
    beyond ``max_sessions`` are few (``runner.HTTP_HEADROOM``): a batch of uploads waiting
    behind live calls must not take the slots of health checks or of new live calls."""
    analysis_threads: int = 4
    """Threads for analysis that leaves the event loop (speech recognition, uploads without
    file processes, closing sessions)."""
    callback_url: str | None = None
    """Final decisions of AudioSocket and Twilio calls are POSTed here as JSON."""
    callback_timeout_s: float = 5.0
    audiosocket_max_sessions: int = 100
    """AudioSocket calls at once: a pool of their own (AudioSocket has no key), so idle TCP
    connections cannot fill the authenticated clients' ``max_sessions``."""
    audiosocket_allow: frozenset[str] = frozenset()
    """Peer addresses AudioSocket accepts (empty: any; it listens on loopback by default)."""
    file_processes: int = 1
    """Processes that classify ``POST /v1/classify`` files, at lower CPU priority, so that a
    queue of uploads never slows the live streams (0: the analysis threads of the serving
    process). Started at the first upload; each builds ``Classifier(config)`` from the
    serving classifier's configuration."""
    numbers_db: str | None = None
    """The number registry (a SQLite file or a URL): streams' final decisions with a
    ``number`` in their metadata are recorded there, and ``POST /v1/numbers/{number}/events``
    takes agents' marks. None: off."""
    docs: bool = False
    """Serve ``/docs`` and ``/openapi.json``."""
    review: Any = None
    """``review.app.ReviewSettings``: serve the review page at ``/review/`` (None: off)."""
    header_timeout_s: float = 10.0
    """Seconds a connection has to deliver a request's headers (from connecting, or from the
    end of its previous response): slow and silent clients are cut off."""


@dataclass
class ServerState:
    classifier: Classifier
    settings: ServerSettings
    metrics: Metrics = field(default_factory=Metrics)
    executor: ThreadPoolExecutor | None = None
    file_pool: ProcessPoolExecutor | None = None
    """``settings.file_processes`` processes for uploaded files, made at the first upload."""
    registry: Any = None
    """The number registry (``numbers.Registry``) when ``settings.numbers_db`` is set."""
    recordings: set = field(default_factory=set)
    """Calls' outcomes being written to the registry (``calls.record_outcome``)."""
    active: int = 0
    """Open WebSocket streams (both protocols): at most ``settings.max_sessions``."""
    uploads: int = 0
    """``POST /v1/classify`` requests in progress: at most ``settings.max_uploads``."""
    audiosocket_active: int = 0
    """Open AudioSocket connections: at most ``settings.audiosocket_max_sessions``."""
    draining: bool = False
    inline: bool = True
    """Analyse on the event loop. A 100 ms block costs about a millisecond without speech
    recognition; handing every 20 ms frame to a thread instead costs more than it saves:
    with threads contending for the GIL, Python hands it over only every switch interval,
    and decisions queue up while the CPU idles. With the speech channel (tens of ms per
    block) the thread pool is used, so one call's recognition does not stall the others."""

    def authorized(self, headers: Any, query: Any) -> bool:
        return not self.settings.api_keys or key_given(headers, query, self.settings.api_keys)


def key_given(headers: Any, query: Any, keys: frozenset[str]) -> bool:
    """Whether a request carries one of *keys*: ``Authorization: Bearer``, ``X-API-Key`` or
    ``?token=`` (compared in constant time)."""
    auth = headers.get("authorization", "")
    token = auth[7:] if auth.lower().startswith("bearer ") else None
    given = [k for k in (token, headers.get("x-api-key"), query.get("token")) if k]
    return any(hmac.compare_digest(k.encode(), key.encode()) for k in given for key in keys)


class UploadTooLarge(Exception):
    """The request body passed ``max_upload_bytes`` while it was read."""


async def limited_body(request: Request, limit: int, idle_timeout_s: float) -> AsyncIterator[bytes]:
    """The request body's chunks as they arrive; raises ``UploadTooLarge`` as soon as more
    than *limit* bytes came, ``TimeoutError`` when none comes for *idle_timeout_s*."""
    total = 0
    chunks = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), timeout=idle_timeout_s)
        except StopAsyncIteration:
            return
        total += len(chunk)
        if total > limit:
            raise UploadTooLarge
        yield chunk


CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
SECRET_QUERY = re.compile(r"(?i)((?:token|api_key|key)=)[^&\s\"]+")


class LogSanitiser(logging.Filter):
    """Escapes control characters in log lines (a client's newline cannot forge a line) and
    redacts keys given in URLs (``?token=``) from uvicorn's access and connection logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        # each argument is cleaned where it stands: formatters such as uvicorn's access log
        # read the arguments themselves, not the message
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _clean(v) if isinstance(v, str) else v for k, v in record.args.items()}
        if isinstance(record.msg, str):
            record.msg = _clean(record.msg)
        return True


def _clean(text: str) -> str:
    text = SECRET_QUERY.sub(r"\1<redacted>", text)
    return CONTROL_CHARACTERS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


SANITISED_LOGGERS = ("audio_classifier.server", "uvicorn.access", "uvicorn.error")


def sanitise_logs() -> None:
    """Put one :class:`LogSanitiser` on each logger that may carry client-made text."""
    for name in SANITISED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, LogSanitiser) for f in logger.filters):
            logger.addFilter(LogSanitiser())


FILE_WORKER_NICENESS = 10
"""How much lower the file processes' CPU priority is than the serving process's (nice),
where the idle scheduling class is not available."""

_file_worker: dict[str, Classifier] = {}
"""In a file process: the classifier it built once (``_init_file_worker``)."""


def _lower_priority() -> None:
    """Put every thread of this process (the BLAS pool numpy started at import among them)
    at ``FILE_WORKER_NICENESS`` and, on Linux, in the idle scheduling class: a file then
    runs only on CPU time no live call wants. A nice value alone left uploads half a core
    of two while 100 live calls fell seconds behind (benchmarks/load.py). Linux sets both
    per thread, so the threads are set one by one. Where the system refuses the idle class
    (some container sandboxes), the nice value is kept and the refusal logged once."""
    tasks = "/proc/self/task"
    if not os.path.isdir(tasks):
        os.nice(FILE_WORKER_NICENESS)
        return

    def niced(tid: int) -> None:
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + FILE_WORKER_NICENESS)

    def idle(tid: int) -> None:
        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))

    steps = [niced, idle] if hasattr(os, "SCHED_IDLE") else [niced]
    refused: OSError | None = None
    for tid in map(int, os.listdir(tasks)):
        for step in steps:
            try:
                step(tid)
            except ProcessLookupError:  # a thread that ended meanwhile
                break
            except OSError as exc:
                refused = refused or exc
    if refused is not None:
        log.warning("file processes keep a higher CPU priority than intended: %s", refused)


def _init_file_worker(config: ClassifierConfig) -> None:
    exit_with_parent()
    _lower_priority()
    _file_worker["classifier"] = Classifier(config)


UPLOAD_RETRY_AFTER_S = 5
"""``Retry-After`` of a ``busy`` answer: about the time a file process takes for a few
minutes of audio."""


HEADERLESS_HINT = (
    "; headerless audio over HTTP: ?encoding=mulaw|alaw|pcm_s16le (and sample_rate=, default "
    "8000), or a multipart file named .ul, .al or .raw"
)


@dataclass(frozen=True)
class RawAudio:
    """How an upload's samples are encoded when it has no header (``encoding`` None: it has one)."""

    encoding: str | None = None
    sample_rate: int = SAMPLE_RATE

    @classmethod
    def from_query(cls, fields: dict[str, Any]) -> RawAudio:
        encoding = fields.get("encoding") or None
        if encoding is not None:
            encoding = normalise_encoding(str(encoding))
            if encoding not in ENCODINGS[:3]:
                raise UnsupportedEncodingError(f"encoding {encoding}: one of {', '.join(ENCODINGS[:3])}")
        try:
            rate = int(fields.get("sample_rate") or SAMPLE_RATE)
        except (TypeError, ValueError, OverflowError):
            raise UnsupportedEncodingError(
                f"sample_rate {fields.get('sample_rate')!r} is not a number"
            ) from None
        check_rate_and_channels(rate, 1, None)
        return cls(encoding, rate)


def _classify(classifier: Classifier, path: str, hints: Hints, raw: RawAudio) -> Decision:
    return classifier.classify_file(
        path, hints=hints, raw_encoding=raw.encoding, raw_sample_rate=raw.sample_rate
    )


def _classify_in_worker(path: str, hints: Hints, raw: RawAudio) -> dict[str, Any]:
    return _classify(_file_worker["classifier"], path, hints, raw).to_dict()


async def classify_upload(state: ServerState, path: str, hints: Hints, raw: RawAudio) -> dict[str, Any]:
    """Classify an uploaded file: in the file processes, or the analysis threads without them."""
    loop = asyncio.get_running_loop()
    if state.settings.file_processes <= 0:
        decision = await loop.run_in_executor(state.executor, _classify, state.classifier, path, hints, raw)
        return decision.to_dict()
    return await loop.run_in_executor(file_pool(state), _classify_in_worker, path, hints, raw)


def file_pool(state: ServerState) -> ProcessPoolExecutor:
    """The file processes (``settings.file_processes`` of them), made at first use."""
    if state.file_pool is None:
        state.file_pool = ProcessPoolExecutor(
            state.settings.file_processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_file_worker,
            initargs=(state.classifier.config,),
        )
    return state.file_pool


def create_app(
    classifier_factory: Callable[[], Classifier], settings: ServerSettings | None = None
) -> FastAPI:
    """The ASGI app. The classifier is built once, at start-up, by *classifier_factory*."""
    settings = settings or ServerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loop = asyncio.get_running_loop()
        classifier = await loop.run_in_executor(None, classifier_factory)
        try:  # before /readyz, so that the first calls do not stall behind lazy loads
            await loop.run_in_executor(None, classifier.warm_up)
        except Exception as exc:  # noqa: BLE001 - each call will answer its own error code
            log.error("warming the classifier up failed (%s: %s)", type(exc).__name__, exc)
        heavy = any(channel.info.cost == "heavy" for channel in classifier.channels)
        executor = ThreadPoolExecutor(settings.analysis_threads, "analysis")
        state = ServerState(classifier, settings, executor=executor, inline=not heavy)
        if heavy:
            sys.setswitchinterval(SWITCH_INTERVAL_S)  # shorter GIL hand-offs between loop and recognisers
        if settings.numbers_db:
            from ..numbers import Registry

            state.registry = await loop.run_in_executor(None, Registry, settings.numbers_db)
        app.state.server = state
        if settings.review is not None and settings.file_processes > 0:

            async def offload(function: Callable[..., Any], *args: Any) -> Any:
                return await loop.run_in_executor(file_pool(state), function, *args)

            settings.review.offload = offload  # discovery, away from the live calls
        for note in classifier.notes:
            log.info("note: %s", note)
        if not settings.api_keys:
            log.warning("no API key configured: the service accepts any client")
        yield
        state.draining = True
        state.executor.shutdown(wait=False, cancel_futures=True)
        if state.recordings:  # calls that ended just before: their outcomes are written
            await asyncio.wait(set(state.recordings), timeout=RECORDING_DRAIN_S)
        if state.registry is not None:
            state.registry.close()
        if settings.review is not None:
            settings.review.offload = None
            settings.review.store.close()
        if state.file_pool is not None:  # waited for: its queues and semaphores are released
            await loop.run_in_executor(None, lambda: state.file_pool.shutdown(wait=True, cancel_futures=True))

    sanitise_logs()
    docs = {} if settings.docs else {"docs_url": None, "redoc_url": None, "openapi_url": None}
    app = FastAPI(title="audio_classifier", version="1", lifespan=lifespan, **docs)
    app.state.settings = settings
    if settings.review is not None:
        from ..review.app import review_router

        app.include_router(review_router(settings.review), prefix="/review")

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
        limit = state.settings.max_upload_bytes
        too_large = error_response(413, "too_large", f"upload over {limit} bytes")
        too_large.headers["Connection"] = "close"  # the rest of the body is not read
        try:
            declared = int(request.headers.get("content-length") or 0)
        except ValueError:
            return error_response(400, "bad_request", "Content-Length is not a number")
        if declared > limit:
            return too_large
        if state.uploads >= state.settings.max_uploads:
            state.metrics.errors.labels("busy").inc()
            busy = error_response(
                503, "busy", f"{state.settings.max_uploads} uploads in progress; retry in a moment"
            )
            busy.headers["Retry-After"] = str(UPLOAD_RETRY_AFTER_S)
            busy.headers["Connection"] = "close"  # the body is not read
            return busy
        state.uploads += 1
        try:
            return await _classify_request(request, state, limit, too_large)
        finally:
            state.uploads -= 1

    async def _classify_request(
        request: Request, state: ServerState, limit: int, too_large: JSONResponse
    ) -> JSONResponse:
        """The upload's body into a temporary file, then its decision (``classify``)."""
        fields: dict[str, Any] = dict(request.query_params)
        # a container, unless ?encoding= or an uploaded file's name (.ul, .al, .raw) says headerless
        try:
            raw = RawAudio.from_query(fields)
        except AudioClassifierError as exc:
            return error_response(400, "bad_encoding", str(exc))
        body = limited_body(request, limit, state.settings.upload_idle_timeout_s)
        with tempfile.NamedTemporaryFile(suffix=".audio") as handle:
            try:
                if request.headers.get("content-type", "").startswith("multipart/form-data"):
                    parser = MultiPartParser(request.headers, body, max_files=1, max_fields=MAX_FORM_FIELDS)
                    form = await parser.parse()
                    upload = form.get("file")
                    if upload is None or isinstance(upload, str):
                        return error_response(400, "no_file", "multipart upload needs a 'file' field")
                    await asyncio.get_running_loop().run_in_executor(
                        None, shutil.copyfileobj, upload.file, handle
                    )
                    fields.update({k: v for k, v in form.items() if isinstance(v, str)})
                    if raw.encoding is None:
                        raw = RawAudio(raw_encoding_for(upload.filename or ""), raw.sample_rate)
                else:
                    async for chunk in body:
                        handle.write(chunk)
                handle.flush()
            except UploadTooLarge:
                state.metrics.errors.labels("too_large").inc()
                return too_large
            except TimeoutError:
                state.metrics.errors.labels("upload_timeout").inc()
                return error_response(408, "upload_timeout", "the upload stalled")
            except MultiPartException as exc:
                return error_response(400, "bad_form", str(exc))
            except ClientDisconnect:  # nobody to answer; counted, not logged as a server error
                state.metrics.errors.labels("client_gone").inc()
                return error_response(400, "client_gone", "the client went away during the upload")
            try:
                hints = Hints.from_mapping(fields)
            except AudioClassifierError as exc:
                return error_response(400, "bad_hints", str(exc))
            try:
                decision = await classify_upload(state, handle.name, hints, raw)
            except AudioClassifierError as exc:
                state.metrics.errors.labels("bad_audio").inc()
                message = f"{type(exc).__name__}: {exc}".replace(handle.name, "the upload")
                if isinstance(exc, UnreadableAudioError):
                    message += HEADERLESS_HINT
                return error_response(400, "bad_audio", message)
            except BrokenProcessPool:
                state.file_pool = None  # the next upload starts a fresh pool
                state.metrics.errors.labels("internal_error").inc()
                log.error("the file classification process died")
                return error_response(500, "internal_error", "the file classification process died")
        state.metrics.decisions.labels(decision["label"]).inc()
        return JSONResponse({"type": "decision", **decision})

    @app.post("/v1/numbers/{number}/events")
    async def number_event(number: str, request: Request) -> JSONResponse:
        """An agent's mark: {"label": ..., "by": ..., "note": ...}; answers the number's state."""
        state = server(request)
        if not state.authorized(request.headers, request.query_params):
            return error_response(401, "unauthorized", "missing or unknown API key")
        if state.registry is None:
            return error_response(404, "no_registry", "the number registry is off (serve --numbers-db)")
        data = bytearray()
        try:
            async for chunk in limited_body(request, MAX_EVENT_BYTES, state.settings.upload_idle_timeout_s):
                data += chunk
        except UploadTooLarge:
            return error_response(413, "too_large", f"an event is at most {MAX_EVENT_BYTES} bytes")
        except TimeoutError:
            return error_response(408, "upload_timeout", "the request body stalled")
        try:
            body = json.loads(bytes(data) or b"{}")
        except (ValueError, RecursionError):
            return error_response(400, "bad_json", "the body must be a JSON object")
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("label"), str)
            or not isinstance(body.get("by"), str)
        ):
            return error_response(
                400, "bad_event", 'the body needs "label" and "by" strings ("note" optional)'
            )
        note = body.get("note") if isinstance(body.get("note"), str) else None
        loop = asyncio.get_running_loop()
        try:
            marked = await loop.run_in_executor(
                None, lambda: state.registry.mark(number, body["label"], by=body["by"], note=note)
            )
        except AudioClassifierError as exc:
            return error_response(400, "bad_event", str(exc))
        return JSONResponse(
            {"number": state.registry.normalise(number), "state": marked.status, "rule": marked.rule}
        )

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

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket) -> None:
        state = await admit(ws, SUBPROTOCOLS)
        if state is None:
            return
        state.active += 1
        try:
            await run_call(state, WebSocketStream(ws))
        finally:
            state.active -= 1

    @app.websocket("/v1/twilio")
    async def twilio(ws: WebSocket) -> None:
        """Twilio Media Streams (connected, start, media, mark, stop; base64 mu-law)."""
        state = await admit(ws)
        if state is None:
            return
        state.active += 1
        try:
            await run_call(state, TwilioStream(ws))
        finally:
            state.active -= 1

    return app


# -- Asterisk AudioSocket ---------------------------------------------------------------------


async def handle_audiosocket(
    state: ServerState, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """One AudioSocket connection, within AudioSocket's own session pool and allow-list."""
    peer = writer.get_extra_info("peername")
    allowed = state.settings.audiosocket_allow
    if allowed and (not peer or peer[0] not in allowed):
        state.metrics.errors.labels("not_allowed").inc()
        log.info("audiosocket connection from %s refused: not in the allow-list", peer and peer[0])
        writer.close()
        return
    if state.draining or state.audiosocket_active >= state.settings.audiosocket_max_sessions:
        state.metrics.errors.labels("session_limit").inc()
        writer.close()
        return
    state.audiosocket_active += 1
    try:
        await run_call(state, AudioSocketStream(reader, writer))
    finally:
        state.audiosocket_active -= 1


async def start_audiosocket(
    app: FastAPI, host: str, port: int, *, reuse_port: bool = False
) -> asyncio.base_events.Server:
    """Listen for AudioSocket connections on the app's event loop (after start-up)."""
    state: ServerState = app.state.server
    return await asyncio.start_server(
        lambda r, w: handle_audiosocket(state, r, w), host, port, reuse_port=reuse_port
    )
