"""The recipe's network: scikit-learn's MLPClassifier, kept free of denormal weights as it trains.

With weight decay, the weights of hidden units that never fire (and of inputs that carry
nothing) get no gradient but the decay's, and Adam shrinks them until they are float32
denormals (below 1.2e-38). There they stay: the decay's own gradient underflows to zero.
Arithmetic on denormals takes a slow microcode path on x86 CPUs, and every matrix product
that touches one pays for it. On the recipe's 659,095 training windows an epoch took 20.5 s
with none, and 73 s by the fifth epoch with about 10,000 of the 600,000 weights denormal;
the build's 16 epochs took 903 s (measured 2026-12-02; docs/design.md, "Denormal weights").

Such a weight times an input of order one is far below what a float32 sum can hold, so
setting it to zero changes no activation: the network computes what it did, only faster
(on the recipe's corpus every probability of the calibration windows was the same; only
weights that carry nothing end differently). Once trained it is exported as a plain
``MLPClassifier``.

Imports scikit-learn: import this module only where a network is trained.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from sklearn.neural_network import MLPClassifier

FLUSH_EVERY_BATCHES = 64
"""Denormal weights are zeroed every this many minibatches: one pass over the weights costs
about as much as a tenth of a minibatch, and denormals appear at a few thousand an epoch
(an epoch is about 2,600 minibatches in the recipe)."""


def flush_denormals(arrays: Iterable[np.ndarray]) -> int:
    """Set the non-zero values of floating-point *arrays* below their type's smallest normal
    number to zero, in place; return how many there were."""
    flushed = 0
    for values in arrays:
        tiny = np.abs(values) < np.finfo(values.dtype).tiny
        tiny &= values != 0
        count = int(np.count_nonzero(tiny))
        if count:
            values[tiny] = 0
            flushed += count
    return flushed


class Network(MLPClassifier):
    """``MLPClassifier`` whose weights are flushed of denormals while it trains.

    The flush runs from ``_backprop``, which scikit-learn calls once per minibatch with the
    weights as the optimizer left them (``tests/test_network.py`` checks that it still does:
    a scikit-learn that renamed it would train slowly again, not wrongly).
    """

    def _backprop(self, *args, **kwargs):
        self.batches_seen_ = getattr(self, "batches_seen_", 0) + 1
        if self.batches_seen_ % FLUSH_EVERY_BATCHES == 0:
            self.denormals_flushed_ = getattr(self, "denormals_flushed_", 0) + flush_denormals(self.coefs_)
        return super()._backprop(*args, **kwargs)

    def plain(self) -> MLPClassifier:
        """The trained network as a plain ``MLPClassifier`` (what skl2onnx converts)."""
        network = MLPClassifier(**self.get_params())
        network.__dict__.update(self.__dict__)
        return network
