"""The trained-tensor index of the workspace (c_src/mct_model.c, docs/format.md "Workspace"): u16
entries while every copy's offset fits them (up to 256 KB of copies), u32 beyond; the size the C core
allocates is the host's numerics.model_trained_bytes, and the copies it finds train like the numpy
reference on either side of the limit."""
import numpy as np
import pytest

from host_tools.ccore.core import CoreModel
from host_tools.model import graph as g
from host_tools.model import mct_format
from host_tools.model import numerics
from host_tools.reference import oracle as reference


def _fc_graph(features, classes, rule):
    """A classifier alone on a (features, 1, 1) input: its weights are the trained copies."""
    rng = np.random.default_rng(features)
    fc = g.FullyConnected("fc", "x", "logits", rng.integers(-127, 128, size=(classes, features)).astype(np.int8),
                          rng.integers(-500, 500, size=classes).astype(np.int32),
                          rng.uniform(0.005, 0.03, size=classes).astype(np.float32), 1 / 64, 0,
                          float(0.02 * 128 * np.sqrt(features) * 0.3 / 64), 0)
    graph = g.Graph("x", "logits", {"x": (features, 1, 1), "logits": (classes, 1, 1)}, [fc], 1 / 64, 0)
    graph.update_rule = rule
    return rng, graph


@pytest.mark.parametrize("features,classes,rule,wide", [
    (64, 10, "stochastic", False),
    (4096, 63, "stochastic", False),        # 258,300 B of copies (weights and int32 biases): they fit
    (4096, 64, "stochastic", True),         # 262,400 B: past 4 x 65535, u32 entries
    (1024, 51, "master", False),            # float32 masters: 5 B per weight, 8 per bias
    (1024, 52, "master", True),
])
def test_workspace_is_the_hosts_figure_and_trains_like_the_reference(features, classes, rule, wide):
    rng, graph = _fc_graph(features, classes, rule)
    data = mct_format.to_bytes(graph)
    m = mct_format.load(data)
    core, ref = CoreModel(data), reference.Reference(mct_format.load(data))
    trained = numerics.model_trained_bytes(m)
    index = 4 * len(m.tensors) if wide else (2 * len(m.tensors) + 3) // 4 * 4
    assert core.mem()["trained"] == trained == index + sum(
        (n * t.itemsize + 3) // 4 * 4 + numerics.shadow_bytes(m.train_flags, n)
        for t, n in zip(m.tensors, m.trained_count) if n)
    core.seed(1)
    ref.seed(1)
    for _ in range(2):
        x = rng.integers(-128, 128, size=features, dtype=np.int8)
        label = int(rng.integers(0, classes))
        assert core.train_step(x, label, 0.1) == pytest.approx(ref.train_step(x, label, 0.1), rel=1e-5, abs=1e-6)
    assert core.save() == ref.m.to_bytes()
