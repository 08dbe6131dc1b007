"""The speech-embedding front-end's cost beside today's log-mel window features.

    python -m benchmarks.embedding [--seconds 60] [--block-s 0.25] [--threads 1]

Streams the same speech-like audio, in blocks as a session feeds its channels, through
``features.WindowFeatures`` (the shipped model's front-end, the baseline) and through
``embedding.EmbeddingStream`` (resampling to 16 kHz, mel model, embedding model), and prints
CPU milliseconds per second of audio, real-time factor per core, and the ratio of the two
in the same run. A first pass of each warms caches, numba and onnxruntime up and is not
counted.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from audio_classifier import synth
from audio_classifier.audio import SAMPLE_RATE
from audio_classifier.embedding import SpeechEmbedding
from audio_classifier.features import WindowFeatures
from audio_classifier.model import ModelCard
from audio_classifier.resources import asset


def _feed(stream_push, stream_finish, audio: np.ndarray, block: int) -> float:
    start = time.process_time()
    for i in range(0, len(audio), block):
        stream_push(audio[i : i + block])
    stream_finish()
    return time.process_time() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--block-s", type=float, default=0.25)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    args = parser.parse_args(argv)
    audio = synth.speech_like(args.seconds, np.random.default_rng(0))
    block = int(args.block_s * SAMPLE_RATE)
    config = ModelCard.load(asset("early_media.json")).features
    model = SpeechEmbedding(threads=args.threads)

    def logmel() -> float:
        stream = WindowFeatures(config)
        return _feed(stream.push, stream.finish, audio, block)

    def embedding() -> float:
        stream = model.stream()
        return _feed(stream.push, stream.finish, audio, block)

    logmel(), embedding()  # warm-up
    costs = {"log-mel window features (baseline)": logmel(), "speech embedding": embedding()}
    print(f"{args.seconds:g} s of speech-like audio in {args.block_s:g} s blocks, {args.threads} thread(s)")
    for name, cpu in costs.items():
        ms = 1000 * cpu / args.seconds
        print(
            f"  {name:36s} {ms:7.2f} ms CPU per audio s   {args.seconds / max(cpu, 1e-9):8.0f}x real time per core"
        )
    base, emb = costs.values()
    print(f"  ratio embedding / baseline: {emb / max(base, 1e-9):.1f}x")


if __name__ == "__main__":
    main()
