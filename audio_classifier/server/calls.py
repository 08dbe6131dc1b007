"""One call loop for every streaming transport.

A transport (``transports.py``: our WebSocket protocol, Twilio Media Streams, Asterisk
AudioSocket) turns what its client sends into typed events, ``Start``, ``Audio`` and
``Stop`` (``Tick`` for anything else that arrives: DTMF, marks, keep-alives), and delivers
decisions the way its client expects them. :func:`run_call` does the rest, the same for
all: the session, frame and time limits, the shutdown drain, every error answered with its
code and counted, the final decision delivered and reported once whatever ended the call
(a hang-up, an idle line, a reset connection, a malformed message).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import urllib.request
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.exc import SQLAlchemyError

from ..errors import AudioClassifierError, AudioInputError, EmptyAudioError
from ..evidence import Decision
from ..session import Session
from .protocol import ProtocolError, StreamStart, decision_message

if TYPE_CHECKING:
    from .app import ServerState

log = logging.getLogger("audio_classifier.server")

SHUTDOWN_REASON = "server shutting down"
"""Streams still sending when the server is asked to stop end with their decision and this
reason (close code 1001, going away)."""


@dataclass(frozen=True)
class Start:
    """The call's metadata: what the audio is and which call it belongs to."""

    start: StreamStart


@dataclass(frozen=True)
class Audio:
    """A chunk of the call's audio, in the encoding the ``Start`` named."""

    data: bytes
    arrived: tuple[float, ...] = ()
    """When it was read (``time.perf_counter``): one time per frame joined into it."""


@dataclass(frozen=True)
class Stop:
    """The client ended the call (a hang-up, a stop message, a close)."""

    reason: str = "client closed"


@dataclass(frozen=True)
class Tick:
    """Anything else the client sent (DTMF, a mark, a keep-alive): no audio, but the limits
    are still checked."""


Event = Start | Audio | Stop | Tick


class ClientGone(Exception):
    """The connection ended without a goodbye (a reset, a dropped socket)."""


class Transport(Protocol):
    """What the call loop needs of a transport."""

    name: str
    """The ``transport`` of its calls in logs, metrics and callbacks."""

    reports: bool
    """Whether a call's final decision is logged and POSTed to the callback URL (its client
    cannot receive it itself, or may not want to)."""

    def events(self) -> AsyncIterator[Event]:
        """The client's messages as events; raises ``ProtocolError`` on a malformed one,
        ``ClientGone`` when it vanishes. (The idle timeout is the call loop's.)"""
        ...

    async def deliver(self, call: CallStream, decision: Decision, ended: str | None) -> None:
        """Send *decision* (interim or final; *ended* says why the stream ended, for the
        final one sent at the end) to the client, where it takes decisions."""
        ...

    async def fail(self, code: str, message: str) -> None:
        """Tell the client what was wrong, where it can be told, and end the connection."""
        ...

    async def close(self, reason: str) -> None:
        """End the connection after the call ended normally."""
        ...


class CallStream:
    """One call's session, fed in order, with its metrics."""

    def __init__(self, state: ServerState, start: StreamStart, transport: str) -> None:
        self.state = state
        self.start = start
        self.transport = transport
        self.session: Session = state.classifier.open_session(
            start.sample_rate, start.encoding, start.hints, channels=start.channels, channel=start.channel
        )
        self.final_sent = False
        self._counted = False
        self._bytes_per_second = (
            start.sample_rate * start.channels * (2 if start.encoding == "pcm_s16le" else 1)
        )
        state.metrics.sessions.labels(transport).inc()

    async def feed(self, data: bytes, arrived: tuple[float, ...] = ()) -> list[Decision]:
        """Analyse *data*, whose frames arrived at *arrived* (``time.perf_counter``; now if
        not given): the processing metric observes each frame's wait and analysis."""
        arrived = arrived or (time.perf_counter(),)
        if self.state.inline:
            updates = self.session.feed(data)
        else:
            loop = asyncio.get_running_loop()
            updates = await loop.run_in_executor(self.state.executor, self.session.feed, data)
        done = time.perf_counter()
        for at in arrived:
            self.state.metrics.processing.observe(done - at)
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


READ_AHEAD_MESSAGES = 64
"""Messages a call's reader holds while the call's analysis is busy (1.3 s of 20 ms
frames); then it stops reading, and the client's sends wait in the socket."""

READ_AHEAD_BYTES = 128 * 1024
"""... or this many bytes of them, whichever comes first: two joined feeds, so a client
sending large frames faster than real time holds no more memory than one sending small
ones."""

MAX_JOINED_BYTES = 64 * 1024
"""Largest run of waiting audio frames joined into one feed (and never more than the frame
limit, which the call loop checks on what it is given): 4 s of 16-bit audio at 8 kHz, 16
of the session's blocks, which is where batching them stops paying."""


