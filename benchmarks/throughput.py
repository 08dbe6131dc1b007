"""Batch-path throughput: audio-seconds analysed per CPU-second, beside an earlier revision.

    python -m benchmarks.throughput [--clips 100] [--seconds 20] [--repeat 3]
                                    [--baseline REV | --no-baseline]

Runs the classifier over a generated 8 kHz corpus (benchmarks/corpus.py) exactly as
``audio-classifier classify`` does (files read from disk, one session each), once with
early decisions (what production does) and once analysing every clip to its end (the
worst case), for each set of channels; then each channel alone, and all three together, as
CPU milliseconds per audio second, both from files and streamed live in 20 ms chunks of
16-bit PCM (the live path analyses one block at a time: nothing to batch).

The same configurations run, in the same run and on the same files, in a child process
over a git worktree of ``--baseline`` (default: the tree before the speed work, 748f8f9),
and the table shows the ratio. Machines here are shared and their speed drifts by a factor
of two within minutes: the two trees are measured in turn ``--repeat`` times (default 3)
and each figure is its fastest round.

Decisions: the file path may analyse several blocks at once (``ChannelStream.prepare``), so
every clip is also streamed to a session in 20 ms chunks, as a dialer sends it, and the
two decisions must be identical (label, confidence, decision time, evidence). The count of
decisions equal to the baseline revision's is printed too; it is all of them only when
the baseline has the same model and rules.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import cache
from pathlib import Path

import numpy as np

from .worktree import worktree

DEFAULT_BASELINE = "748f8f9"
"""The tree when the speed work (issue 32, item 7) began."""

CONFIGURATIONS = (
    ("tones + decision", {"model_path": None, "samples_path": None}),
    ("tones + fingerprints", {"model_path": None}),
    ("tones + model", {"samples_path": None}),
    ("tones + model + fingerprints (default)", {}),
)
"""Channel sets, as ``ClassifierConfig`` overrides (speech recognition always off)."""

# The measuring code runs both here and, as source, in the baseline's child process: it may
# use only what every revision has (Classifier, ClassifierConfig, classify_file, the
# channels' factories).
MEASURE = r'''
import json, sys, time
from dataclasses import replace
from pathlib import Path

from audio_classifier import Classifier, ClassifierConfig


def raw(decision):
    """A decision's fields and claims with their floats as computed (not rounded)."""
    claims = [[e.channel, e.label, e.score, e.start_s, e.end_s] for e in decision.evidence]
    return {"label": decision.label, "confidence": decision.confidence, "score": decision.score,
            "decided_at_s": decision.decided_at_s, "evidence": claims}


def channel_factories():
    """Each channel of the default set, loaded as the default configuration loads it."""
    loaded = Classifier(ClassifierConfig(asr_model=None)).channels
    return {c.info.name: c for c in loaded if c.info.name in ("tone", "model", "fingerprint")}


def measure(paths, configurations):
    """{name: {mode: [cpu_s, analysed_s]}}, {name: cpu_s} per channel alone (full analysis),
    and the default configuration's early decisions."""
    paths = [Path(p) for p in paths]
    Classifier().classify_file(paths[0])  # warm-up: imports, FFT plans, model session
    results, decisions = {}, []
    for name, overrides in configurations:
        base = ClassifierConfig(asr_model=None, **overrides)
        results[name] = {}
        for mode, config in (("early", base), ("full", replace(base, early_decision=False))):
            classifier = Classifier(config)
            analysed, start = 0.0, time.process_time()
            for path in paths:
                decision = classifier.classify_file(path)
                analysed += decision.analysed_s
                if not overrides and mode == "early":
                    decisions.append(raw(decision))
            results[name][mode] = [time.process_time() - start, analysed]
    calls = live_calls(paths)
    alone = {}
    factories = channel_factories()
    for name, factory in [*factories.items(), ("all", None)]:
        channels = list(factories.values()) if factory is None else [factory]
        classifier = Classifier(ClassifierConfig(asr_model=None, early_decision=False), channels=channels)
        start = time.process_time()
        for path in paths:
            classifier.classify_file(path)
        batch = time.process_time() - start
        start = time.process_time()
        for chunks in calls:
            session = classifier.open_session(8000, "pcm_s16le")
            for chunk in chunks:
                session.feed(chunk)
            session.close()
        alone[name] = [batch, time.process_time() - start]
    return results, alone, decisions


def live_calls(paths, chunk_ms=20):
    """Each file as 16-bit PCM cut into 20 ms chunks, as a dialer streams it (prepared
    before timing)."""
    import numpy as np
    import soundfile as sf

    calls = []
    for path in paths:
        data = sf.read(path, dtype="int16")[0].astype("<i2").tobytes()
        step = 2 * 8000 * chunk_ms // 1000
        calls.append([data[i : i + step] for i in range(0, len(data), step)])
    return calls


if __name__ == "__main__":
    job = json.load(sys.stdin)
    print(json.dumps(measure(job["paths"], job["configurations"])))
