"""Train the window classifier on a synthesised corpus, export it to ONNX with its card.

    python -m training.train --corpus corpus --out models/early_media.onnx

Window labels follow the call shape: a window holding at least ``MIN_SPEECH_S`` of the
announcement (or answer, or greeting) carries the clip's label; a window entirely before
it carries what was playing (ringback, silence); windows in between are left out. The
network is trained on finer classes than the labels: each wording of an announcement or
greeting, by the part of its sentence the window ends in (``window_target``); the
exported graph sums them back into labels.
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_classifier.config import FusionConfig
from audio_classifier.embedding import EmbeddingFrontEnd, SpeechEmbedding, clip_embedding_windows
from audio_classifier.features import FeatureConfig, clip_windows, window_ends
from audio_classifier.labels import LABELS
from audio_classifier.model import (
    CARD_FORMAT,
    LOG_PROB_FLOOR,
    accumulate,
    posterior,
    sha256_file,
    window_probabilities,
)

from .corpus import MODEL_LABELS
from .parallel import map_in_order

MIN_SPEECH_S = 0.3
"""A window needs this much of the announcement's (answer's, greeting's) speech to be
labelled with it. The same for every label: an answer ("喂？") is this short, and the first
0.3 s of an announcement sounds like one; leaving announcements' first second out taught the
model that a little speech after ringback is always a human answer (measured: 5 of 640
held-out announcements and 1 of 40 greetings were decided "human" about a second into them;
none with this setting)."""
MAX_WINDOWS_PER_CLIP = 24
"""Windows drawn per clip, so long clips do not dominate (40 instead: held-out macro-F1
0.952 -> 0.955 at 1,200 clips per label, within noise, for 1.5 min more training)."""
CALIBRATION_SHARE = 0.15
"""Share of training clips kept aside to fit the calibration temperature."""
HIDDEN_LAYERS = (768, 256)
"""Hidden layer sizes. (512, 256) until 2026-12-02: with pitch, two seeds of (768, 256)
scored 0.9768 / 0.9749 on the held-out split and 0.9773 / 0.9759 on 2,000 fresh clips, two
of (512, 256) 0.9691 / 0.9728 and 0.9688 / 0.9755 (docs/history.md, "A wider network")."""
PITCH = True
"""Summarise each window's pitch contour too (``FeatureConfig.pitch``): more accurate on
every check set and sooner (docs/history.md, "Pitch"). Off until 2026-12-02, when it cost
tones + model too much of its speed; int8 weights (``WEIGHTS_INT8``) pay for it."""
ENSEMBLE_SIZE = 1
"""Networks trained with different seeds on the same windows; the model averages their
probabilities. On 2 s window features (FEATURE_VERSION 2), two networks scored held-out
macro-F1 0.971 where each alone scored 0.964 and 0.957 (model channel alone, calibration
refitted), and the shipped model had two. With the recent second summarised on its own
(version 3: 922 inputs) single networks score 0.965 and 0.970 and the pair 0.969, while
two networks would cost 4.9 MB and take tones + model under 200x real time (193-210x
against 208-227x for one). Training several runs them on as many processes."""
L2_PENALTY = 3e-2
"""The networks' weight decay (scikit-learn's ``alpha``). At 1e-3 (until 2026-11-29) the
network was overconfident on windows its words cannot settle yet (calibration clips with no
lead-in, windows ending 1 to 0.25 s before the words settle the label: mean top probability
0.59, right 0.38), and that wrong evidence held decisions back. Measured on cached version-3 features (model channel alone, seeds 0 and
1, 16 epochs): calibration-clip window accuracy 0.614 -> 0.623 and log loss 1.35 -> 1.19;
held-out split macro-F1 0.965 / 0.970 -> 0.970 / 0.974, 2,000 fresh clips 0.954 / 0.966 ->
0.967 / 0.972, median decision 2.69 / 2.77 -> 2.77 / 2.79 s. At 1e-2 and 1e-1 (seed 1): fresh
0.958 and 0.967, the latter deciding at 2.87 s (softer windows need more of them)."""
MAX_EPOCHS = 16
"""Epochs per network; the best epoch's weights are kept (early stopping). Validation
accuracy levels off after about 12 epochs (0.631 and 0.627 for two seeds; best 0.632 and
0.628 by epoch 21 and 18, stopping at 28 and 25; 2 s features). Trained to the stop, the
version-2 pair scored 0.973 instead of 0.971. One version-3 network trains 16 epochs in
about 490 s on the machines of 2026-11-29 and in 454 s on an Intel Xeon (903 s there before
``network.py`` zeroed denormal weights); the recipe's (768, 256) network with pitch, 815 s
with scikit-learn's Adam step and 474 s with ``network.FusedAdam`` (2026-12-02). To the stop
it would not fit the 30-minute build."""
WEIGHTS_INT8 = True
"""Export the network with int8 weights (7-bit, per output unit: ``quantize_int8``) instead
of float32, calibrated on the int8 network's own outputs. The wider network with pitch
costs 163 us a window in float32 and 33-34 us in int8, which keeps tones + model over 200x
real time; on the held-out split it scored 0.9768 in float32 and 0.9755 in int8
(docs/history.md, "Weights in int8")."""
WORDING_TARGETS = True
"""Teach the network each wording of an announcement or greeting (each sentence of
``prompts.json``, by ``SENTENCE_PARTS``) as a class of its own, and export it with those
classes' probabilities summed per label (``window_target``, ``export_onnx``): the run time
sees labels. One label's wordings are different sounds (Mandarin and English, several
sentences), and learning them apart makes the windows right sooner. On cached features of
one corpus ((768, 256) with pitch, float32, tones + model), wordings alone moved the
held-out split from 0.9768 / 0.9749 at 2.77 s (seeds 0 / 1) to 0.9781 / 0.9743 at 2.67 /
2.71 s. Built with five parts (2026-12-02): 0.9836 at 2.53 s against 0.9755 at 2.77 s, and
English prompts in engines training never hears 0.942 / 0.917 against 0.900 / 0.888
(docs/history.md, "Wordings as classes")."""
SENTENCE_PARTS = 5
"""With ``WORDING_TARGETS``, each sentence is taught as this many classes, by where in it
the window ends (its first fifth, second, ...): the network learns how far into a wording
it is, not only which. Measured as for ``WORDING_TARGETS`` (seed 0), held-out split / fresh
clips: 1 part 0.9781 at 2.67 s / 0.9812 at 2.63 s; 3 parts 0.9785 at 2.52 s / 0.9778 at
2.52 s; 5 parts 0.9836 at 2.54 s / 0.9844 at 2.52 s."""
WINDOW_S = 1.5
"""Seconds of audio each window of the recipe's model summarises (``FeatureConfig.window_s``;
2 s until 2026-12-03). With ``WORDING_TARGETS`` by fifths, built on one corpus (seed 0),
tones + model: held-out split 0.9839 / ECE 0.039 at 2.48 s against 0.9836 / 0.042 at 2.53 s
with 2 s windows, 2,000 fresh clips 0.9832 at 2.43 s against 0.9844 at 2.52 s, English in
engines training never hears 0.967 / 0.925 against 0.942 / 0.917: the words that tell the
prompts apart weigh more in a shorter window, and the first window ends 0.5 s sooner
(docs/history.md, "Shorter windows, with wordings")."""
EMBEDDING_SEQUENCE = 0
"""0: the network hears ``features.summarise_windows``. N > 0 (``training.build --embedding
N``): it hears each window's last N speech embeddings in order (``embedding.EmbeddingFrontEnd``),
a front-end trained by others on real speech. Not the recipe: built on the shipped model's
corpus it was better on the synthetic split but not on real voices, at three to five times
the front-end's cost, and its files' licence is an open question upstream (docs/history.md,
"Speech embeddings as the front-end")."""
SINGLE_TARGET_LABELS = frozenset({"human"})
"""Labels taught as one class whatever was said: the answers are hundreds of short phrases."""
TARGET_SEPARATOR = "|"
"""Between a label and the wording in a training class's name (``window_target``)."""
PART_SEPARATOR = "#"
"""Between the wording and the part of the sentence in a training class's name."""
MERGE_NODE = "labels_from_classes"
"""The exported graph's node that sums the classes' probabilities into the labels'."""
LEAD_WINDOW_LABELS = {"ringback": "ringback", "music": "color_ringback"}
"""What a window entirely inside a lead-in teaches (nothing or silence: "silence")."""
RECIPE_FILES = ("corpus.py", "channel.py", "music.py", "tts.py", "train.py", "network.py", "prompts.json")
"""What the recipe hash covers, with ``PACKAGE_FILES``. Not ``espeak_engine.py``: it speaks
what ``tts.py``'s command line says, bit for bit (tested), only faster."""

