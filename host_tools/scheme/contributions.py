"""Contribution analysis (the paper's Section 3.2, which its code does not ship): what training each
part of the model gains, measured by simulation.

1. Simulate the device's int8 QAS training (the C core itself, host_tools.ccore.core) of a scheme on the
   user's labelled data and score it on a held-out split.
2. Contributions: the accuracy of training the classifier plus the biases of the last k convs, for
   every k; then, on top of the best k, the gain of each candidate conv's weights at each ratio.
The search over these gains is scheme/search.py.
"""
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np

from host_tools.ccore.core import CoreModel
from host_tools.errors import UserError
from host_tools.scheme.schemes import ModelSchemes, Scheme


def split(x, y, holdout, max_samples, seed):
    """Shuffled (x_train, y_train, x_held_out, y_held_out); at most max_samples in all."""
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(x))[:max_samples or None]
    n_test = int(round(len(idx) * holdout))
    if n_test < 1 or n_test >= len(idx):
        raise UserError(f"a held-out share of {holdout:g} of {len(idx)} samples leaves no training or "
                        f"no held-out sample: give more data or another --holdout")
    te, tr = idx[:n_test], idx[n_test:]
    return x[tr], y[tr], x[te], y[te]


class Simulator:
    """Held-out accuracy after training a scheme as the device would (batch 1 SGD, constant lr,
    `epochs` passes in a shuffled order), averaged over `repeats` orders. Cached per scheme."""

    def __init__(self, schemes: ModelSchemes, x_train, y_train, x_test, y_test, epochs=2, lr=0.05,
                 repeats=1, seed=0):
        self.schemes = schemes
        self.x_train, self.y_train = x_train, y_train
        self.x_test, self.y_test = x_test, y_test
        self.epochs, self.lr, self.repeats, self.seed = epochs, lr, repeats, seed
        self._cache: Dict[Scheme, float] = {}

    @property
    def simulated(self):
        """The schemes simulated so far."""
        return list(self._cache)

    def trains_nothing(self, s: Scheme):
        return not (s.classifier or s.n_bias or s.weights)

    def accuracy(self, s: Scheme) -> float:
        if s not in self._cache:
            data = self.schemes.rewrite(s)
            accs = []
            for r in range(1 if self.trains_nothing(s) else self.repeats):
                core = CoreModel(data)
                if not self.trains_nothing(s):
                    rng = np.random.default_rng(self.seed + r)
                    order = np.concatenate([rng.permutation(len(self.x_train)) for _ in range(self.epochs)])
                    core.train(self.x_train, self.y_train, order, self.lr)
                accs.append(float(np.mean(core.predict(self.x_test) == self.y_test)))
            self._cache[s] = float(np.mean(accs))
        return self._cache[s]


@dataclass
class Contributions:
    base_acc: float                              # nothing trained
    bias_acc: List[float]                        # classifier (if trained) + last k biases, k = 0..
    best_k: int
    weight_acc: Dict[Tuple[int, float], float]   # (conv index, ratio) on top of best_k
    classifier: bool

    def bias_gain(self, k):
        return self.bias_acc[k] - self.bias_acc[0]

    def weight_gain(self, i, r):
        return self.weight_acc[(i, r)] - self.bias_acc[self.best_k]

    def predicted(self, s: Scheme) -> float:
        """Summed gain of a scheme over training the classifier alone (the additive assumption)."""
        return self.bias_gain(s.n_bias) + sum(self.weight_gain(i, r) for i, r in s.weights)


def analyse(sim: Simulator, layers, ratios, max_bias, classifier=True, progress=None) -> Contributions:
    """progress: a callable(total) giving a tqdm-like bar, or None."""
    runs = [Scheme.make(k, classifier=classifier) for k in range(max_bias + 1)]
    bar = progress(len(runs) + len(layers) * len(ratios)) if progress else None
    bias_acc = []
    for s in runs:
        bias_acc.append(sim.accuracy(s))
        bar and bar.update(1)
    best_k = int(np.argmax(bias_acc))
    weight_acc = {}
    for i in layers:
        for r in ratios:
            weight_acc[(i, r)] = sim.accuracy(Scheme.make(best_k, {i: r}, classifier))
            bar and bar.update(1)
    bar and bar.close()
    base = sim.accuracy(Scheme.make(0, classifier=False))
    return Contributions(base, bias_acc, best_k, weight_acc, classifier)
