"""Batch-path throughput: audio-seconds analysed per CPU-second, and peak RSS.

    python -m benchmarks.throughput [--clips 100] [--seconds 20] [--block-s 0.25] [--live-ms 20]

Runs the classifier over a generated 8 kHz corpus (benchmarks/corpus.py) exactly as
``audio-classifier classify`` does (files read from disk, one session each), once with
early decisions (what production does) and once analysing every clip to its end (the
worst case). The baseline in the same run is the cost of only reading and decoding the
files, so the ratio says how much the analysis itself costs.

``--live-ms N`` also feeds the same clips to streaming sessions in N ms chunks of 16-bit
PCM, as a dialer does, at 8 kHz and at 16 kHz (resampled in the session), tones + model:
what the live path costs against the whole-file figure of the same run.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from audio_classifier import Classifier, ClassifierConfig
from audio_classifier.audio import SAMPLE_RATE, open_file
from audio_classifier.resample import resample

from .corpus import make_corpus


def _cpu() -> float:
    return time.process_time()


def decode_only(paths: list[Path]) -> float:
    """CPU seconds to read and convert the files, without analysis (the baseline)."""
    start = _cpu()
    for path in paths:
        info, chunks = open_file(path)
        converter = info.converter()
        for chunk in chunks:
            converter.push(chunk)
    return _cpu() - start


def classify_all(classifier: Classifier, paths: list[Path]) -> tuple[float, float]:
    """(CPU seconds, audio seconds analysed)."""
    analysed = 0.0
    start = _cpu()
    for path in paths:
        analysed += classifier.classify_file(path).analysed_s
    return _cpu() - start, analysed


def pcm_chunks(paths: list[Path], rate: int, chunk_ms: float) -> list[list[bytes]]:
    """Each file as 16-bit PCM at *rate* Hz, cut into *chunk_ms* chunks (prepared before
    timing: a dialer's audio arrives as such bytes)."""
    out = []
    for path in paths:
        info, chunks = open_file(path)
        samples = np.concatenate([np.asarray(c, dtype=np.float32).reshape(-1) for c in chunks])
        if rate != info.sample_rate:
            samples = resample(samples, info.sample_rate, rate)
        data = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
        step = 2 * max(1, round(rate * chunk_ms / 1000))
        out.append([data[i : i + step] for i in range(0, len(data), step)])
    return out


def stream_all(classifier: Classifier, calls: list[list[bytes]], rate: int) -> tuple[float, float]:
    """(CPU seconds, audio seconds analysed) feeding each call's chunks to a session."""
    analysed = 0.0
    start = _cpu()
    for chunks in calls:
        session = classifier.open_session(rate, "pcm_s16le")
        for chunk in chunks:
            session.feed(chunk)
            if not session.wants_audio:
                break
        analysed += session.close().analysed_s
    return _cpu() - start, analysed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--block-s",
        type=float,
        default=ClassifierConfig().block_s,
        help="analysis block length (the default's; 0.1 was the default before 2026-12-02)",
    )
    parser.add_argument(
        "--live-ms",
        type=float,
        default=0.0,
        help="also stream the clips to sessions in chunks of this many ms (e.g. 20; 0: not)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_corpus(Path(tmp), args.clips, args.seconds)
        total_audio = args.clips * args.seconds
        Classifier().classify_file(paths[0])  # warm-up (imports, FFT plans, model session)
        decode = decode_only(paths)
        print(
            f"corpus: {args.clips} clips x {args.seconds:g} s at {SAMPLE_RATE} Hz = {total_audio:.0f} s; "
            f"blocks of {args.block_s:g} s"
        )
        print(f"baseline (read + decode only): {total_audio / decode:8.0f} x real time per core")
        block = {"block_s": args.block_s}
        configurations = (
            (
                "tones + decision",
                ClassifierConfig(model_path=None, samples_path=None, asr_model=None, **block),
            ),
            ("tones + model", ClassifierConfig(samples_path=None, asr_model=None, **block)),
            ("tones + model + fingerprints (default)", ClassifierConfig(asr_model=None, **block)),
        )
        for name, base in configurations:
            for mode, config in (
                ("early decision", base),
                ("full analysis", replace(base, early_decision=False)),
            ):
                cpu, analysed = classify_all(Classifier(config), paths)
                print(
                    f"{name:40s} {mode:15s}: {analysed / cpu:7.0f} x real time per core "
                    f"({analysed:.0f} audio-s in {cpu:.2f} CPU-s)"
                )
        if args.live_ms:
            classifier = Classifier(configurations[1][1])
            for rate in (SAMPLE_RATE, 16000):
                calls = pcm_chunks(paths, rate, args.live_ms)
                cpu, analysed = stream_all(classifier, calls, rate)
                name = f"tones + model, live {args.live_ms:g} ms chunks"
                print(
                    f"{name:40s} {f'{rate} Hz PCM':15s}: {analysed / cpu:7.0f} x real time per core "
                    f"({analysed:.0f} audio-s in {cpu:.2f} CPU-s)"
                )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
