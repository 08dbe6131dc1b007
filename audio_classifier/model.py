"""The trained-model channel: an ONNX classifier over window features, run by onnxruntime.

A model is two files side by side: ``NAME.onnx`` and ``NAME.json``, its card (labels,
feature configuration, calibration temperature, metrics, and the ONNX file's SHA-256).
Loading checks the card against the file and the feature version against this code, and
refuses a mismatch. scikit-learn is only needed to train, never here.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .embedding import EmbeddingFrontEnd, EmbeddingWindows, SpeechEmbedding
from .errors import ModelError
from .features import FEATURE_VERSION, FeatureConfig, WindowFeatures
from .labels import LABELS
from .resources import asset

CARD_FORMAT = 1
"""Version of the model-card layout."""

DEFAULT_MODEL = asset("early_media.onnx")
"""The shipped model (``models/`` in the repository, installed as ``audio_classifier.assets``)."""

DEFAULT_CONFIDENCE_MAP = DEFAULT_MODEL.with_name("early_media.confidence.json")
"""The shipped model's confidence map (``calibration.py``): decision scores to confidences."""

MODEL_ENV = "AUDIO_CLASSIFIER_MODEL"
"""Environment variable naming a model file to use instead of the default."""

EVIDENCE_DECAY = 0.85
"""Window log-probabilities are summed with this decay per window step (0.25 s): each
window adds what it heard, and what was heard ~1.5 s ago fades (ringback -> prompt)."""

