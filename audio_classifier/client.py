"""A small client for the streaming protocol (WebSocket /v1/stream): tests, benchmarks, and
a reference for integrators."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

FRAME_MS = 20


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def frames(audio: bytes, bytes_per_frame: int) -> list[bytes]:
    return [audio[i : i + bytes_per_frame] for i in range(0, len(audio), bytes_per_frame)]


def stream(
    url: str,
    audio: bytes,
    *,
    sample_rate: int = 8000,
    encoding: str = "pcm_s16le",
    api_key: str | None = None,
    metadata: dict[str, Any] | None = None,
    frame_ms: int = FRAME_MS,
    realtime: bool = False,
    timeout: float = 60.0,
) -> list[dict]:
    """Send *audio* (raw bytes in *encoding*) as a call; return every message received.
    The final decision is the last ``{"type": "decision", "final": true}`` message."""
    from websockets.sync.client import connect

    width = 2 if encoding == "pcm_s16le" else 1
    size = sample_rate * frame_ms // 1000 * width
    messages: list[dict] = []
    with connect(
        f"{url}/v1/stream", additional_headers=_headers(api_key), open_timeout=timeout, close_timeout=timeout
    ) as ws:
        ws.send(json.dumps({"sample_rate": sample_rate, "encoding": encoding, **(metadata or {})}))
        started = time.monotonic()
        for n, frame in enumerate(frames(audio, size)):
            if realtime:
                delay = started + n * frame_ms / 1000 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            ws.send(frame)
            while True:  # collect what has arrived, without waiting
                try:
                    messages.append(json.loads(ws.recv(timeout=0)))
                except TimeoutError:
                    break
        ws.send(json.dumps({"type": "stop"}))
        try:
            while True:
                messages.append(json.loads(ws.recv(timeout=timeout)))
        except Exception:  # noqa: BLE001 - the server closes the connection after the final decision
            pass
    return messages


async def stream_async(
    url: str,
    audio: bytes,
    *,
    sample_rate: int = 8000,
    api_key: str | None = None,
    metadata: dict[str, Any] | None = None,
    frame_ms: int = FRAME_MS,
    sent_at: list[float] | None = None,
) -> list[tuple[float, dict]]:
    """Real-time-paced call (one 20 ms frame every 20 ms) for load tests: returns
    (seconds since the first frame was sent, message) for every message received; if
    *sent_at* is given, the send time of every frame (same clock) is appended to it."""
    from websockets.asyncio.client import connect

    size = sample_rate * frame_ms // 1000 * 2
    received: list[tuple[float, dict]] = []
    async with connect(f"{url}/v1/stream", additional_headers=_headers(api_key), open_timeout=60) as ws:
        await ws.send(json.dumps({"sample_rate": sample_rate, "encoding": "pcm_s16le", **(metadata or {})}))
        started = time.monotonic()

        async def reader() -> None:
            async for raw in ws:
                received.append((time.monotonic() - started, json.loads(raw)))

        task = asyncio.create_task(reader())
        for n, frame in enumerate(frames(audio, size)):
            delay = started + n * frame_ms / 1000 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await ws.send(frame)
            if sent_at is not None:
                sent_at.append(time.monotonic() - started)
        await ws.send(json.dumps({"type": "stop"}))
        try:
            await asyncio.wait_for(task, timeout=30)
        except TimeoutError:
            task.cancel()
    return received
