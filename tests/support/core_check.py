"""The C core against the numpy reference on the same training steps."""
import pytest

from host_tools.ccore.core import CoreModel
from host_tools.reference import oracle as reference
from tests.support.graphgen import random_input


def assert_trains_like_reference(rng, data, m, qas=True, steps=4):
    """`steps` SGD steps (random inputs, labels, learning rates) on the C core and on the reference:
    the same losses, identical saved files (every trained int8/int32 tensor), the same skipped updates."""
    ref, core = reference.Reference(m, qas=qas), CoreModel(data, qas=qas)
    for _ in range(steps):
        x, label = random_input(rng, m), int(rng.integers(0, m.n_classes))
        lr = float(rng.choice([0.001, 0.01, 0.1, 0.5]))
        assert core.train_step(x, label, lr) == pytest.approx(ref.train_step(x, label, lr), rel=1e-5, abs=1e-6)
    assert core.save() == m.to_bytes()
    assert core.counters()["skipped_updates"] == ref.skipped_updates