'''


@cache
def measuring() -> dict:
    """The measuring code's names, as this tree runs it."""
    namespace: dict = {"__name__": "benchmarks.throughput.measure"}
    exec(compile(MEASURE, "<measure>", "exec"), namespace)
    return namespace


def run_here(paths: list[Path]) -> tuple[dict, dict, list[dict]]:
    return measuring()["measure"]([str(p) for p in paths], CONFIGURATIONS)


@contextmanager
def baseline_tree(revision: str, folder: Path) -> Iterator[Path]:
    """A git worktree of *revision* with the measuring script in it; removed on exit."""
    with worktree(revision, folder) as tree:
        (tree / "_measure.py").write_text(MEASURE)
        yield tree


def run_baseline(tree: Path, paths: list[Path]) -> tuple[dict, dict, list[dict]]:
    """The same measurement over the baseline's worktree, in a child process."""
    job = json.dumps({"paths": [str(p) for p in paths], "configurations": CONFIGURATIONS})
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("AUDIO_CLASSIFIER_MODEL", None)
    done = subprocess.run(
        [sys.executable, str(tree / "_measure.py")],
        input=job,
        capture_output=True,
        text=True,
        cwd=tree,
        env=env,
    )
    if done.returncode:
        raise SystemExit(f"the baseline failed:\n{done.stderr[-2000:]}")
    return tuple(json.loads(done.stdout.splitlines()[-1]))


def fastest(runs: list[tuple[dict, dict, list[dict]]]) -> tuple[dict, dict, list[dict]]:
    """Per configuration and per channel, the run that took the least CPU: on a shared
    machine the others were slowed by something else, never sped up."""
    results = {
        name: {mode: min((r[0][name][mode] for r in runs), key=lambda m: m[0]) for mode in runs[0][0][name]}
        for name in runs[0][0]
    }
    alone = {name: [min(r[1][name][i] for r in runs) for i in range(2)] for name in runs[0][1]}
    return results, alone, runs[0][2]


def streamed_decisions(paths: list[Path], chunk_ms: float = 20.0) -> list[dict]:
    """The default configuration's early decisions with each file streamed in *chunk_ms*
    chunks of float32 samples, one block at a time: no ``prepare``."""
    from audio_classifier import Classifier, ClassifierConfig
    from audio_classifier.audio import open_file

    classifier = Classifier(ClassifierConfig(asr_model=None))
    out = []
    for path in paths:
        info, chunks = open_file(path)
        samples = np.concatenate([np.asarray(c, dtype=np.float32).reshape(-1) for c in chunks])
        session = classifier.open_session(info.sample_rate, "float32", channels=info.channels)
        session.source_duration_s = info.duration_s
        step = max(1, round(info.sample_rate * chunk_ms / 1000)) * info.channels
        for i in range(0, len(samples), step):
            session.feed(samples[i : i + step])
            if not session.wants_audio:
                break
        out.append(raw_decision(session.close()))
    return out


def raw_decision(decision) -> dict:
    """What ``raw`` in the measuring code gives, for this tree's streamed decisions."""
    return json.loads(json.dumps(measuring()["raw"](decision)))


def _key(decision: dict) -> tuple:
    return decision["label"], decision["confidence"], decision["decided_at_s"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git revision to compare with")
    parser.add_argument("--no-baseline", action="store_true", help="measure this tree only")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds, the trees in turn; each figure is its fastest round"
    )
    args = parser.parse_args(argv)
    from .corpus import make_corpus

    with tempfile.TemporaryDirectory() as tmp:
        paths = make_corpus(Path(tmp) / "corpus", args.clips, args.seconds)
        print(
            f"corpus: {args.clips} clips x {args.seconds:g} s at 8000 Hz = {args.clips * args.seconds:.0f} s"
        )
        here_runs, base_runs = [], []
        with ExitStack() as stack:
            tree = None if args.no_baseline else stack.enter_context(baseline_tree(args.baseline, Path(tmp)))
            for round_ in range(1, args.repeat + 1):  # the two trees in turn, so drifts hit both
                start = time.perf_counter()
                here_runs.append(run_here(paths))
                line = f"round {round_}: this tree {time.perf_counter() - start:.0f} s"
                if tree is not None:
                    start = time.perf_counter()
                    base_runs.append(run_baseline(tree, paths))
                    line += f", baseline {args.baseline} {time.perf_counter() - start:.0f} s"
                print(line)
        results, alone, decisions = fastest(here_runs)
        base = fastest(base_runs) if base_runs else None
        streamed = streamed_decisions(paths)

    def speed(cpu: float, analysed: float) -> float:
        return analysed / cpu

    print()
    header = f"{'channels':40s} {'mode':6s} {'x real time per core':>21s}"
    print(header + (f" {'baseline':>9s} {'ratio':>6s}" if base else ""))
    for name, _ in CONFIGURATIONS:
        for mode in ("early", "full"):
            now = speed(*results[name][mode])
            line = f"{name:40s} {mode:6s} {now:21.0f}"
            if base:
                then = speed(*base[0][name][mode])
                line += f" {then:9.0f} {now / then:5.2f}x"
            print(line)
    total = args.clips * args.seconds
    print("\neach channel alone, every clip to its end: CPU ms per audio second")
    print(f"  {'channel':14s} {'file':>6s} {'live 20 ms':>11s}" + ("   baseline: file, live" if base else ""))
    for name, (batch, live) in alone.items():
        line = f"  {name:14s} {1000 * batch / total:6.2f} {1000 * live / total:11.2f}"
        if base:
            then_batch, then_live = base[1][name]
            line += (
                f"   {1000 * then_batch / total:6.2f} ({then_batch / batch:4.2f}x),"
                f" {1000 * then_live / total:6.2f} ({then_live / live:4.2f}x)"
            )
        print(line)
    same = sum(a == b for a, b in zip(decisions, streamed, strict=True))
    print(
        f"\nfile path vs 20 ms streaming, default channels: {same} of {len(paths)} decisions identical "
        "(label, confidence, score, decision time and every claim, floats unrounded)"
    )
    if base:
        same_base = sum(_key(a) == _key(b) for a, b in zip(decisions, base[2], strict=True))
        print(
            f"decisions (label, confidence, decided_at_s) equal to {args.baseline}'s: {same_base} of {len(paths)}"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS (this process): {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
