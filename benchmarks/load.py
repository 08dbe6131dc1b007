"""Load: N concurrent real-time calls over loopback WebSockets; added decision latency.

    python -m benchmarks.load [--calls 50 100 150 200] [--workers 2] [--post-clients 4]
                              [--asr-model PATH] [--baseline REV | --no-baseline] [--repeat 3]

The service runs in its own processes (``audio-classifier serve``), the simulated calls in
this one: each streams 20 ms frames at real-time pace (ringback, then a busy tone, a SIT or
a congestion tone), so the deciding audio of a call has been sent ``decided_at_s`` after its
first frame. Added latency = arrival of the final decision - the moment the frame that
completed the deciding audio left the client (the client runs on the same two cores and
can fall behind real time; how far is reported too). Reported per N:
p50/p95/max added latency, failed calls, the CPU (cores) of the serving processes, of the
file processes and of this client, and the server's RSS. They all share the machine's 2
cores, so the client's own cost is part of the measurement. The same runs are made against
a server from a git worktree of ``--baseline`` (default: the tree before the live path's
batching work), the two taking turns for ``--repeat`` rounds: this machine's speed drifts,
so only figures from the same run compare. With
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
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import numpy as np

from audio_classifier import synth
from audio_classifier.client import stream_async

from .worktree import REPO, worktree

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


def process_usage(pids: list[int]) -> dict[int, tuple[float, float, int]]:
    """{pid: (CPU seconds, RSS MB, niceness)} of the live ones among *pids*."""
    ticks = os.sysconf("SC_CLK_TCK")
    usage = {}
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            rss = int(open(f"/proc/{pid}/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, IndexError):
            continue
        usage[pid] = ((int(fields[11]) + int(fields[12])) / ticks, rss, int(fields[16]))
    return usage


def cores(before: dict, after: dict, wall: float, files: bool) -> float:
    """Cores used over *wall* by the serving processes, or (*files*) the niced file ones."""
    return (
        sum(cpu - before.get(pid, (0.0,))[0] for pid, (cpu, _, nice) in after.items() if (nice > 0) == files)
        / wall
    )


def server_pids(root: int) -> list[int]:
    """The server's process and all its descendants (workers, file processes), from /proc
    (no process started per look: the sampler runs on the cores it measures)."""
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/children") as children:
                    todo += map(int, children.read().split())
            except FileNotFoundError:
                if not os.path.exists(f"/proc/{pid}/task/{task}"):
                    continue  # the thread or process ended meanwhile
                raise SystemExit(
                    "this kernel has no /proc/<pid>/task/<tid>/children (CONFIG_PROC_CHILDREN): "
                    "the server's processes cannot be measured"
                ) from None
            except OSError:
                continue
    return pids


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


DEFAULT_BASELINE = "bc20c2d"
"""The tree before the live path's batching work (read-ahead, no WebSocket compression,
warm-up, files in the idle scheduling class)."""


@contextmanager
def server(tree: Path | None, args: argparse.Namespace) -> Iterator[tuple[subprocess.Popen, int]]:
    """``audio-classifier serve`` of this tree, or of the worktree *tree*; stopped on exit."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "audio_classifier.cli", "serve", "--port", str(port)]
    command += ["--workers", str(args.workers), "--max-sessions", "2000"]
    command += ["--file-processes", str(args.file_processes)]
    command += ["--asr-model", args.asr_model, "--asr-grammar", "off"] if args.asr_model else ["--no-asr"]
    # the server's log goes to a file (or nowhere): a pipe left unread would fill and block it
    log = open(os.environ.get("LOAD_SERVER_LOG", os.devnull), "ab")
    env = {**os.environ, "PYTHONPATH": str(tree or REPO)}
    env.pop("AUDIO_CLASSIFIER_MODEL", None)
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
        cwd=tree or REPO,
        env=env,
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
        yield process, port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


PEAK_S = 2.0
"""The busiest stretch reported: averages over a whole run hide the stretch where every
call is active at once, which is where the latency is made."""

SAMPLE_S = 0.25
"""How often the CPU of the server's processes and of this client is read."""


def sample_cpu(root: int, stop: threading.Event, out: list, cost: list) -> None:
    """Every ``SAMPLE_S``: (time, serving CPU s, file processes' CPU s, this process's CPU s
    less the sampler's own); *cost* gets the sampler's own CPU seconds."""
    while not stop.wait(SAMPLE_S):
        usage = process_usage(server_pids(root))
        serving = sum(u[0] for u in usage.values() if u[2] <= 0)
        files = sum(u[0] for u in usage.values() if u[2] > 0)
        cost[0] = time.thread_time()
        out.append((time.monotonic(), serving, files, time.process_time() - cost[0]))


def peak(samples: list) -> tuple[float, float, float]:
    """Cores used (serving, files, client) over the ``PEAK_S`` where serving used the most."""
    best = (0.0, 0.0, 0.0)
    for i, first in enumerate(samples):
        for last in samples[i + 1 :]:
            if last[0] - first[0] >= PEAK_S:
                wall = last[0] - first[0]
                rates = tuple((last[k] - first[k]) / wall for k in (1, 2, 3))
                best = max(best, rates)
                break
    return best