@dataclass(frozen=True)
class _Failed:
    """The reader's error, raised by :func:`read_ahead` in its place among the events."""

    error: BaseException


async def read_ahead(
    events: AsyncIterator[Event], frame_limit: int, idle_timeout_s: float
) -> AsyncIterator[Event]:
    """*events*, read by a task of their own, with the audio frames that arrived while the
    previous event was being analysed joined into one ``Audio``; ``TimeoutError`` when the
    client sends nothing for *idle_timeout_s* after its last message (one deadline for
    every transport, moved on by each message read; no task per message).

    A call whose analysis keeps up gets its frames one by one, as before. A call that fell
    behind (the server is busy) gets the frames that waited in one feed: when they complete
    several blocks, the session analyses them together (``ChannelStream.prepare``), at a
    lower cost per block and with the same decisions, so a busy server catches up instead
    of falling further behind. Joined frames stay within *frame_limit* bytes; a frame over
    it is never joined (the call loop rejects it where it stands) and nothing is read after
    it. At most ``READ_AHEAD_MESSAGES`` messages or ``READ_AHEAD_BYTES`` wait; the deadline
    is suspended while the reader waits for room (the client is sending). Errors (idle
    timeout, a malformed message, a lost client) are raised after the events read before
    them. Close the generator (``contextlib.aclosing``) to stop the reader at once.

    Joining never makes a feed fail that its frames alone would not: streams carry PCM or
    G.711 (the protocol refuses float32, whose invalid samples would refuse a whole feed),
    and every byte string of those decodes.
    """
    inbox: deque[Event | _Failed] = deque()
    held = 0  # bytes of audio in the inbox
    arrived = asyncio.Event()
    room = asyncio.Event()
    room.set()

    async def read() -> None:
        nonlocal held
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(idle_timeout_s) as deadline:
                async for event in events:
                    oversize = False
                    if isinstance(event, Audio):
                        event = Audio(event.data, (time.perf_counter(),))
                        held += len(event.data)
                        oversize = len(event.data) > frame_limit
                    inbox.append(event)
                    arrived.set()
                    if oversize:
                        return  # the call ends on it: read no further
                    if len(inbox) >= READ_AHEAD_MESSAGES or held >= READ_AHEAD_BYTES:
                        deadline.reschedule(None)  # the client is sending; the call is behind
                        room.clear()
                        await room.wait()
                    deadline.reschedule(loop.time() + idle_timeout_s)
        except Exception as exc:  # noqa: BLE001 - handed to the call loop, in order
            inbox.append(_Failed(exc))
        finally:
            inbox.append(_Failed(StopAsyncIteration()))
            arrived.set()

    def take() -> Event | _Failed:
        nonlocal held
        event = inbox.popleft()
        if isinstance(event, Audio):
            held -= len(event.data)
        return event

    reader = asyncio.create_task(read())
    try:
        while True:
            while not inbox:
                arrived.clear()
                await arrived.wait()
            event = take()
            if isinstance(event, Audio) and len(event.data) <= frame_limit:
                parts, size, times = [event.data], len(event.data), list(event.arrived)
                limit = min(MAX_JOINED_BYTES, frame_limit)
                while inbox and isinstance(inbox[0], Audio) and size + len(inbox[0].data) <= limit:
                    following = take()
                    assert isinstance(following, Audio)
                    parts.append(following.data)
                    times += following.arrived
                    size += len(following.data)
                event = Audio(b"".join(parts), tuple(times)) if len(parts) > 1 else event
            if len(inbox) < READ_AHEAD_MESSAGES and held < READ_AHEAD_BYTES:
                room.set()
            if isinstance(event, _Failed):
                if isinstance(event.error, StopAsyncIteration):
                    return
                raise event.error
            yield event
    finally:
        reader.cancel()
        await asyncio.wait([reader])  # its transport read is over before the call loop goes on


def _post_callback(url: str, payload: dict, timeout: float) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        urllib.request.urlopen(request, timeout=timeout).close()
    except Exception as exc:  # noqa: BLE001 - a callback failure must not end the call's logging
        log.warning("decision callback to %s failed: %s", url, exc)


async def report_final(
    state: ServerState, call: CallStream, decision: Decision | None, ended: str | None = None
) -> None:
    """Log a call's final decision and POST it to the callback URL, if any; *ended* says why
    the call ended, when it is reported at its end (a decision final earlier is reported
    the moment it is, before the call ends)."""
    if decision is None:
        log.info("%s call %s ended without audio", call.transport, call.start.call_id)
        return
    log.info(
        "%s call %s: %s (confidence %.2f, decided at %s s)%s",
        call.transport,
        call.start.call_id,
        decision.label,
        decision.confidence,
        decision.decided_at_s,
        f"; ended: {ended}" if ended else "",
    )
    if state.settings.callback_url:
        extra = {"ended": ended} if ended else {}
        payload = decision_message(decision, call.start, transport=call.transport, **extra)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            None, _post_callback, state.settings.callback_url, payload, state.settings.callback_timeout_s
        )


