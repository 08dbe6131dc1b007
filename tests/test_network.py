"""The recipe's network: denormal weights flushed while it trains and at export, its Adam
step and weight decay compiled, nothing else changed."""

import json
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from audio_classifier.model import DEFAULT_MODEL, sha256_file
from training.network import FusedAdam, Network, flush_denormals
from training.train import export_onnx, flush_model_file

TINY = np.finfo(np.float32).tiny


def denormals(arrays) -> int:
    return sum(int(np.count_nonzero((a != 0) & (np.abs(a) < TINY))) for a in arrays)


def test_only_denormals_are_zeroed():
    values = np.array([1.0, -2e-30, TINY, 3e-39, -1e-41, 0.0, 1e-45], dtype=np.float32)
    assert flush_denormals([values]) == 3
    np.testing.assert_array_equal(values, np.array([1.0, -2e-30, TINY, 0, 0, 0, 0], dtype=np.float32))
    assert flush_denormals([values]) == 0


def graph_denormals(path) -> int:
    """Denormal numbers among the float initializers of the ONNX file at *path*."""
    arrays = [numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer]
    return denormals([a for a in arrays if a.dtype.kind == "f"])


def probabilities(path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"features": x})[0]


# inputs that carry nothing and weight decay: their weights end as denormals
PARAMS = dict(hidden_layer_sizes=(64, 32), alpha=3e-2, batch_size=16, max_iter=40, random_state=0)


def _data(rng, n: int) -> np.ndarray:
    x = rng.standard_normal((n, 20)).astype(np.float32)
    x[:, 10:] = 0
    return x