def measure(process: subprocess.Popen, port: int, n: int, post_clients: int) -> dict:
    """One run of *n* calls (and the uploads) against a running server."""
    usage0 = process_usage(server_pids(process.pid))
    client0 = time.process_time()
    wall0 = time.monotonic()
    stop, samples, cost = threading.Event(), [], [0.0]
    sampler = threading.Thread(target=sample_cpu, args=(process.pid, stop, samples, cost), daemon=True)
    sampler.start()
    results, (posted, post_failed) = asyncio.run(
        run_with_posts(f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}", n, n, post_clients)
    )
    stop.set()
    sampler.join()
    wall = time.monotonic() - wall0
    usage1 = process_usage(server_pids(process.pid))
    latencies = np.array([r[0] for r in results if r[0] is not None])
    lags = np.array([r[1] for r in results if r[0] is not None])
    p50, p95, mx = np.percentile(latencies, [50, 95, 100]) if len(latencies) else [float("nan")] * 3
    return {
        "p50": p50,
        "p95": p95,
        "max": mx,
        "failed": sum(r[0] is None for r in results),
        "reasons": sorted({r[2] for r in results if r[0] is None}),
        "serving": cores(usage0, usage1, wall, False),
        "files": cores(usage0, usage1, wall, True),
        "client": (time.process_time() - client0 - cost[0]) / wall,
        "peak": peak(samples),
        "rss": sum(u[1] for u in usage1.values()),
        "lag_p95": np.percentile(lags, 95) if len(lags) else 0.0,
        "posted": posted,
        "post_failed": post_failed,
        "audio_per_s": posted * POST_AUDIO_S / wall,
    }


def report(name: str, n: int, m: dict, post_clients: int) -> None:
    ok = m["failed"] == 0 and m["p95"] <= LATENCY_TARGET_S
    print(
        f"  {name:>9s} {n:4d} calls: added latency p50 {1000 * m['p50']:5.0f} ms, p95 {1000 * m['p95']:5.0f} ms,"
        f" max {1000 * m['max']:5.0f} ms; failed {m['failed']}{'' if ok else '  <- over target'}"
    )
    print(
        f"      CPU (cores), whole run / busiest {PEAK_S:g} s: serving {m['serving']:.2f} / {m['peak'][0]:.2f},"
        f" files {m['files']:.2f} / {m['peak'][1]:.2f}, client {m['client']:.2f} / {m['peak'][2]:.2f};"
        f" RSS {m['rss']:.0f} MB; client behind real time p95 {1000 * m['lag_p95']:.0f} ms"
    )
    if m["failed"]:
        print(f"      failures: {', '.join(m['reasons'])}")
    if post_clients:
        print(
            f"      meanwhile {post_clients} clients POSTed {m['posted']} files of {POST_AUDIO_S:g} s "
            f"({m['audio_per_s']:.0f} s of audio per second), {m['post_failed']} failed"
        )


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
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git revision to compare with")
    parser.add_argument("--no-baseline", action="store_true", help="measure this tree only")
    parser.add_argument("--repeat", type=int, default=1, help="rounds, the trees taking turns")
    args = parser.parse_args(argv)
    trees: dict[str, Path | None] = {"this tree": None}
    print(
        f"server: {args.workers} worker(s), channels: tone + model + fingerprint"
        + (f" + speech ({args.asr_model})" if args.asr_model else "")
        + f"; {args.post_clients} upload clients; target p95 <= {1000 * LATENCY_TARGET_S:.0f} ms"
    )
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        if not args.no_baseline:
            trees[args.baseline] = stack.enter_context(worktree(args.baseline, Path(tmp)))
        p95s: dict[tuple[str, int], list[float]] = {}
        for round_ in range(args.repeat):
            print(f"round {round_ + 1} of {args.repeat}")
            for name, tree in trees.items() if round_ % 2 == 0 else reversed(trees.items()):
                with server(tree, args) as (process, port):
                    for n in args.calls:
                        m = measure(process, port, n, args.post_clients)
                        report(name, n, m, args.post_clients)
                        ok = m["failed"] == 0
                        p95s.setdefault((name, n), []).append(m["p95"] if ok else float("inf"))
        print("p95 added latency, median over rounds (ms):")
        for n in args.calls:
            line = f"  {n:4d} calls: " + ", ".join(
                f"{name} {1000 * float(np.median(p95s[name, n])):.0f}" for name in trees
            )
            if len(trees) == 2:
                here, base = (float(np.median(p95s[name, n])) for name in trees)
                line += f"; baseline / this tree {base / here:.2f}x" if here > 0 else ""
            print(line)
        for name in trees:
            best = [n for n in args.calls if float(np.median(p95s[name, n])) <= LATENCY_TARGET_S]
            print(
                f"{name}: largest N with median p95 <= {1000 * LATENCY_TARGET_S:.0f} ms: {max(best, default=0)}"
            )


if __name__ == "__main__":
    main()