PACKAGE_FILES = ("features.py", "pitch.py", "synth.py", "tone_plans.py", "g711.py", "resample.py")
"""The code in ``audio_classifier/`` the recipe hash covers: the features, and what the corpus
is made with (tones and their plans, G.711 round trips, resampling of the voices). Not the
rest of what the recipe imports (``audio.frames_of``, ``model.accumulate``): that is the
run-time path itself, which a model must match whenever it changes, not only at a rebuild."""


@dataclass(frozen=True)
class Variant:
    """What a build may change from the recipe without editing it (``training.build --hidden
    --epochs --network-seed --pitch --int8 --wordings --window-s --embedding``), to measure an alternative on the
    same corpus. A model built with any of them records them in its card (``recipe_overrides``): its
    ``recipe_sha256`` then names the recipe it departs from, not the recipe that made it."""

    hidden: tuple[int, ...] = HIDDEN_LAYERS
    """Hidden layer sizes of each network."""
    epochs: int = MAX_EPOCHS
    network_seed: int = 0
    """Added to the seed of the networks' initial weights and minibatch order only: the
    windows drawn and the calibration clips stay those of ``train``'s seed, so variants are
    paired."""
    pitch: bool = PITCH
    """``PITCH``."""
    int8: bool = WEIGHTS_INT8
    """``WEIGHTS_INT8``."""
    wordings: bool = WORDING_TARGETS
    """``WORDING_TARGETS``."""
    window_s: float = WINDOW_S
    """``WINDOW_S``."""
    embedding: int = EMBEDDING_SEQUENCE
    """``EMBEDDING_SEQUENCE``."""

    def __post_init__(self) -> None:
        if not self.hidden or any(size < 1 for size in self.hidden):
            raise ValueError(f"hidden layer sizes must be positive, got {self.hidden}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.embedding < 0:
            raise ValueError(f"embedding must be 0 (off) or embeddings per window, got {self.embedding}")
        recent_s = FeatureConfig.recent_s
        if self.window_s < recent_s:
            raise ValueError(
                f"window_s must be at least the window's recent part summarised on its own "
                f"({recent_s} s), got {self.window_s}"
            )

    def features(self) -> FeatureConfig:
        """The feature configuration the variant's model is trained on."""
        return FeatureConfig(pitch=self.pitch, window_s=self.window_s)

    def front_end(self) -> EmbeddingFrontEnd | None:
        """The speech-embedding front-end the variant's model hears (None: the summaries)."""
        return EmbeddingFrontEnd(sequence=self.embedding) if self.embedding else None

    def overrides(self) -> dict:
        """The fields that differ from the recipe's, as a card stores them."""
        recipe = Variant()
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in asdict(self).items()
            if value != getattr(recipe, name)
        }