def _fit(estimator, x: np.ndarray):
    y = (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        return estimator.fit(x, y)


def test_training_flushes_denormals_and_learns_the_same_network():
    rng = np.random.default_rng(0)
    x = _data(rng, 2000)
    reference = _fit(MLPClassifier(**PARAMS), x)
    network = _fit(Network(**PARAMS), x)
    assert denormals(reference.coefs_) > 100  # the premise: scikit-learn alone leaves them
    assert network.denormals_flushed_ > 100  # the hook runs (scikit-learn still calls _backprop)
    assert denormals(network.coefs_) < denormals(reference.coefs_)
    plain = network.plain()
    assert type(plain) is MLPClassifier
    # the flushed weights carried nothing, so the network is the one scikit-learn trains:
    # the same probabilities on the training windows and on new ones
    unseen = _data(rng, 500)
    for data in (x, unseen):
        np.testing.assert_allclose(
            plain.predict_proba(data), reference.predict_proba(data), rtol=0, atol=1e-6
        )


def test_export_zeroes_denormals_and_keeps_the_probabilities(tmp_path):
    rng = np.random.default_rng(1)
    x = _data(rng, 2000)
    pipeline = _fit(make_pipeline(StandardScaler(), MLPClassifier(**PARAMS)), x)
    reference = pipeline[-1]  # scikit-learn's own network: denormals left in
    held = denormals(reference.coefs_) + denormals(reference.intercepts_)
    assert held > 100
    path = tmp_path / "m.onnx"
    assert export_onnx(pipeline, 20, path) == held
    assert graph_denormals(path) == 0
    unseen = _data(rng, 500)
    np.testing.assert_allclose(probabilities(path, unseen), pipeline.predict_proba(unseen), rtol=0, atol=1e-6)


def _with_denormals(path, count: int) -> None:
    """Put *count* denormal weights into the ONNX file at *path* (a model trained before
    the export zeroed them)."""
    graph_model = onnx.load(str(path))
    weights = max(graph_model.graph.initializer, key=lambda i: np.prod(i.dims))
    values = numpy_helper.to_array(weights).copy()
    values.flat[:count] = np.float32(3e-40)
    weights.CopyFrom(numpy_helper.from_array(values, weights.name))
    path.write_bytes(graph_model.SerializeToString())


def test_flush_model_file_rewrites_the_model_and_its_card(tmp_path):
    rng = np.random.default_rng(2)
    x = _data(rng, 500)
    path = tmp_path / "m.onnx"
    export_onnx(_fit(make_pipeline(StandardScaler(), MLPClassifier(**PARAMS)), x), 20, path)
    _with_denormals(path, 50)
    before = probabilities(path, x)
    card = {"name": "m", "onnx_sha256": sha256_file(path), "onnx_bytes": path.stat().st_size}
    path.with_suffix(".json").write_text(json.dumps(card), encoding="utf-8")

    assert flush_model_file(path) == 50
    assert graph_denormals(path) == 0
    updated = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    assert updated["onnx_sha256"] == sha256_file(path) != card["onnx_sha256"]
    assert updated["onnx_bytes"] == path.stat().st_size
    assert updated["name"] == "m"
    assert updated["denormals_zeroed"] == 50
    np.testing.assert_array_equal(probabilities(path, x), before)
    assert flush_model_file(path) == 0  # nothing left: the file stays as it is
    assert sha256_file(path) == updated["onnx_sha256"]


def test_flush_model_file_refuses_a_model_its_card_does_not_name(tmp_path):
    path = tmp_path / "m.onnx"
    x = _data(np.random.default_rng(3), 300)
    export_onnx(_fit(make_pipeline(StandardScaler(), MLPClassifier(**PARAMS)), x), 20, path)
    path.with_suffix(".json").write_text(json.dumps({"onnx_sha256": "0" * 64}), encoding="utf-8")
    data = path.read_bytes()
    with pytest.raises(ValueError, match="does not match its card"):
        flush_model_file(path)
    assert path.read_bytes() == data


def test_shipped_model_has_no_denormal_weights():
    """Each window is one matrix product per layer at run time, and denormal weights make it
    slow on x86: the second layer's took 230 us with them, 20 us without (docs/history.md,
    "Denormal weights at run time")."""
    assert graph_denormals(DEFAULT_MODEL) == 0


class _StockArithmetic(Network):
    """``Network`` with scikit-learn's own backward pass, Adam step and weight decay."""

    def _relu_softmax_backprop(self, *args):
        return MLPClassifier._backprop(self, *args)

    def _backprop(self, *args):
        result = super()._backprop(*args)
        if type(self._optimizer) is FusedAdam:
            self._optimizer.__class__ = AdamOptimizer
        return result

    def _compute_loss_grad(self, *args):
        return MLPClassifier._compute_loss_grad(self, *args)


def test_compiled_backprop_adam_and_decay_train_the_same_network_bit_for_bit():
    rng = np.random.default_rng(4)
    x = _data(rng, 1500)
    params = dict(PARAMS, max_iter=8, early_stopping=True, n_iter_no_change=20)
    fused = _fit(Network(**params), x)
    stock = _fit(_StockArithmetic(**params), x)
    assert type(fused._optimizer) is FusedAdam  # the hook still fires
    assert fused._compiled_backprop(None)  # and the compiled backward pass ran
    assert type(stock._optimizer) is AdamOptimizer
    assert fused.n_iter_ == stock.n_iter_ == 8
    for a, b in zip(fused.coefs_ + fused.intercepts_, stock.coefs_ + stock.intercepts_, strict=True):
        np.testing.assert_array_equal(a, b)
    assert fused.loss_curve_ == stock.loss_curve_
    assert fused.validation_scores_ == stock.validation_scores_


def test_fused_adam_matches_scikit_learns_step_by_step():
    rng = np.random.default_rng(5)
    shapes = [(37, 19), (19,), (19, 3)]
    start = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    fused_params = [p.copy() for p in start]
    stock_params = [p.copy() for p in start]
    fused = FusedAdam(fused_params, 1e-3, 0.9, 0.999, 1e-8)
    stock = AdamOptimizer(stock_params, 1e-3, 0.9, 0.999, 1e-8)
    for step in range(50):
        grads = [rng.standard_normal(s).astype(np.float32) * 10.0 ** -(step % 6) for s in shapes]
        grads[0][0] = 0  # a weight with no gradient (a unit that never fires)
        fused.update_params(fused_params, [g.copy() for g in grads])
        stock.update_params(stock_params, grads)
        for a, b in zip(fused_params + fused.ms + fused.vs, stock_params + stock.ms + stock.vs, strict=True):
            np.testing.assert_array_equal(a, b)
    assert fused.learning_rate == stock.learning_rate


def test_fused_adam_refuses_float64_weights():
    params = [np.zeros((3, 2))]
    with pytest.raises(TypeError, match="float32"):
        FusedAdam(params, 1e-3, 0.9, 0.999, 1e-8).update_params(params, [np.ones((3, 2))])


def test_the_plain_network_carries_scikit_learns_optimizer():
    network = _fit(Network(**dict(PARAMS, max_iter=2)), _data(np.random.default_rng(6), 300))
    plain = network.plain()
    assert type(plain._optimizer) is AdamOptimizer
    assert type(network._optimizer) is FusedAdam
    assert plain._optimizer.ms is network._optimizer.ms
