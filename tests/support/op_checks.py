"""The checks every operator's tests run (tests/test_lut.py, test_concat.py, test_se.py): the CLI as
a subprocess, the C core against the numpy reference over training steps, the reference's gradients
against PyTorch autograd."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from host_tools.ccore.core import CoreModel
from host_tools.model import mct_format
from host_tools.reference import oracle as reference
from tests.support import torch_graph
from tests.support.graphgen import random_input

ROOT = Path(__file__).resolve().parents[2]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "host_tools", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


def core_trains_like_the_reference(data, rng, n_classes, steps=4):
    """Forward, loss and every trained tensor after `steps` steps: C core == numpy reference."""
    m = mct_format.load(data)
    ref, core = reference.Reference(m), CoreModel(data)
    for _ in range(steps):
        x, label = random_input(rng, m), int(rng.integers(0, n_classes))
        assert np.array_equal(core.forward(x, n_classes), ref.forward(x))
        assert core.train_step(x, label, 0.05) == pytest.approx(ref.train_step(x, label, 0.05), rel=1e-5)
    assert core.save() == m.to_bytes()


def gradients_are_autograds(m, rng, n_classes, luts=None, min_tensors=1, steps=3):
    """The reference's gradients of the trained tensors against autograd on the dequantized graph at
    the same int8 point: equal but for float32 rounding."""
    for _ in range(steps):
        ref = reference.Reference(m)
        x, label = random_input(rng, m), int(rng.integers(0, n_classes))
        want = torch_graph.autograd_grads(ref, x, label, luts)
        ref.train_step(x, label, 0.0)
        assert len(want) >= min_tensors
        for t, w in want.items():
            got = ref.grads[t].reshape(-1)[:w.size].astype(np.float64)
            w = w.reshape(-1)[:got.size]
            np.testing.assert_allclose(got, w, rtol=1e-4, atol=1e-5 * max(np.abs(w).max(), 1e-12))