def keep_recording(state: ServerState, task: asyncio.Task) -> None:
    """Hold a reference to a recording task until it ends (the loop keeps only weak ones)."""
    state.recordings.add(task)
    task.add_done_callback(state.recordings.discard)


async def record_outcome(state: ServerState, call: CallStream, decision: Decision | None) -> None:
    """Record a call's final decision in the number registry, when the server keeps one and
    the call's metadata named its number."""
    if state.registry is None or decision is None or not call.start.number:
        return
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(
            None,
            lambda: state.registry.add_outcome(
                call.start.number,
                decision.label,
                origin="classifier",
                confidence=decision.confidence,
                action=decision.action,
                call_id=call.start.call_id,
            ),
        )
    except (AudioClassifierError, SQLAlchemyError) as exc:  # a bad number; a database busy or down
        state.metrics.errors.labels("numbers").inc()
        log.warning("%s call %s: not recorded in the registry: %s", call.transport, call.start.call_id, exc)


async def run_call(state: ServerState, transport: Transport) -> None:
    """Run one connection's call from its first event to its end (see the module)."""
    opened = time.monotonic()
    call: CallStream | None = None
    ended = "client closed"
    failure: tuple[str, str] | None = None
    reported = False

    final_decision: Decision | None = None

    async def deliver(decision: Decision, reason: str | None = None) -> None:
        nonlocal reported, final_decision
        assert call is not None
        if decision.final:
            call.final_sent = True
            final_decision = final_decision or decision
            if transport.reports and not reported:
                reported = True
                await report_final(state, call, decision)
        await transport.deliver(call, decision, reason)

    try:
        settings = state.settings
        reading = read_ahead(transport.events(), settings.max_frame_bytes, settings.idle_timeout_s)
        async with contextlib.aclosing(reading) as events:
            async for event in events:
                if isinstance(event, Start):
                    if call is not None:
                        raise ProtocolError("bad_message", "a second start in one call")
                    call = CallStream(state, event.start, transport.name)
                elif isinstance(event, Audio):
                    if call is None:
                        raise ProtocolError("bad_message", "audio before the call's start")
                    if len(event.data) > settings.max_frame_bytes:
                        size, limit = len(event.data), settings.max_frame_bytes
                        raise ProtocolError(
                            "frame_too_large", f"audio frame of {size} bytes; the limit is {limit}"
                        )
                    for update in await call.feed(event.data, event.arrived):
                        await deliver(update)
                    if call.final_sent and call.start.close_on_final:
                        ended = "final decision"
                        break
                elif isinstance(event, Stop):
                    ended = event.reason
                    break
                if time.monotonic() - opened > settings.max_session_s:
                    ended = "session time limit"
                    break
                if state.draining:
                    ended = SHUTDOWN_REASON
                    break
    except TimeoutError:
        ended = "idle timeout"
        if call is None:
            failure = ("idle_timeout", "no call metadata received")
    except ProtocolError as exc:
        failure = (exc.code, str(exc))
    except AudioInputError as exc:
        failure = ("bad_audio", f"{type(exc).__name__}: {exc}")
    except ClientGone:
        ended = "connection lost"
    except Exception as exc:  # noqa: BLE001 - a client must never get a traceback or take the server down
        log.error(
            "%s call: internal error on a client message (%s: %s)", transport.name, type(exc).__name__, exc
        )
        failure = ("internal_error", "the server failed on this message; the call is ended")
    if failure is not None:
        state.metrics.errors.labels(failure[0]).inc()
        log.info("%s stream error %s: %s", transport.name, *failure)
    decision = None
    if call is not None:
        try:
            decision = await call.close()
        except Exception as exc:  # noqa: BLE001 - as above
            log.error("%s call: internal error closing it (%s: %s)", transport.name, type(exc).__name__, exc)
        if transport.reports and not reported and (failure is None or decision is not None):
            reported = True
            await report_final(state, call, decision, failure[0] if failure else ended)
    if call is not None:  # after the caller and the callback have the decision: never delays them
        keep_recording(state, asyncio.create_task(record_outcome(state, call, final_decision or decision)))
    try:
        if failure is not None:
            await transport.fail(*failure)
        elif call is None:
            await transport.close(ended)
        elif decision is None:
            state.metrics.errors.labels("no_audio").inc()
            await transport.fail("no_audio", "the stream ended without audio")
        else:
            if not call.final_sent and ended != "connection lost":
                await transport.deliver(call, decision, ended)
            await transport.close(ended)
    except ClientGone:
        pass
