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
    READ_AHEAD_MESSAGES,
    Audio,
    ClientGone,
    Start,
    Stop,
    read_ahead,
)
from audio_classifier.server.protocol import parse_start

FRAME = 320  # 20 ms of 16-bit audio at 8 kHz


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


def _collect(items: list, limit: int = 4096, busy_s: float = 0.0) -> list:
    """What the call loop sees; it is busy for *busy_s* after the first event."""

    async def run() -> list:
        seen = []
        async for event in read_ahead(_scripted(items), limit, 30.0):
            seen.append(event)
            if len(seen) == 1 and busy_s:
                await asyncio.sleep(busy_s)  # the reader runs meanwhile
        return seen

    return asyncio.run(run())


def test_frames_that_waited_are_joined_in_order_and_a_stop_stays_apart():
    start = Start(parse_start('{"sample_rate": 8000}'))
    frames = _frames(10)
    seen = _collect([start, *frames, Stop("stop")], busy_s=0.05)
    assert seen[0] == start and seen[-1] == Stop("stop")
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


def test_an_oversize_frame_is_not_joined_and_the_frames_before_it_come_first():
    small, big = _frames(3), Audio(b"x" * 5000)
    seen = _collect([Audio(b"a" * FRAME), *small, big, *small], limit=4096, busy_s=0.05)
    assert big in seen, "the oversize frame must reach the call loop on its own, to be refused"
    before = seen[: seen.index(big)]
    assert b"".join(e.data for e in before) == b"a" * FRAME + b"".join(f.data for f in small)


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


def test_the_reader_stops_reading_when_the_call_falls_far_behind():
    """Memory stays bounded: besides the feed in hand, at most READ_AHEAD_MESSAGES wait."""

    async def run() -> tuple[int, int]:
        read: list[int] = []
        stream = read_ahead(_scripted(_frames(10 * READ_AHEAD_MESSAGES), read=read), 4096, 30.0)
        first = await stream.__anext__()
        await asyncio.sleep(0.1)  # the call loop is stuck; the reader must not read on and on
        count = len(read)
        await stream.aclose()
        return count, len(first.data) // FRAME

    read, in_hand = asyncio.run(run())
    assert read - in_hand <= READ_AHEAD_MESSAGES


def test_decisions_are_the_same_whether_frames_come_one_by_one_or_joined():
    """What the read-ahead does to a call that fell behind: its waiting frames become one
    feed. The session's decision, with every claim, must not change."""
    clf = Classifier()
    rng = np.random.default_rng(3)
    x = np.concatenate(
        [synth.cadenced(synth.spec("CN", "ringback"), 2.3), synth.sit("ic"), synth.silence(2.0)]
    )
    pcm = (np.clip(synth.add_noise(x, 25.0, rng, reference=0.03), -1, 1) * 32767).astype("<i2").tobytes()
    frames = [pcm[i : i + FRAME] for i in range(0, len(pcm), FRAME)]

    def run(chunks: list[bytes]) -> tuple:
        session = clf.open_session(8000, "pcm_s16le")
        for chunk in chunks:
            session.feed(chunk)
            if session.final:
                break
        d = session.close()  # floats unrounded: to_dict() would hide a change in the last bits
        claims = [(e.channel, e.label, e.score, e.start_s, e.end_s, repr(e.detail)) for e in d.evidence]
        return d.label, d.confidence, d.score, d.decided_at_s, d.action, claims

    joined = [b"".join(frames[i : i + 37]) for i in range(0, len(frames), 37)]  # 0.74 s at a time
    assert run(joined) == run(frames)


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
