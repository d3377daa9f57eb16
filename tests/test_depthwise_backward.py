"""The float32 backward of depthwise convs (c_src/mct_backward_dw_f32.c: a gather per input-gradient
element, the forward weights held while the trained ones are updated) against the numpy reference:
kernel shapes square and not, up to 7x7 and beyond (the scatter taken above 49 taps), strides 1 and
2, every padding, channel multipliers, maps smaller than the kernel, trained and untrained weights,
under every update rule."""
import numpy as np
import pytest

from host_tools.model import graph as g
from host_tools.model import mct_format
from host_tools.model import numerics
from host_tools.reference import oracle as reference
from tests.support.graphgen import random_input
from host_tools.ccore.core import CoreModel


def _conv(rng, name, inp, out, c_in, hw, c_out, kernel, stride, pad, groups, x_scale, x_zero, relu):
    kh, kw = kernel
    weight = rng.integers(-127, 128, size=(c_out, c_in // groups, kh, kw)).astype(np.int8)
    w_scales = rng.uniform(0.002, 0.02, size=c_out).astype(np.float32)
    bias = rng.integers(-2000, 2000, size=c_out).astype(np.int32)
    y_scale = float(x_scale * np.median(w_scales) * 128 * np.sqrt(c_in // groups * kh * kw) * 0.3)
    y_zero = -128 if relu else int(rng.integers(-20, 20))
    oh = (hw[0] + 2 * pad[0] - kh) // stride[0] + 1
    ow = (hw[1] + 2 * pad[1] - kw) // stride[1] + 1
    op = g.Conv2d(name, inp, out, weight, bias, w_scales, stride, pad, groups, x_scale, x_zero, y_scale, y_zero,
                  act_min=y_zero if relu else -128, act_max=127)
    return op, (c_out, oh, ow), y_scale, y_zero


def _graph(seed, hw, kernel, stride, pad, mult, rule, dw_weights):
    """x -> pointwise (trained, so the depthwise conv's input needs its gradient) -> depthwise ->
    pointwise -> global pool -> FC; every bias trained, the depthwise weights trained or not."""
    rng = np.random.default_rng(seed)
    c = 3
    shapes = {"x": (c, *hw)}
    xs, xz = 1 / 255, int(rng.integers(-128, 0))
    pw1, s1, cs, zs = _conv(rng, "pw1", "x", "e", c, hw, 5, (1, 1), (1, 1), (0, 0), 1, xs, xz, True)
    dw, s2, cs, zs = _conv(rng, "dw", "e", "d", 5, hw, 5 * mult, kernel, stride, pad, 5, cs, zs, True)
    pw2, s3, cs, zs = _conv(rng, "pw2", "d", "p", 5 * mult, s2[1:], 4, (1, 1), (1, 1), (0, 0), 1, cs, zs, False)
    shapes.update(e=s1, d=s2, p=s3, pooled=(4, 1, 1), logits=(6, 1, 1))
    w_scales = rng.uniform(0.005, 0.03, size=6).astype(np.float32)
    fc = g.FullyConnected("fc", "pooled", "logits", rng.integers(-127, 128, size=(6, 4)).astype(np.int8),
                          rng.integers(-500, 500, size=6).astype(np.int32), w_scales, cs, zs,
                          float(cs * np.median(w_scales) * 128 * 2 * 0.3), 0)
    ops = [pw1, dw, pw2, g.GlobalAvgPool("pool", "p", "pooled", cs, zs), fc]
    weight_update = {0: 1.0, 1: 0.6, 2: 0.5} if dw_weights else {0: 1.0, 2: 0.5}
    graph = g.Graph("x", "logits", shapes, ops, xs, xz, 3, True, weight_update=weight_update)
    graph.update_rule = rule
    return rng, graph


CASES = [   # (h, w), kernel, stride, padding, channel multiplier
    ((8, 8), (3, 3), (1, 1), (1, 1), 1),
    ((4, 4), (3, 3), (1, 1), (1, 1), 1),
    ((8, 8), (3, 3), (2, 2), (1, 1), 1),
    ((5, 7), (3, 3), (1, 1), (0, 1), 2),
    ((8, 8), (5, 5), (1, 1), (2, 2), 1),
    ((4, 4), (5, 5), (1, 1), (2, 2), 1),
    ((4, 4), (7, 7), (1, 1), (3, 3), 1),
    ((8, 8), (7, 7), (2, 2), (3, 3), 1),
    ((9, 6), (7, 7), (1, 2), (2, 3), 1),
    ((6, 10), (1, 9), (1, 1), (0, 4), 1),
    ((10, 5), (9, 1), (2, 1), (4, 0), 2),
    ((9, 9), (9, 9), (1, 1), (4, 4), 1),    # 81 taps: the scatter before the update
    ((8, 8), (5, 3), (1, 1), (2, 1), 1),
    ((8, 6), (3, 5), (1, 1), (0, 2), 1),
    ((6, 6), (5, 5), (1, 1), (1, 1), 2),
    ((3, 3), (3, 3), (1, 1), (1, 1), 1),
]


@pytest.mark.parametrize("dw_weights", [False, True])
@pytest.mark.parametrize("rule", list(numerics.UPDATE_RULES))
@pytest.mark.parametrize("case", range(len(CASES)))
def test_depthwise_backward_matches_the_reference(case, rule, dw_weights):
    hw, kernel, stride, pad, mult = CASES[case]
    rng, graph = _graph(case, hw, kernel, stride, pad, mult, rule, dw_weights)
    data = mct_format.to_bytes(graph)
    m = mct_format.load(data)
    core, ref = CoreModel(data), reference.Reference(mct_format.load(data))
    core.seed(1)
    ref.seed(1)
    for _ in range(3):
        x, label = random_input(rng, m), int(rng.integers(0, m.n_classes))
        lr = float(rng.choice([0.01, 0.1, 0.5]))
        assert core.train_step(x, label, lr) == pytest.approx(ref.train_step(x, label, lr), rel=1e-5, abs=1e-6)
    assert core.save() == ref.m.to_bytes()
    assert core.counters()["skipped_updates"] == ref.skipped_updates
