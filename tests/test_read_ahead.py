"""The call loop's read-ahead (``calls.read_ahead``): frames that waited are joined, in order,
never past a bound, and errors come after what was read before them."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from audio_classifier import synth
from audio_classifier.classifier import Classifier
from audio_classifier.server.calls import (
    MAX_JOINED_BYTES,
    READ_AHEAD_BYTES,
    READ_AHEAD_MESSAGES,
    Audio,
    ClientGone,
    Start,
    Stop,
    read_ahead,
)
from audio_classifier.server.protocol import parse_start

FRAME = 320  # 20 ms of 16-bit audio at 8 kHz
START = Start(parse_start('{"sample_rate": 8000}'))


async def _scripted(items: list, read: list | None = None):
    """Events from *items*, all at once (an exception is raised where it stands); *read*
    gets the index of each one taken."""
    for n, item in enumerate(items):
        if isinstance(item, BaseException):
            raise item
        if read is not None:
            read.append(n)
        yield item


def _frames(count: int, size: int = FRAME) -> list[Audio]:
    return [Audio(bytes([n % 256]) * size) for n in range(count)]


def _collect(items: list, limit: int = 4096, busy_s: float = 0.0, start: Start = START) -> list:
    """What the call loop sees after *start* (a call's metadata, 16-bit PCM unless given);
    it is busy for *busy_s* after the first event that follows."""

    async def run() -> list:
        seen = []
        async for event in read_ahead(_scripted([start, *items]), limit, 30.0):
            seen.append(event)
            if len(seen) == 2 and busy_s:
                await asyncio.sleep(busy_s)  # the reader runs meanwhile
        assert seen[0] == start
        return seen[1:]

    return asyncio.run(run())


def test_frames_that_waited_are_joined_in_order_and_a_stop_stays_apart():
    frames = _frames(10)
    seen = _collect([*frames, Stop("stop")], busy_s=0.05)
    assert seen[-1] == Stop("stop")
    audio = [e for e in seen if isinstance(e, Audio)]
    assert b"".join(a.data for a in audio) == b"".join(f.data for f in frames)
    assert len(audio) < len(frames), "frames that waited were not joined"


def test_a_call_that_keeps_up_gets_its_frames_one_by_one():
    async def run() -> list:
        seen = []

        async def slow():  # one frame at a time, each after the loop took the last
            for frame in _frames(5):
                yield frame
                await asyncio.sleep(0.01)

        async for event in read_ahead(slow(), 4096, 30.0):
            seen.append(event)
        return seen

    assert [len(e.data) for e in asyncio.run(run())] == [FRAME] * 5


def test_an_oversize_frame_is_not_joined_and_nothing_is_read_after_it():
    small, big = _frames(3), Audio(b"x" * 5000)
    read: list[int] = []

    async def run() -> list:
        items = [START, Audio(b"a" * FRAME), *small, big, *_frames(200)]
        seen = []
        async for event in read_ahead(_scripted(items, read=read), 4096, 30.0):
            seen.append(event)
            await asyncio.sleep(0.01)
        return seen[1:]

    seen = asyncio.run(run())
    assert seen[-1].data == big.data, "the oversize frame must reach the call loop on its own, to be refused"
    assert b"".join(e.data for e in seen[:-1]) == b"a" * FRAME + b"".join(f.data for f in small)
    assert max(read) == 5, "the reader went on reading after the frame that ends the call"


@pytest.mark.parametrize(("limit", "size"), [(2000, 320), (10**6, 4000)])
def test_a_joined_feed_is_bounded_and_within_the_frame_limit(limit, size):
    frames = _frames(READ_AHEAD_MESSAGES - 1, size=size)
    seen = _collect([Audio(b"a"), *frames], limit=limit, busy_s=0.05)
    assert max(len(e.data) for e in seen) <= min(limit, MAX_JOINED_BYTES)
    assert b"".join(e.data for e in seen) == b"a" + b"".join(f.data for f in frames)
    assert len(seen) > 2


@pytest.mark.parametrize("error", [TimeoutError(), ClientGone(), ValueError("bad")])
def test_an_error_comes_after_the_events_read_before_it(error):
    frames = _frames(4)

    async def run() -> tuple[list, BaseException | None]:
        seen = []
        try:
            async for event in read_ahead(_scripted([*frames, error]), 4096, 30.0):
                seen.append(event)
                await asyncio.sleep(0.01)
        except Exception as exc:  # noqa: BLE001 - the test looks at which one
            return seen, exc
        return seen, None

    seen, raised = asyncio.run(run())
    assert raised is error
    assert b"".join(e.data for e in seen) == b"".join(f.data for f in frames)


def test_a_silent_client_times_out_after_what_it_sent():
    async def run() -> tuple[list, BaseException | None]:
        async def stalls():
            for frame in _frames(3):
                yield frame
                await asyncio.sleep(0.02)
            await asyncio.sleep(60)  # the client goes quiet
            yield Stop("stop")

        seen = []
        try:
            async for event in read_ahead(stalls(), 4096, 0.3):
                seen.append(event)
        except TimeoutError as exc:
            return seen, exc
        return seen, None

    seen, raised = asyncio.run(run())
    assert isinstance(raised, TimeoutError)
    assert b"".join(e.data for e in seen) == b"".join(f.data for f in _frames(3))


def test_a_call_that_is_behind_does_not_time_its_client_out():
    """The deadline is the client's silence: while the reader waits for the call to catch
    up (its inbox full), the client is not idle, however long that takes."""

    async def run() -> int:
        stream = read_ahead(_scripted(_frames(3 * READ_AHEAD_MESSAGES)), 4096, 0.2)
        count = 0
        async for event in stream:
            if not count:
                await asyncio.sleep(0.5)  # the analysis is slow: the inbox fills and waits
            count += len(event.data) // FRAME
        return count

    assert asyncio.run(run()) == 3 * READ_AHEAD_MESSAGES


@pytest.mark.parametrize("size", [FRAME, 8000])
def test_the_reader_stops_reading_when_the_call_falls_far_behind(size):
    """Memory stays bounded: besides the feed in hand, at most READ_AHEAD_MESSAGES messages
    and READ_AHEAD_BYTES (plus the message that reached it) wait, small frames or large."""

    async def run() -> tuple[int, int]:
        read: list[int] = []
        frames = _frames(10 * READ_AHEAD_MESSAGES, size=size)
        stream = read_ahead(_scripted([START, *frames], read=read), 10**6, 30.0)
        assert await stream.__anext__() == START
        first = await stream.__anext__()
        await asyncio.sleep(0.1)  # the call loop is stuck; the reader must not read on and on
        waiting = len(read) - 1 - len(first.data) // size
        await stream.aclose()
        return waiting

    waiting = asyncio.run(run())
    assert waiting <= READ_AHEAD_MESSAGES and (waiting - 1) * size < READ_AHEAD_BYTES


def test_closing_the_events_stops_the_reader_before_the_call_loop_goes_on():
    """The call loop closes the read-ahead (``aclosing``) when it ends a call: the reader's
    transport read must be over by then, not left for the garbage collector."""
    closed = []

    async def client():
        try:
            yield START
            yield from_client
            await asyncio.Event().wait()  # then silence: the reader waits here
        finally:
            closed.append(True)

    from_client = _frames(1)[0]

    async def run() -> None:
        stream = read_ahead(client(), 4096, 30.0)
        await stream.__anext__()
        await stream.__anext__()
        await stream.aclose()
        assert closed == [True]

    asyncio.run(run())


@pytest.mark.parametrize(("encoding", "rate"), [("pcm_s16le", 8000), ("mulaw", 8000), ("pcm_s16le", 16000)])
def test_decisions_are_the_same_whether_frames_come_one_by_one_or_joined(encoding, rate):
    """What the read-ahead does to a call that fell behind: its waiting frames become one
    feed, of any length up to MAX_JOINED_BYTES. Every update (interim and final), with
    every claim and its floats unrounded, must be the same as frame by frame."""
    from audio_classifier import g711
    from audio_classifier.resample import resample

    clf = Classifier()
    rng = np.random.default_rng(3)
    x = np.concatenate(
        [synth.cadenced(synth.spec("CN", "ringback"), 2.3), synth.sit("ic"), synth.silence(2.0)]
    )
    x = np.clip(synth.add_noise(x, 25.0, rng, reference=0.03), -1, 1)
    if rate != 8000:
        x = resample(x, 8000, rate)
    if encoding == "mulaw":
        audio = g711.encode(x.astype(np.float32), "mulaw").tobytes()
    else:
        audio = (x * 32767).astype("<i2").tobytes()
    frame = rate // 50 * (1 if encoding == "mulaw" else 2)
    frames = [audio[i : i + frame] for i in range(0, len(audio), frame)]

    def run(chunks: list[bytes]) -> list:
        session = clf.open_session(rate, encoding)
        updates = []
        for chunk in chunks:
            updates += session.feed(chunk)
            if session.final:
                break
        updates.append(session.close())
        return [
            (
                d.label,
                d.confidence,
                d.score,
                d.decided_at_s,
                d.final,
                d.action,
                [(e.channel, e.label, e.score, e.start_s, e.end_s, repr(e.detail)) for e in d.evidence],
            )
            for d in updates
        ]

    one_by_one = run(frames)
    for seed in range(3):
        joins, i, pick = [], 0, np.random.default_rng(seed)
        while i < len(frames):
            n = int(pick.integers(1, MAX_JOINED_BYTES // frame + 1))
            joins.append(b"".join(frames[i : i + n]))
            i += n
        assert run(joins) == one_by_one, seed


def test_warm_up_pays_what_channels_load_on_first_use():
    """A server warms its classifier before it is ready: the first call must not import
    scipy's FFT (about 0.5 s) or run onnxruntime for the first time while others wait."""
    import subprocess
    import sys

    code = (
        "import sys; from audio_classifier.classifier import Classifier; c = Classifier(); "
        "print('scipy.fft' in sys.modules); c.warm_up(); print('scipy.fft' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.split() == ["False", "True"], done.stderr


@pytest.mark.parametrize("ending", ["close_on_final", "protocol_error"])
def test_the_call_loop_closes_its_transport_reads_before_it_answers(ending):
    """``run_call`` ends a call (a final decision with ``close_on_final``, a malformed
    message) and then answers or closes the connection: by then the reader must have
    stopped reading from the transport."""
    from audio_classifier import ClassifierConfig
    from audio_classifier.server.app import ServerSettings, ServerState
    from audio_classifier.server.calls import run_call

    order: list[str] = []
    metadata = '{"sample_rate": 8000, "close_on_final": true}'
    busy = synth.cadenced(synth.spec("CN", "busy"), 4.0)
    pcm = (np.clip(busy, -1, 1) * 32767).astype("<i2").tobytes()

    class Transport:
        name, reports = "fake", False

        async def events(self):
            try:
                yield Start(parse_start(metadata))
                for i in range(0, len(pcm), 3200):
                    yield Audio(pcm[i : i + 3200])
                    await asyncio.sleep(0)
                if ending == "protocol_error":
                    from audio_classifier.server.protocol import ProtocolError

                    raise ProtocolError("bad_message", "a malformed message")
                await asyncio.Event().wait()  # the client stays: only the server ends the call
            finally:
                order.append("reads stopped")

        async def deliver(self, call, decision, ended) -> None:
            order.append("final" if decision.final else "interim")

        async def fail(self, code: str, message: str) -> None:
            order.append(f"fail {code}")

        async def close(self, reason: str) -> None:
            order.append(f"close {reason}")

    config = ClassifierConfig(asr_model=None, model_path=None, samples_path=None)
    state = ServerState(Classifier(config), ServerSettings())
    if ending == "protocol_error":
        metadata = '{"sample_rate": 8000}'
    asyncio.run(asyncio.wait_for(run_call(state, Transport()), 60))
    answer = next(i for i, step in enumerate(order) if step.startswith(("fail", "close")))
    assert "reads stopped" in order[:answer], order
