"""The recipe's network: scikit-learn's MLPClassifier, kept free of denormal weights as it
trains, with its Adam step and weight decay computed in one pass each.

With weight decay, the weights of hidden units that never fire (and of inputs that carry
nothing) get no gradient but the decay's, and Adam shrinks them until they are float32
denormals (below 1.2e-38). There they stay: the decay's own gradient underflows to zero.
Arithmetic on denormals takes a slow microcode path on x86 CPUs, and every matrix product
that touches one pays for it. On the recipe's 659,095 training windows an epoch took 20.5 s
with none, and 73 s by the fifth epoch with about 10,000 of the 600,000 weights denormal;
the build's 16 epochs took 903 s (measured 2026-12-02; docs/history.md, "Denormal weights").

Such a weight times an input of order one is far below what a float32 sum can hold, so
setting it to zero changes no activation: the network computes what it did, only faster
(on the recipe's corpus every probability of the calibration windows was the same; only
weights that carry nothing end differently). Once trained it is exported as a plain
``MLPClassifier``.

scikit-learn's Adam step makes about a dozen passes over the weights with a temporary
array each, half of them float64 (its learning rate is a numpy float64 scalar): for the
recipe's networks that was 43 % of the training time (measured on a (768, 256) network,
2026-12-02; docs/history.md, "Training time"). ``FusedAdam`` computes the same numbers, bit
for bit, in one compiled pass, as ``Network`` does its weight decay and, in its own copy of
scikit-learn's backward pass, the ReLU derivative (a boolean mask and a masked assignment
there, a tenth of the training time).

Imports scikit-learn and numba: import this module only where a network is trained.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import numpy as np
from numba import njit
from sklearn.neural_network import MLPClassifier
from sklearn.neural_network._base import LOSS_FUNCTIONS
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer

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


# error_model="numpy": no zero-division check in the loop, which lets LLVM vectorise it
# (1.1 ms instead of 2.1 ms for a (768, 256) network's weights; scikit-learn's: 6-8 ms)
@njit(nogil=True, error_model="numpy")
def _adam_step(param, grad, m, v, beta_1, share_1, beta_2, share_2, neg_rate, epsilon):
    """One Adam step over flat float32 arrays, in place: the arithmetic of scikit-learn's
    ``AdamOptimizer`` in its own order and precisions (float32 moments, float64 step)."""
    for i in range(param.size):
        g = grad[i]
        mi = beta_1 * m[i] + share_1 * g
        vi = beta_2 * v[i] + share_2 * (g * g)
        m[i] = mi
        v[i] = vi
        param[i] = np.float64(param[i]) + (neg_rate * np.float64(mi)) / np.float64(np.sqrt(vi) + epsilon)


@njit(nogil=True, error_model="numpy")
def _decayed(grad, weights, alpha, count):
    """``grad = (grad + alpha * weights) / count`` in place, as scikit-learn computes it."""
    for i in range(grad.size):
        grad[i] = (grad[i] + alpha * weights[i]) / count


@njit(nogil=True)
def _relu_backward(activation, delta):
    """``delta[activation == 0] = 0`` in place (scikit-learn's ReLU derivative)."""
    for i in range(delta.size):
        if activation[i] == 0:
            delta[i] = 0


def _flat(values: np.ndarray) -> np.ndarray:
    """A flat view of *values*, which the compiled loops update in place."""
    if not values.flags.c_contiguous:
        raise ValueError("expected a contiguous array")
    return values.reshape(-1)


class FusedAdam(AdamOptimizer):
    """scikit-learn's ``AdamOptimizer`` with each array's update in one compiled pass: the
    same moments and weights, bit for bit (``tests/test_network.py``). float32 weights only."""

    def update_params(self, params, grads):
        self.t += 1
        self.learning_rate = (
            self.learning_rate_init * np.sqrt(1 - self.beta_2**self.t) / (1 - self.beta_1**self.t)
        )
        for param, grad, m, v in zip(params, grads, self.ms, self.vs, strict=True):
            kind = param.dtype.type
            if kind is not np.float32:
                raise TypeError(f"FusedAdam updates float32 weights, got {param.dtype}")
            _adam_step(
                _flat(param),
                _flat(grad),
                _flat(m),
                _flat(v),
                kind(self.beta_1),
                kind(1 - self.beta_1),
                kind(self.beta_2),
                kind(1 - self.beta_2),
                np.float64(-self.learning_rate),
                kind(self.epsilon),
            )


class Network(MLPClassifier):
    """``MLPClassifier`` whose weights are flushed of denormals while it trains, and whose
    Adam step, weight decay and ReLU derivative run compiled (float32 inputs, the solver
    ``adam``, ReLU units and a softmax output; anything else trains as scikit-learn does).

    The hooks run from ``_backprop``, which scikit-learn calls once per minibatch with the
    weights as the optimizer left them, just after it has made its optimizer
    (``tests/test_network.py`` checks that it still does: a scikit-learn that renamed it
    would train slowly again, not wrongly).
    """

    def _backprop(self, *args):
        if type(self._optimizer) is AdamOptimizer and self.coefs_[0].dtype == np.float32:
            self._optimizer.__class__ = FusedAdam  # the same state; only update_params differs
        self.batches_seen_ = getattr(self, "batches_seen_", 0) + 1
        if self.batches_seen_ % FLUSH_EVERY_BATCHES == 0:
            self.denormals_flushed_ = getattr(self, "denormals_flushed_", 0) + flush_denormals(self.coefs_)
        if len(args) != 7 or not self._compiled_backprop(args[2]):
            return super()._backprop(*args)
        return self._relu_softmax_backprop(*args)

    def _compiled_backprop(self, sample_weight) -> bool:
        """Whether this minibatch takes ``_relu_softmax_backprop`` (else scikit-learn's own)."""
        return (
            sample_weight is None
            and self.activation == "relu"
            and self.out_activation_ == "softmax"
            and self.loss == "log_loss"
            and self.coefs_[0].dtype == np.float32
        )

    def _relu_softmax_backprop(self, X, y, sample_weight, activations, deltas, coef_grads, intercept_grads):
        """scikit-learn 1.9's ``_backprop`` for ReLU units, a softmax output and no sample
        weights, step for step, with the ReLU derivative compiled (``tests/test_network.py``
        compares it with scikit-learn's, which it must follow if that changes)."""
        n_samples = X.shape[0]
        activations = self._forward_pass(activations)
        loss = LOSS_FUNCTIONS["log_loss"](y, activations[-1], None)
        values = 0
        for s in self.coefs_:
            s = s.ravel()
            values += np.dot(s, s)
        loss += (0.5 * self.alpha) * values / n_samples
        last = self.n_layers_ - 2
        deltas[last] = activations[-1] - y
        self._compute_loss_grad(last, n_samples, activations, deltas, coef_grads, intercept_grads)
        for i in range(last, 0, -1):
            deltas[i - 1] = deltas[i] @ self.coefs_[i].T
            _relu_backward(_flat(activations[i]), _flat(deltas[i - 1]))
            self._compute_loss_grad(i - 1, n_samples, activations, deltas, coef_grads, intercept_grads)
        return loss, coef_grads, intercept_grads

    def plain(self) -> MLPClassifier:
        """The trained network as a plain ``MLPClassifier`` (what skl2onnx converts)."""
        network = MLPClassifier(**self.get_params())
        network.__dict__.update(self.__dict__)
        if type(self._optimizer) is FusedAdam:  # unpickling it would then need this module
            network._optimizer = copy.copy(self._optimizer)
            network._optimizer.__class__ = AdamOptimizer
        return network

    def _compute_loss_grad(self, layer, sw_sum, activations, deltas, coef_grads, intercept_grads):
        weights = self.coefs_[layer]
        # Python numbers are weak: scikit-learn's arithmetic stays float32, as here
        if weights.dtype != np.float32 or type(self.alpha) is not float or type(sw_sum) is not int:
            return super()._compute_loss_grad(layer, sw_sum, activations, deltas, coef_grads, intercept_grads)
        # scikit-learn's own, with the decay and the division in one pass
        coef_grads[layer] = activations[layer].T @ deltas[layer]
        _decayed(_flat(coef_grads[layer]), _flat(weights), np.float32(self.alpha), np.float32(sw_sum))
        intercept_grads[layer] = np.sum(deltas[layer], axis=0) / sw_sum
