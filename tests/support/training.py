"""Training the C core on the host beside the numpy reference, and the C core built another way."""
import os

import numpy as np
import pytest

from host_tools.ccore import core
from host_tools.ccore.core import CoreModel
from host_tools.model import mct_format
from host_tools.reference import oracle as reference
from tests.support.graphgen import random_input


def train_beside_reference(data, m, rng, steps=3, lrs=(0.01, 0.1, 0.5)):
    """steps training steps of the C core and the reference on the same random inputs, labels and
    learning rates (drawn from lrs), each step's loss compared. Returns (core, reference, losses)."""
    c, ref = CoreModel(data), reference.Reference(mct_format.load(data))
    c.seed(1)        # the stream starts as the file's CRC, which the planner's flags change
    ref.seed(1)
    losses = []
    for _ in range(steps):
        x, label = random_input(rng, m), int(rng.integers(0, m.n_classes))
        lr = float(rng.choice(lrs))
        loss = c.train_step(x, label, lr)
        assert loss == pytest.approx(ref.train_step(x, label, lr), rel=1e-5, abs=1e-6)
        losses.append(loss)
    return c, ref, losses


def assert_same_tensors(core_a, core_b):
    """Two trained C cores' tensors are identical (the files may differ in their plans)."""
    for ta, tb in zip(mct_format.load(core_a.save()).tensors, mct_format.load(core_b.save()).tensors):
        assert np.array_equal(ta, tb)


def use_reference_kernel_build(tmp_path, monkeypatch):
    """The host C core from here on built with -DMCT_REFERENCE_KERNELS (the benchmarks' baseline
    build: requantization step by step, the general conv kernel for everything but pointwise), into
    tmp_path."""
    cc = tmp_path / "cc"
    cc.write_text(f'#!/bin/sh\nexec {os.environ.get("CC", "cc")} -DMCT_REFERENCE_KERNELS "$@"\n')
    cc.chmod(0o755)
    monkeypatch.setenv("CC", str(cc))
    monkeypatch.setattr(core, "LIB", tmp_path / "libmcutrain_reference.so")
    monkeypatch.setattr(core.CoreModel, "_lib", None)
    return core.LIB
