"""Load: N concurrent real-time calls over loopback WebSockets; added decision latency.

    python -m benchmarks.load [--calls 50 100 150 200] [--workers 2] [--post-clients 4]
                              [--asr-model PATH]

The service runs in its own processes (``audio-classifier serve``), the simulated calls in
this one: each streams 20 ms frames at real-time pace (ringback, then a busy tone, a SIT or
a congestion tone), so the deciding audio of a call has been sent ``decided_at_s`` after its
first frame. Added latency = arrival of the final decision - the moment the frame that
completed the deciding audio left the client (the client runs on the same two cores and
can fall behind real time; how far is reported too). Reported per N:
p50/p95/max added latency, failed calls, the server's CPU (cores) and RSS. Both share the
machine's 2 cores, so the client's own cost is part of the measurement. With
``--post-clients K``, K more clients POST files to ``/v1/classify`` back to back while the
calls run (each a 12 s recording of ringback then a busy tone, analysed to its end), and
their throughput is reported: file classification must not starve the live calls.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import numpy as np

from audio_classifier import synth
from audio_classifier.client import stream_async

LATENCY_TARGET_S = 0.3


def call_audio(i: int, rng: np.random.Generator) -> bytes:
    lead = synth.cadenced(
        synth.spec("CN", "ringback"), rng.uniform(1.0, 3.0), start_offset_s=rng.uniform(0, 1)
    )
    tails = [
        synth.cadenced(synth.spec("CN", "busy"), 4.0),
        np.concatenate([synth.sit("vc"), synth.silence(2.0)]),
        synth.cadenced(synth.spec("NANP", "reorder"), 3.0),
    ]
    x = np.concatenate([lead, tails[i % len(tails)]])
    x = synth.add_noise(x, 25.0, rng, reference=0.03)
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


def server_usage(pids: list[int]) -> tuple[float, float]:
    """(CPU seconds, RSS MB) of the server processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = rss = 0.0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / ticks
            rss += int(open(f"/proc/{pid}/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, IndexError):
            pass
    return cpu, rss


def server_pids(root: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(root)], capture_output=True, text=True).stdout.split()
    return [root, *map(int, out)]


POST_AUDIO_S = 12.0


def post_file() -> bytes:
    """A WAV of ringback then a busy tone, decided late: a file that costs its whole length."""
    import io

    import soundfile as sf

    x = np.concatenate(
        [
            synth.cadenced(synth.spec("CN", "ringback"), POST_AUDIO_S - 4.0),
            synth.cadenced(synth.spec("CN", "busy"), 4.0),
        ]
    )
    buffer = io.BytesIO()
    sf.write(buffer, x, 8000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


async def post_files(url: str, clients: int, stop: asyncio.Event) -> tuple[int, int]:
    """(files classified, failures) by *clients* POSTing back to back until *stop*."""
    body = post_file()
    done = failed = 0

    async def client() -> None:
        nonlocal done, failed
        async with httpx.AsyncClient(timeout=120) as http:
            while not stop.is_set():
                try:
                    r = await http.post(f"{url}/v1/classify", content=body)
                    done, failed = (done + 1, failed) if r.status_code == 200 else (done, failed + 1)
                except httpx.HTTPError:
                    failed += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return done, failed


async def run_with_posts(
    ws_url: str, http_url: str, n: int, seed: int, post_clients: int
) -> tuple[list[tuple[float | None, float, str]], tuple[int, int]]:
    stop = asyncio.Event()
    posting = asyncio.create_task(post_files(http_url, post_clients, stop)) if post_clients else None
    if posting is not None:
        await asyncio.sleep(1.0)  # the uploads are under way before the calls start
    results = await run_calls(ws_url, n, seed)
    stop.set()
    posts = await posting if posting is not None else (0, 0)
    return results, posts


async def run_calls(url: str, n: int, seed: int) -> list[tuple[float | None, float, str]]:
    rng = np.random.default_rng(seed)
    audios = [call_audio(i, rng) for i in range(n)]

    async def one(i: int) -> tuple[float | None, float, str]:
        await asyncio.sleep(i * 1.0 / n)  # calls start over one second
        sent: list[float] = []
        try:
            received = await stream_async(url, audios[i], sent_at=sent)
        except Exception as exc:  # noqa: BLE001 - a failed call is counted, not fatal
            return None, 0.0, f"error: {type(exc).__name__}"
        finals = [(t, m) for t, m in received if m.get("type") == "decision" and m.get("final")]
        if not finals:
            return None, 0.0, "no final decision"
        t, message = finals[0]
        # the frame that completed the deciding audio, and when it actually left the client
        frame = min(len(sent) - 1, max(0, int(np.ceil(message["decided_at_s"] / 0.02 - 1e-9)) - 1))
        lag = sent[frame] - frame * 0.02  # how far behind real time the client was sending
        return t - sent[frame], lag, message["label"]

    return await asyncio.gather(*(one(i) for i in range(n)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[50, 100, 150, 200])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--asr-model", help="also run the speech channel with this model")
    parser.add_argument("--post-clients", type=int, default=0, help="clients POSTing files meanwhile")
    parser.add_argument(
        "--file-processes",
        type=int,
        default=1,
        help="the server's --file-processes (0: files in its threads)",
    )
    args = parser.parse_args(argv)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "audio_classifier.cli",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(args.workers),
        "--max-sessions",
        "2000",
        "--file-processes",
        str(args.file_processes),
    ]
    command += ["--asr-model", args.asr_model, "--asr-grammar", "off"] if args.asr_model else ["--no-asr"]
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        time.sleep(2.0 * args.workers)  # let every worker finish loading its models
        pids = server_pids(server.pid)
        print(
            f"server: {args.workers} worker(s), channels: tone + model + fingerprint"
            + (f" + speech ({args.asr_model})" if args.asr_model else "")
            + f"; pids {pids}"
        )
        best = 0
        for n in args.calls:
            cpu0, _ = server_usage(pids)
            wall0 = time.monotonic()
            results, (posted, post_failed) = asyncio.run(
                run_with_posts(f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}", n, n, args.post_clients)
            )
            wall = time.monotonic() - wall0
            cpu1, rss = server_usage(server_pids(server.pid))
            latencies = np.array([r[0] for r in results if r[0] is not None])
            lags = np.array([r[1] for r in results if r[0] is not None])
            failed = sum(r[0] is None for r in results)
            if len(latencies):
                p50, p95 = np.percentile(latencies, [50, 95])
                mx = latencies.max()
            else:
                p50 = p95 = mx = float("nan")
            ok = failed == 0 and p95 <= LATENCY_TARGET_S
            best = n if ok else best
            print(
                f"{n:4d} calls: added latency p50 {1000 * p50:6.0f} ms, p95 {1000 * p95:6.0f} ms, max {1000 * mx:6.0f} ms;"
                f" failed {failed}; server CPU {(cpu1 - cpu0) / wall:.2f} cores, RSS {rss:.0f} MB;"
                f" client behind real time: p95 {1000 * np.percentile(lags, 95) if len(lags) else 0:.0f} ms"
                f"{'' if ok else '  <- over target'}"
            )
            if failed:
                reasons = sorted({r[2] for r in results if r[0] is None})
                print(f"      failures: {', '.join(reasons)}")
            if args.post_clients:
                print(
                    f"      meanwhile {args.post_clients} clients POSTed {posted} files of {POST_AUDIO_S:g} s "
                    f"({posted * POST_AUDIO_S / wall:.0f} s of audio per second), {post_failed} failed"
                )
        print(f"largest N with p95 added latency <= {1000 * LATENCY_TARGET_S:.0f} ms and no failure: {best}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