LOG_PROB_FLOOR = 1e-6
"""Window probabilities are floored here: one window can not veto a class on its own."""


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelCard:
    """What a model is and how it must be fed (the ``.json`` beside the ``.onnx``)."""

    name: str
    version: str
    labels: tuple[str, ...]
    features: FeatureConfig
    temperature: float
    onnx_sha256: str
    extra: dict[str, Any]
    bias: tuple[float, ...] = ()
    """Per-label offsets added to the accumulated scores before the temperature (log units,
    in the order of ``labels``; empty: none). Fitted with the temperature, they correct the
    labels whose evidence the accumulation over-counts."""
    front_end: EmbeddingFrontEnd | None = None
    """What the network hears: speech embeddings (``embedding.py``) on the windows of
    ``features``, or (None) ``features``' own window summaries."""

    @property
    def dimension(self) -> int:
        """Values per window the network takes."""
        return self.front_end.dimension if self.front_end else self.features.dimension

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ModelCard:
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            raise ModelError(
                f"model card not found: {path} (every .onnx model needs its .json card)"
            ) from None
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read model card {path}: {exc}") from None
        if data.get("card_format") != CARD_FORMAT:
            raise ModelError(
                f"model card {path} has format {data.get('card_format')!r}; this version reads {CARD_FORMAT}"
            )
        try:
            features = FeatureConfig.from_dict(data["features"])
            labels = tuple(data["labels"])
            offsets = data.get("bias", {})
            strays = sorted(set(offsets) - set(labels))
            if strays:
                raise ModelError(f"model card {path} has a bias for labels it does not have: {strays}")
            bias = tuple(float(offsets.get(label, 0.0)) for label in labels) if offsets else ()
            front_end = EmbeddingFrontEnd.from_dict(data["front_end"]) if data.get("front_end") else None
            card = cls(
                name=data["name"],
                version=str(data["version"]),
                labels=labels,
                features=features,
                temperature=float(data.get("temperature", 1.0)),
                onnx_sha256=data["onnx_sha256"],
                extra={
                    k: v
                    for k, v in data.items()
                    if k
                    not in {
                        "name",
                        "version",
                        "labels",
                        "features",
                        "temperature",
                        "bias",
                        "onnx_sha256",
                        "front_end",
                    }
                },
                bias=bias,
                front_end=front_end,
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ModelError(f"model card {path} is missing or has a malformed field: {exc}") from None
        unknown = [label for label in labels if label not in LABELS]
        if unknown:
            raise ModelError(f"model card {path} names labels outside the taxonomy: {unknown}")
        if features.version != FEATURE_VERSION:
            raise ModelError(
                f"model {path} was trained on features version {features.version}; this code computes "
                f"version {FEATURE_VERSION}: retrain the model (training/README.md)"
            )
        return card


def window_probabilities(
    session, features: np.ndarray, input_name: str, output_name: str, n_labels: int
) -> np.ndarray:
    """An onnxruntime *session*'s probabilities for each window of *features* ``(n, dimension)``
    run alone, ``(n, n_labels)``: one window per run, as the stream calls it. The training
    recipe calibrates an int8 model through this too, so both see the same numbers."""
    rows = np.asarray(features, dtype=np.float32)
    out = [session.run([output_name], {input_name: rows[i : i + 1]})[0] for i in range(len(rows))]
    return np.concatenate(out) if out else np.zeros((0, n_labels), dtype=np.float32)


class OnnxModel:
    """The trained model at run time: its card and one onnxruntime session per process,
    thread-safe (``channels.model`` makes it a channel)."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, threads: int = 1) -> None:
        self.path = Path(path or os.environ.get(MODEL_ENV) or DEFAULT_MODEL)
        if not self.path.is_file():
            raise ModelError(f"model file not found: {self.path}")
        self.card = ModelCard.load(self.path.with_suffix(".json"))
        actual = sha256_file(self.path)
        if actual != self.card.onnx_sha256:
            raise ModelError(
                f"model file {self.path} does not match its card (sha256 {actual[:12]}... vs "
                f"{self.card.onnx_sha256[:12]}... in {self.path.with_suffix('.json').name}): "
                f"the file was changed or the card belongs to another model"
            )
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises untyped errors on bad files
            raise ModelError(f"onnxruntime cannot load {self.path}: {exc}") from None
        self._input = self._session.get_inputs()[0].name
        outputs = [o.name for o in self._session.get_outputs()]
        self._output = "probabilities" if "probabilities" in outputs else outputs[-1]
        width = self._session.get_inputs()[0].shape[-1]
        if isinstance(width, int) and width != self.card.dimension:
            raise ModelError(
                f"model {self.path} takes {width} features, its card's front-end gives {self.card.dimension}"
            )
        self._embedding: tuple[EmbeddingFrontEnd, SpeechEmbedding] | None = None
        if self.card.front_end is not None:
            try:
                self._embedding = (self.card.front_end, SpeechEmbedding(threads=threads))
            except Exception as exc:  # noqa: BLE001 - onnx and onnxruntime raise untyped errors on bad files
                raise ModelError(
                    f"model {self.path} hears speech embeddings, which cannot load: {exc}"
                ) from None

    def window_features(self) -> WindowFeatures | EmbeddingWindows:
        """A new stream of the window features this model takes."""
        if self._embedding is not None:
            return EmbeddingWindows(self.card.features, *self._embedding)
        return WindowFeatures(self.card.features)

    def log_probs(self, features: np.ndarray) -> np.ndarray:
        """Per-window class log-probabilities, ``(n, len(card.labels))`` for ``(n, dimension)``.

        One window per run, however many are given: a graph with int8
        weights quantises its whole input with one scale, so a window scored together with
        others would not get what it gets alone, and a window's result must not depend on how
        the audio was chunked.
        """
        probs = window_probabilities(
            self._session, features, self._input, self._output, len(self.card.labels)
        )
        return np.log(np.clip(probs, LOG_PROB_FLOOR, 1.0))

    @property
    def evidence_grid(self) -> tuple[int, int]:
        """``(first, step)``, samples: window *k* of a stream ends at sample ``first + k * step``."""
        f = self.card.features
        return f.frame_end_sample(f.window_frames), f.step_frames * f.hop


def accumulate(
    log_probs: np.ndarray, state: np.ndarray | None = None, decay: float = EVIDENCE_DECAY
) -> np.ndarray:
    """Leaky sums of consecutive windows' log-probabilities, ``(n, k)`` -> ``(n, k)``.

    *state* is the sum before the first row (``None``: nothing heard yet). Used by the
    stream and by the training recipe's calibration, so both see the same numbers.
    """
    out = np.empty_like(log_probs)
    # in the rows' own precision: each row's sum is what it would be had the rows come one
    # call at a time (a stream fed block by block carries ``out[-1]`` over)
    current = np.zeros(log_probs.shape[1], dtype=log_probs.dtype) if state is None else state
    for i, row in enumerate(log_probs):
        current = decay * current + row
        out[i] = current
    return out


def posterior(
    scores: np.ndarray, temperature: float, bias: np.ndarray | tuple[float, ...] = ()
) -> np.ndarray:
    """Calibrated probabilities from accumulated scores: softmax of (scores + bias) / temperature."""
    z = (scores + np.asarray(bias)) / temperature if len(bias) else scores / temperature
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)
