"""Running the app: uvicorn on sockets we create (SO_REUSEPORT, so several worker processes
can share the HTTP and AudioSocket ports), with the AudioSocket listener on the same loop."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import socket
import threading
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from .app import start_audiosocket

GRACEFUL_SHUTDOWN_S = 10


def drain(app: FastAPI) -> None:
    """Tell the app it is stopping: no new sessions, open streams end with their decision."""
    state = getattr(app.state, "server", None)
    if state is not None:
        state.draining = True


def make_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def _serve(
    app: FastAPI,
    http_socket: socket.socket,
    audiosocket: tuple[str, int] | None,
    server_box: list,
    ready: threading.Event | None = None,
    log_level: str = "info",
) -> None:
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level=log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        ws_max_size=16 * 1024 * 1024,
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
        listener = await start_audiosocket(app, *audiosocket)
        server_box.append(listener.sockets[0].getsockname()[1])
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
) -> None:
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
    )
    asyncio.run(_serve(app_factory(), make_socket(host, port), audiosocket, [], log_level=log_level))


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
        _worker(app_factory, host, port, audiosocket, log_level)
        return
    processes = [
        multiprocessing.Process(target=_worker, args=(app_factory, host, port, audiosocket, log_level))
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
