"""The recipe's network: denormal weights flushed while it trains, nothing else changed."""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from training.network import Network, flush_denormals

TINY = np.finfo(np.float32).tiny


def denormals(arrays) -> int:
    return sum(int(np.count_nonzero((a != 0) & (np.abs(a) < TINY))) for a in arrays)


def test_only_denormals_are_zeroed():
    values = np.array([1.0, -2e-30, TINY, 3e-39, -1e-41, 0.0, 1e-45], dtype=np.float32)
    assert flush_denormals([values]) == 3
    np.testing.assert_array_equal(values, np.array([1.0, -2e-30, TINY, 0, 0, 0, 0], dtype=np.float32))
    assert flush_denormals([values]) == 0


def test_training_flushes_denormals_and_learns_the_same_network():
    # inputs that carry nothing and weight decay: their weights end as denormals
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 20)).astype(np.float32)
    x[:, 10:] = 0
    y = (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 1)
    params = dict(hidden_layer_sizes=(64, 32), alpha=3e-2, batch_size=16, max_iter=40, random_state=0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        reference = MLPClassifier(**params).fit(x, y)
        network = Network(**params).fit(x, y)
    assert denormals(reference.coefs_) > 100  # the premise: scikit-learn alone leaves them
    assert network.denormals_flushed_ > 100  # the hook runs (scikit-learn still calls _backprop)
    assert denormals(network.coefs_) < denormals(reference.coefs_)
    plain = network.plain()
    assert type(plain) is MLPClassifier
    # the flushed weights carried nothing, so the network is the one scikit-learn trains:
    # the same probabilities on the training windows and on new ones
    unseen = rng.standard_normal((500, 20)).astype(np.float32)
    unseen[:, 10:] = 0
    for data in (x, unseen):
        np.testing.assert_allclose(
            plain.predict_proba(data), reference.predict_proba(data), rtol=0, atol=1e-6
        )