def recipe_hash() -> str:
    """SHA-256 over the recipe and the package code it uses: what produced the model."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in RECIPE_FILES:
        digest.update((here / name).read_bytes())
    for name in PACKAGE_FILES:
        digest.update((here.parent / "audio_classifier" / name).read_bytes())
    return digest.hexdigest()


def speech_spans(row: dict) -> list[tuple[float, float]]:
    spans = []
    for part in (row.get("speech") or "").split(";"):
        if part:
            a, b = part.split("-")
            spans.append((float(a), float(b)))
    return spans


def window_label(
    row: dict, start_s: float, end_s: float, spans: list[tuple[float, float]] | None = None
) -> str | None:
    """The label a window of a clip teaches, or None when the window is ambiguous
    (*spans*: the row's ``speech_spans``, when the caller has them)."""
    label = row["label"]
    spans = speech_spans(row) if spans is None else spans
    if not spans:
        return label  # tones, music, silence: the whole clip is the label
    onset = spans[0][0]
    if end_s <= onset:
        return LEAD_WINDOW_LABELS.get(row.get("lead") or "", "silence")
    heard = sum(max(0.0, min(end_s, b) - max(start_s, a)) for a, b in spans)
    return label if heard >= min(MIN_SPEECH_S, sum(b - a for a, b in spans)) else None


def label_of(target: str) -> str:
    """The label a training target belongs to (``window_target``)."""
    return target.split(TARGET_SEPARATOR, 1)[0]


def window_target(
    row: dict, start_s: float, end_s: float, spans: list[tuple[float, float]] | None = None
) -> str | None:
    """The class a window of a clip is trained on: its ``window_label``, and for speech of a
    worded label (``SINGLE_TARGET_LABELS`` aside) the wording of the sentence it ends in and
    which of the sentence's ``SENTENCE_PARTS`` it ends in, as ``"label|wording#part"``. The
    sentence is the latest speech span to have started by the window's end; a window ending
    in the pause after it ends in its last part."""
    spans = speech_spans(row) if spans is None else spans
    label = window_label(row, start_s, end_s, spans)
    if label != row["label"] or not spans or label in SINGLE_TARGET_LABELS:
        return label
    texts = row["texts"].split("|") if row.get("texts") else []
    sentence = max(i for i, (a, _) in enumerate(spans) if a < end_s)
    # a greeting and the beep after it have one text
    wording = texts[sentence] if len(texts) == len(spans) else row["text"]
    a, b = spans[sentence]
    part = int(min(max((end_s - a) / max(b - a, 1e-3), 0.0), 0.999) * SENTENCE_PARTS)
    return f"{label}{TARGET_SEPARATOR}{wording}{PART_SEPARATOR}{part}"


def clip_window_targets(args: tuple[str, dict, dict, bool]) -> list[str]:
    """The class each window of one clip is trained on ("" where none), in order: its
    ``window_target`` if *wordings*, else its ``window_label``; read from the clip's length
    alone."""
    root, row, config_dict, wordings = args
    config = FeatureConfig.from_dict(config_dict)
    info = sf.info(str(Path(root) / row["path"]))
    if info.samplerate != config.sample_rate:
        raise ValueError(f"{row['path']}: {info.samplerate} Hz, the recipe writes {config.sample_rate} Hz")
    spans = speech_spans(row)
    teach = window_target if wordings else window_label
    return [
        teach(row, end_s - config.window_s, end_s, spans) or "" for end_s in window_ends(info.frames, config)
    ]


@functools.cache
def _speech_embedding() -> SpeechEmbedding:
    """This process's speech-embedding models, loaded on first use."""
    return SpeechEmbedding()


def clip_features(args: tuple[str, dict, dict, list[int], dict | None]) -> np.ndarray:
    """The features of one clip's windows at the given positions, ``(len(keep), dimension)``."""
    root, row, config_dict, keep, front_end_dict = args
    config = FeatureConfig.from_dict(config_dict)
    samples, _ = sf.read(Path(root) / row["path"], dtype="float32")
    if front_end_dict:
        front_end = EmbeddingFrontEnd.from_dict(front_end_dict)
        windows = clip_embedding_windows(samples, config, front_end, _speech_embedding(), keep)
        dimension = front_end.dimension
    else:
        windows = clip_windows(samples, config, keep)
        dimension = config.dimension
    return np.stack([v for _, v in windows]) if windows else np.zeros((0, dimension), dtype=np.float32)


def select_windows(window_labels: list[list[str]], rng: np.random.Generator) -> list[list[int]]:
    """Per clip, the labelled windows to train on: at most MAX_WINDOWS_PER_CLIP, drawn at
    random, so long clips do not dominate."""
    chosen = []
    for labels in window_labels:
        keep = [i for i, label in enumerate(labels) if label]
        if len(keep) > MAX_WINDOWS_PER_CLIP:
            keep = sorted(rng.choice(keep, MAX_WINDOWS_PER_CLIP, replace=False))
        chosen.append([int(i) for i in keep])
    return chosen


def load_clips(
    corpus: Path,
    rows: list[dict],
    config: FeatureConfig,
    jobs: int,
    progress: bool,
    seed: int,
    wordings: bool,
    front_end: EmbeddingFrontEnd | None = None,
):
    """The clips split into training and calibration clips, and the classes the training
    windows are taught. Training clips are ``(window features, window targets, clip label)``
    (``clip_window_targets``), holding only the windows ``select_windows`` keeps;
    calibration clips ``(window features, window labels, clip label)`` with all their
    windows. Summaries are computed for those alone (about a quarter of the windows are
    not); speech embeddings for every window of a clip, then chosen (one run per clip)."""
    tasks = [(str(corpus), row, config.to_dict()) for row in rows]
    targets = map_in_order(
        clip_window_targets,
        [(*task, wordings) for task in tasks],
        jobs,
        desc="windows",
        unit="clip",
        chunksize=64,
        progress=progress,
    )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    n_calib = int(len(rows) * CALIBRATION_SHARE)
    keep: list[list[int]] = [[] for _ in rows]
    for i in order[:n_calib]:
        keep[i] = list(range(len(targets[i])))
    for i, chosen in zip(
        order[n_calib:], select_windows([targets[i] for i in order[n_calib:]], rng), strict=True
    ):
        keep[i] = chosen
    features = map_in_order(
        clip_features,
        [
            (*task, chosen, front_end.to_dict() if front_end else None)
            for task, chosen in zip(tasks, keep, strict=True)
        ],
        jobs,
        desc="features",
        unit="clip",
        chunksize=16,
        progress=progress,
    )
    fit = [(features[i], [targets[i][k] for k in keep[i]], rows[i]["label"]) for i in order[n_calib:]]
    calibration = [
        (features[i], [label_of(targets[i][k]) for k in keep[i]], rows[i]["label"]) for i in order[:n_calib]
    ]
    taught = {target for _, clip_targets, _ in fit for target in clip_targets if target}
    return fit, calibration, taught


def training_set(clips, index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """The training clips' windows and their target indices."""
    x = np.concatenate([matrix for matrix, _, _ in clips])
    return x, np.array([index[target] for _, targets, _ in clips for target in targets])


def fit_temperature(scores: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising negative log-likelihood of ``posterior(scores, T)``."""
    best_t, best_nll = 1.0, np.inf
    for t in np.exp(np.linspace(np.log(0.3), np.log(20.0), 120)):
        z = scores / t
        z -= z.max(axis=1, keepdims=True)
        nll = -np.mean(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1)))
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def fit_bias(scores: np.ndarray, y: np.ndarray, temperature: float) -> tuple[np.ndarray, float]:
    """Per-label offsets and a temperature minimising the negative log-likelihood of
    ``posterior(scores, T, bias)``, from *temperature* and no offsets (L-BFGS, exact
    gradient). The offsets are centred: only their differences matter."""
    from scipy.optimize import minimize

    k = scores.shape[1]
    rows = np.arange(len(y))
    onehot = np.zeros_like(scores)
    onehot[rows, y] = 1.0

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        bias, t = params[:k], np.exp(params[k])
        z = (scores + bias) / t
        shifted = z - z.max(axis=1, keepdims=True)
        p = np.exp(shifted)
        total = p.sum(axis=1, keepdims=True)
        p /= total
        nll = -np.mean(shifted[rows, y] - np.log(total[:, 0]))
        grad_bias = (p - onehot).mean(axis=0) / t
        grad_log_t = np.mean(z[rows, y] - (p * z).sum(axis=1))
        return float(nll), np.append(grad_bias, grad_log_t)

    result = minimize(loss, np.append(np.zeros(k), np.log(temperature)), jac=True, method="L-BFGS-B")
    bias = result.x[:k] - result.x[:k].mean()
    return bias, float(np.exp(result.x[k]))


def replay(predict_proba, clips, n_labels: int) -> list[np.ndarray]:
    """Each clip's accumulated scores as the run-time stream computes them, ``(windows, labels)``,
    from *predict_proba* (window features ``(n, dimension)`` -> probabilities ``(n, n_labels)``)."""
    return [
        accumulate(np.log(np.clip(predict_proba(matrix), LOG_PROB_FLOOR, 1.0)))
        if len(matrix)
        else np.zeros((0, n_labels))
        for matrix, _, _ in clips
    ]


def _onnx_session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # as at run time: not the unused-initializer notices
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_predict_proba(path: Path, n_labels: int):
    """The exported model at *path* as a ``predict_proba``, one window per run as the run time
    calls it (an int8 graph quantises its whole input with one scale)."""
    session = _onnx_session(path)
    return lambda matrix: window_probabilities(session, matrix, "features", "probabilities", n_labels)


INT8_MIN_AGREEMENT = 0.95
"""Share of check windows on which the int8 network's top label must be the float one's."""


def quantize_int8(path: Path) -> None:
    """Rewrite the float ONNX model at *path* with int8 weights: onnxruntime's dynamic
    quantisation, one scale per output unit, 7-bit weights (``reduce_range``: AVX2's kernels
    add pairs of uint8 x int8 products in 16 bits, which 8-bit weights can saturate and 7-bit
    ones cannot, so every x86 CPU computes the same integers), each input vector quantised to
    uint8 as it arrives. About 4 times faster per window than float32, a quarter of the file."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    float_path = path.with_name(path.stem + ".float32.onnx")
    path.replace(float_path)
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process is for conv nets
    try:
        quantize_dynamic(
            float_path,
            path,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            nodes_to_exclude=[MERGE_NODE],  # sums of probabilities, some of them tiny: kept exact
        )
    finally:
        logging.getLogger().setLevel(quiet)
        float_path.unlink()


def stream_scores(replayed: list[np.ndarray], clips, index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """The replayed scores at every labelled window, with the window labels."""
    scores, ys = [], []
    for acc, (_, labels, _) in zip(replayed, clips, strict=True):
        for i, label in enumerate(labels):
            if label:
                scores.append(acc[i])
                ys.append(index[label])
    return np.array(scores), np.array(ys)


DECISION_THRESHOLD = FusionConfig().decision_threshold


def fit_decision_temperature(
    replayed: list[np.ndarray],
    clips,
    labels: list[str],
    start: float,
    bias: np.ndarray | tuple[float, ...] = (),
) -> float:
    """The temperature that calibrates *decisions*, not windows.

    A session becomes final the first time a confidence crosses the threshold: with many
    looks, a per-window calibration is overconfident at that moment. This replays each
    calibration clip through the run-time accumulation and decision rule (first crossing
    by a non-progress label, else the last window) and minimises the log loss of the
    decisions' confidences. Never sharper than the per-window temperature *start*.
    """
    progress = np.array([LABELS[label].tier == "progress" for label in labels])
    index = {label: i for i, label in enumerate(labels)}
    runs = [
        (acc, index[clip_label])
        for acc, (_, _, clip_label) in zip(replayed, clips, strict=True)
        if len(acc) and clip_label in index
    ]
    if not runs:
        return start
    scores = np.concatenate([r[0] for r in runs])
    truths = np.array([r[1] for r in runs])
    lengths = np.array([len(r[0]) for r in runs])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    last = starts + lengths - 1
    positions = np.arange(len(scores))
    best_t, best_loss = start, np.inf
    for t in start * np.exp(np.linspace(0.0, np.log(8.0), 40)):
        p = posterior(scores, t, bias)
        top, confidence = p.argmax(axis=1), p.max(axis=1)
        crossing = np.where((confidence >= DECISION_THRESHOLD) & ~progress[top], positions, len(scores))
        first = np.minimum.reduceat(crossing, starts)
        chosen = np.where(first < starts + lengths, first, last)  # first crossing, else the last window
        c = np.clip(confidence[chosen], 1e-6, 1 - 1e-6)
        loss = float(np.mean(np.where(top[chosen] == truths, -np.log(c), -np.log(1 - c))))
        if loss < best_loss:
            best_t, best_loss = float(t), loss
    return best_t


def export_onnx(pipeline, dimension: int, path: Path, merge: np.ndarray | None = None) -> int:
    """Write *pipeline* as ONNX to *path*, free of denormal numbers; return how many were zeroed.

    With *merge* (``(classes, labels)``, 0 or 1), the graph's ``probabilities`` are the
    labels': the pipeline's class probabilities multiplied by it (node ``MERGE_NODE``)."""
    from onnx import TensorProto, helper, numpy_helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(
        pipeline,
        name=path.stem,  # skl2onnx's default is a random uuid: the same network would differ by file
        initial_types=[("features", FloatTensorType([None, dimension]))],
        options={id(pipeline): {"zipmap": False}},
        target_opset=17,
    )
    if merge is not None:
        graph = onx.graph
        for node in graph.node:  # the classes' probabilities, wherever the graph uses them
            node.input[:] = ["class_probabilities" if n == "probabilities" else n for n in node.input]
            node.output[:] = ["class_probabilities" if n == "probabilities" else n for n in node.output]
        graph.initializer.append(numpy_helper.from_array(merge.astype(np.float32), "class_to_label"))
        graph.node.append(
            helper.make_node(
                "MatMul", ["class_probabilities", "class_to_label"], ["probabilities"], name=MERGE_NODE
            )
        )
        del graph.output[:]
        graph.output.append(
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, merge.shape[1]])
        )
    flushed = flush_graph_denormals(onx)
    path.write_bytes(onx.SerializeToString())
    return flushed


def flush_graph_denormals(graph_model) -> int:
    """Zero the denormal numbers in an ONNX model's float initializers, in place; return how
    many there were.

    The run time multiplies one window at a time by the weights, and on x86 CPUs every
    product with a denormal takes a slow microcode path: the model shipped on 2026-12-02,
    trained before ``network.Network`` flushed them, held 23,091 (a sixth of its second
    layer), which made its onnxruntime session 2.2 times slower (docs/history.md, "Denormal
    weights at run time"). Training now flushes them every ``FLUSH_EVERY_BATCHES``; this
    catches the few the last minibatches leave. A denormal weight times an input of order
    one is far below what a float32 sum holds, so no output changes.
    """
    from onnx import numpy_helper

    from .network import flush_denormals

    flushed = 0
    for initializer in graph_model.graph.initializer:
        values = numpy_helper.to_array(initializer)
        if values.dtype.kind == "f":
            values = values.copy()  # to_array may return a read-only view of the raw bytes
            count = flush_denormals([values])
            if count:
                initializer.CopyFrom(numpy_helper.from_array(values, initializer.name))
                flushed += count
    return flushed


def flush_model_file(path: Path) -> int:
    """Zero the denormals of a built model's ONNX file (``flush_graph_denormals``), and update
    its card's ``onnx_sha256`` and ``onnx_bytes``, counting them in ``denormals_zeroed`` (the
    file is no longer the one its build wrote); return how many were zeroed. For models
    built before the recipe did it at export; the outputs stay the same."""
    import onnx

    if not path.is_file():
        raise ValueError(f"model file not found: {path}")
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    if sha256_file(path) != card.get("onnx_sha256"):
        raise ValueError(f"{path} does not match its card {card_path.name}: not rewriting either")
    try:
        graph_model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf raises its own untyped decode errors
        raise ValueError(f"{path} is not an ONNX model: {exc}") from None
    flushed = flush_graph_denormals(graph_model)
    if flushed:
        path.write_bytes(graph_model.SerializeToString())
        card["onnx_sha256"] = sha256_file(path)
        card["onnx_bytes"] = os.path.getsize(path)
        card["denormals_zeroed"] = card.get("denormals_zeroed", 0) + flushed
        write_card(path, card)
    return flushed


def train(
    corpus: Path,
    out: Path,
    jobs: int,
    seed: int = 0,
    progress: bool = True,
    variant: Variant | None = None,
    extra_rows: Sequence[dict] = (),
) -> dict:
    """Train on *corpus*'s ``train.csv`` and *extra_rows* (clips outside the corpus, such as
    ``training.recordings`` copies: their ``path`` absolute), export the model to *out* and
    return its card (not yet written)."""
    from sklearn.ensemble import VotingClassifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .network import Network

    variant = variant or Variant()
    config = variant.features()
    with open(corpus / "train.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rows += [dict(row) for row in extra_rows]
    started = time.time()
    front_end = variant.front_end()
    dimension = front_end.dimension if front_end else config.dimension
    fit_clips, calib_clips, taught = load_clips(
        corpus, rows, config, jobs, progress, seed, variant.wordings, front_end
    )
    n_calib = len(calib_clips)
    taught_labels = {label_of(target) for target in taught}
    labels = [label for label in MODEL_LABELS if label in taught_labels]
    index = {label: i for i, label in enumerate(labels)}
    targets = sorted(taught, key=lambda target: (index[label_of(target)], target))
    merge = None  # one class per label: nothing to sum
    if len(targets) > len(labels):
        merge = np.zeros((len(targets), len(labels)), dtype=np.float32)  # classes' probabilities -> labels'
        merge[np.arange(len(targets)), [index[label_of(target)] for target in targets]] = 1.0
    # a label no training window teaches (a tiny corpus) cannot be calibrated either
    calib_clips = [(m, [lb if lb in index else "" for lb in lbs], c) for m, lbs, c in calib_clips]
    x, y = training_set(fit_clips, {target: i for i, target in enumerate(targets)})
    featured = time.time()
    print(
        f"{len(x)} windows from {len(fit_clips)} clips ({n_calib} clips kept for calibration), "
        f"{len(labels)} labels taught as {len(targets)} classes, features in {featured - started:.0f} s; training "
        + (
            "1 network"
            if ENSEMBLE_SIZE == 1
            else f"{ENSEMBLE_SIZE} networks on {min(jobs, ENSEMBLE_SIZE)} processes"
        ),
        file=sys.stderr,
    )
    members = [
        (
            f"network{i}",
            make_pipeline(
                StandardScaler(),
                Network(
                    hidden_layer_sizes=variant.hidden,
                    alpha=L2_PENALTY,
                    batch_size=256,
                    learning_rate_init=1e-3,
                    max_iter=variant.epochs,
                    early_stopping=True,
                    n_iter_no_change=6,
                    random_state=seed + variant.network_seed + i,
                    verbose=progress and i == 0,  # one network's epochs: the others run alongside
                ),
            ),
        )
        for i in range(ENSEMBLE_SIZE)
    ]
    # the members train on their own processes (joblib shares the windows through memory maps)
    pipeline = VotingClassifier(
        members, voting="soft", flatten_transform=False, n_jobs=min(jobs, ENSEMBLE_SIZE), verbose=progress
    )
    with warnings.catch_warnings():
        # stopping at MAX_EPOCHS is the plan, not a failure to converge
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        pipeline.fit(x, y)
    fitted = time.time()
    flushed = 0
    for member in pipeline.estimators_:
        name, network = member.steps[-1]
        flushed += getattr(network, "denormals_flushed_", 0)
        member.steps[-1] = (name, network.plain())
    print(
        f"trained in {fitted - featured:.0f} s ({flushed} denormal weights flushed); calibrating and exporting",
        file=sys.stderr,
    )
    x_check = np.concatenate([m for m, _, _ in calib_clips[:20] if len(m)])
    out.parent.mkdir(parents=True, exist_ok=True)
    flushed_at_export = export_onnx(pipeline, dimension, out, merge)
    predict_proba = pipeline.predict_proba
    if merge is not None:
        predict_proba = lambda matrix: pipeline.predict_proba(matrix) @ merge  # noqa: E731
    # the exported graph must agree with scikit-learn
    onnx_probs = _onnx_session(out).run(["probabilities"], {"features": x_check.astype(np.float32)})[0]
    drift = float(np.abs(onnx_probs - predict_proba(x_check)).max())
    if drift > 1e-3:
        raise RuntimeError(f"ONNX export disagrees with scikit-learn by {drift}")
    if variant.int8:
        quantize_int8(out)
        predict_proba = onnx_predict_proba(out, len(labels))  # calibrated on what the run time computes
        agreement = float(np.mean(predict_proba(x_check).argmax(axis=1) == onnx_probs.argmax(axis=1)))
        if agreement < INT8_MIN_AGREEMENT:
            raise RuntimeError(
                f"the int8 network agrees with the float one on only {agreement:.3f} of windows"
            )
    replayed = replay(predict_proba, calib_clips, len(labels))  # once per calibration clip
    scores, y_calib = stream_scores(replayed, calib_clips, index)
    bias, window_temperature = fit_bias(scores, y_calib, fit_temperature(scores, y_calib))
    bias = np.round(bias, 4)  # as the card stores it
    window_accuracy = float(np.mean((scores + bias).argmax(axis=1) == y_calib))
    temperature = fit_decision_temperature(replayed, calib_clips, labels, window_temperature, bias)
    overrides = variant.overrides()
    card = {
        "card_format": CARD_FORMAT,
        "name": out.stem,
        "version": time.strftime("%Y.%m.%d"),
        "labels": labels,
        "features": config.to_dict(),
        **({"front_end": front_end.to_dict()} if front_end else {}),
        "temperature": round(temperature, 4),
        "window_temperature": round(window_temperature, 4),
        "bias": {label: round(float(b), 4) for label, b in zip(labels, bias, strict=True)},
        "estimator": f"StandardScaler + MLPClassifier{variant.hidden}"
        + (f", {ENSEMBLE_SIZE} seeds, probabilities averaged" if ENSEMBLE_SIZE > 1 else "")
        + (
            f", {len(targets)} classes (wordings by part of sentence) summed into labels"
            if variant.wordings
            else ""
        )
        + (", int8 weights (7-bit, per output unit)" if variant.int8 else ""),
        "network_iterations": [int(m.steps[-1][1].n_iter_) for m in pipeline.estimators_],
        "training_classes": len(targets),
        "recipe_sha256": recipe_hash(),
        **({"recipe_overrides": overrides} if overrides else {}),
        "corpus": {
            "train_clips": len(rows) - len(extra_rows),
            **({"recording_clips": len(extra_rows)} if extra_rows else {}),
            "training_windows": len(x),
            "path": str(corpus),
        },
        "calibration_stream_accuracy": round(window_accuracy, 4),
        "training_seconds": round(time.time() - started, 1),
        "onnx_sha256": sha256_file(out),
        "onnx_bytes": os.path.getsize(out),
    }
    write_card(out, card)
    print(
        f"calibrated and exported in {time.time() - fitted:.0f} s "
        f"({flushed_at_export} denormal numbers zeroed in the exported graph)",
        file=sys.stderr,
    )
    return card


def write_card(model_path: Path, card: dict) -> None:
    with open(model_path.with_suffix(".json"), "w", encoding="utf-8") as handle:
        json.dump(card, handle, indent=2, ensure_ascii=False)
        handle.write("\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument("--out", type=Path, default=Path("models/early_media.onnx"))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--flush-denormals",
        type=Path,
        metavar="MODEL",
        help="only zero the denormal weights of a built MODEL.onnx (and update its card), then exit",
    )
    args = parser.parse_args(argv)
    if args.flush_denormals:
        try:
            flushed = flush_model_file(args.flush_denormals)
        except (OSError, ValueError) as exc:
            parser.exit(1, f"error: {exc}\n")
        print(f"{args.flush_denormals}: {flushed} denormal numbers zeroed")
        return
    card = train(args.corpus, args.out, args.jobs)
    print(
        json.dumps(
            {k: card[k] for k in ("labels", "temperature", "calibration_stream_accuracy", "onnx_bytes")}
        )
    )


if __name__ == "__main__":
    main()
