"""Running the app: uvicorn on sockets we create, with the AudioSocket listener on the same
loop. Several worker processes share the ports through SO_REUSEPORT; one process binds them
alone, so a port another server holds is an error, not a shared port.

uvicorn is hardened against slow and greedy clients: request headers must arrive within
``ServerSettings.header_timeout_s`` (a client dripping them, or sending nothing, is cut off), connections
beyond ``max_sessions + HTTP_HEADROOM`` get 503, and a WebSocket message larger than the
app's frame limit (with Twilio's base64 and JSON around it) is refused by the protocol
layer before it is buffered.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import multiprocessing
import socket
import threading
from collections.abc import Callable

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from .app import ServerSettings, start_audiosocket

GRACEFUL_SHUTDOWN_S = 10

HTTP_HEADROOM = 64
"""Connections allowed beyond ``max_sessions`` (health checks, metrics, uploads)."""


class PortInUseError(OSError):
    """The port is held by another process."""


def drain(app: FastAPI) -> None:
    """Tell the app it is stopping: no new sessions, open streams end with their decision."""
    state = getattr(app.state, "server", None)
    if state is not None:
        state.draining = True


def make_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening socket; with *reuse_port*, one several worker processes can share.
    Raises :class:`PortInUseError` when another process holds the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(f"port {port} on {host} is in use by another process") from None
        raise
    sock.listen(1024)
    sock.setblocking(False)
    return sock


LOOPBACK_NAMES = ("localhost",)
"""Host names taken as loopback without resolving them."""


def is_loopback(host: str) -> bool:
    """Whether *host* (an address to listen on, or a Host header's name) is this machine only."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_free(host: str, port: int) -> None:
    """Raise :class:`PortInUseError` unless *port* can be bound without sharing it."""
    make_socket(host, port).close()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for each request's headers
    (``header_timeout_s``, set per server by :func:`guarded_protocol`)."""

    header_timeout_s: float = 10.0
    _header_deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _too_slow(self) -> None:
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self.transport.close()

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # the headers are in
            self._disarm()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._disarm()
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets the same deadline


def guarded_protocol(header_timeout_s: float) -> type[GuardedH11Protocol]:
    """:class:`GuardedH11Protocol` with this deadline (a subclass: servers in one process may
    differ)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"header_timeout_s": header_timeout_s})


def ws_max_size(settings: ServerSettings) -> int:
    """Largest WebSocket message uvicorn accepts: a frame of the app's limit, base64-encoded
    inside a Twilio JSON event."""
    return settings.max_frame_bytes * 4 // 3 + 4096


async def _serve(
    app: FastAPI,
    http_socket: socket.socket,
    audiosocket: tuple[str, int] | None,
    server_box: list,
    ready: threading.Event | None = None,
    log_level: str = "info",
    reuse_port: bool = False,
) -> None:
    settings: ServerSettings = app.state.settings
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level=log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        http=guarded_protocol(settings.header_timeout_s),
        ws_max_size=ws_max_size(settings),
        ws_per_message_deflate=False,  # audio does not compress; inflating it costs every frame
        limit_concurrency=settings.max_sessions + HTTP_HEADROOM,
    )
    server = uvicorn.Server(config)
    exit_handler = server.handle_exit

    def handle_exit(sig, frame) -> None:  # draining first: streams end with their decision
        drain(app)
        exit_handler(sig, frame)

    server.handle_exit = handle_exit  # type: ignore[method-assign]
    server_box.append(server)
    task = asyncio.create_task(server.serve(sockets=[http_socket]))
    while not server.started:
        if task.done():
            await task  # start-up failed: raise its error
            return
        await asyncio.sleep(0.02)
    listener = None
    if audiosocket is not None:
        listener = await start_audiosocket(app, *audiosocket, reuse_port=reuse_port)
        server_box.append(listener.sockets[0].getsockname()[1])
    host, port = http_socket.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    where = f"http://{host}:{port} (WebSocket ws://{host}:{port}/v1/stream)"
    if listener is not None:
        as_host, as_port = listener.sockets[0].getsockname()[:2]
        where += f" and AudioSocket on {f'[{as_host}]' if ':' in as_host else as_host}:{as_port}"
    logging.getLogger("audio_classifier.server").info("serving on %s", where)  # once per worker
    if ready is not None:
        ready.set()
    try:
        await task
    finally:
        if listener is not None:
            listener.close()


def _worker(
    app_factory: Callable[[], FastAPI],
    host: str,
    port: int,
    audiosocket: tuple[str, int] | None,
    log_level: str,
    shared: bool,
) -> None:
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
    )
    sock = make_socket(host, port, reuse_port=shared)
    if audiosocket is not None and not shared:
        check_free(*audiosocket)
    asyncio.run(_serve(app_factory(), sock, audiosocket, [], log_level=log_level, reuse_port=shared))


def serve(
    app_factory: Callable[[], FastAPI],
    host: str,
    port: int,
    audiosocket: tuple[str, int] | None = None,
    workers: int = 1,
    log_level: str = "info",
) -> None:
    """Run until interrupted. With several workers each process loads its own models and
    the kernel spreads connections over them."""
    if workers <= 1:
        _worker(app_factory, host, port, audiosocket, log_level, shared=False)
        return
    check_free(host, port)  # the workers share the port with each other, not with a stranger
    if audiosocket is not None:
        check_free(*audiosocket)
    processes = [
        multiprocessing.Process(target=_worker, args=(app_factory, host, port, audiosocket, log_level, True))
        for _ in range(workers)
    ]
    for p in processes:
        p.start()
    try:
        for p in processes:
            p.join()
    except KeyboardInterrupt:
        for p in processes:
            p.terminate()
        for p in processes:
            p.join()


class BackgroundServer:
    """The service on loopback ports chosen by the system, in a thread (tests, benchmarks)."""

    def __init__(self, app: FastAPI, *, audiosocket: bool = True, host: str = "127.0.0.1") -> None:
        self.app = app
        self.host = host
        self._socket = make_socket(host, 0)
        self.port = self._socket.getsockname()[1]
        self._audiosocket = (host, 0) if audiosocket else None
        self._box: list = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            asyncio.run(
                _serve(self.app, self._socket, self._audiosocket, self._box, self._ready, log_level="warning")
            )
        except BaseException as exc:  # noqa: BLE001 - surfaced by start()
            self.error = exc
            self._ready.set()

    def start(self, timeout: float = 120.0) -> BackgroundServer:
        self._thread.start()
        if not self._ready.wait(timeout) or self.error:
            raise RuntimeError(f"server did not start: {self.error}")
        return self

    @property
    def audiosocket_port(self) -> int | None:
        return self._box[1] if len(self._box) > 1 else None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def stop(self) -> None:
        drain(self.app)
        if self._box:
            self._box[0].should_exit = True
        self._thread.join(timeout=GRACEFUL_SHUTDOWN_S + 5)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
