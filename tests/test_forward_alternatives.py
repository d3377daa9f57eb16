"""bench/forward_alternatives.py (make bench-forward): its memory model agrees with the planner where
they are comparable (whole tensors, the patch stage), and the in-place and fused models never report
less than what their ops must keep at once."""
import sys

import numpy as np
import pytest

from conftest import ROOT
from host_tools.model import graph as g
from host_tools.model import mct_format
from host_tools.memory import patch
from host_tools.memory import arena
from tests.support.graphgen import _conv, random_graph

sys.path.insert(0, str(ROOT / "bench"))
import forward_alternatives as fa  # noqa: E402


def _size(shape):
    return int(np.prod(shape))


def _ir_graph(trained_last_conv=False):
    """A tiny MobileNetV2: first conv + block 0 (no expansion), a stride-2 block, a residual block."""
    rng = np.random.default_rng(0)
    shapes, ops = {"x": (3, 16, 16)}, []
    cur, s, z = "x", 1 / 255, -128

    def conv(name, c_out, k, stride, groups=1):
        nonlocal cur, s, z
        c_in, h, w = shapes[cur]
        op, shape, s2, z2 = _conv(rng, name, cur, name, c_in, h, w, c_out, k, stride, k // 2, groups, s, z, relu=True)
        ops.append(op)
        shapes[name] = shape
        cur, s, z = name, s2, z2

    conv("c0", 8, 3, 2)
    conv("b0dw", 8, 3, 1, groups=8)
    conv("b0pw2", 4, 1, 1)
    conv("b1pw1", 24, 1, 1)
    conv("b1dw", 24, 3, 2, groups=24)
    conv("b1pw2", 8, 1, 1)
    x, xs, xz = cur, s, z
    conv("b2pw1", 32, 1, 1)
    conv("b2dw", 32, 3, 1, groups=32)
    conv("b2pw2", 8, 1, 1)
    ops.append(g.Add("b2add", x, cur, "b2add", xs, xz, s, z, max(xs, s) * 1.5, 0))
    shapes["b2add"] = shapes[x]
    ops.append(g.GlobalAvgPool("pool", "b2add", "pooled", max(xs, s) * 1.5, 0))
    shapes["pooled"] = (8, 1, 1)
    fc = g.FullyConnected("fc", "pooled", "logits", rng.integers(-127, 128, size=(4, 8)).astype(np.int8),
                          np.zeros(4, np.int32), np.full(4, 0.01, np.float32), max(xs, s) * 1.5, 0, 0.05, 0)
    ops.append(fc)
    shapes["logits"] = (4, 1, 1)
    return g.Graph("x", "logits", shapes, ops, 1 / 255, -128, 1 if trained_last_conv else 0, True,
                   weight_update={})


def _must_keep(graph, end, notes):
    """What each frozen op needs at once, from the graph's shapes alone: a whole-tensor op its
    distinct inputs and output, an in-place depthwise conv its input and one output channel, a
    fused block its input, its output and its ring."""
    def size(name):         # the model input is read in place from the caller's buffer (arena.IN_PLACE)
        return 0 if name == graph.input else _size(graph.shapes[name])

    fused = {k for a, b, _ in notes["fused"] for k in range(a, b + 1)}
    need = [X + Y + ring for (a, b, ring), X, Y in
            ((f, size(graph.ops[f[0]].input), size(graph.ops[f[1]].output)) for f in notes["fused"])]
    for k, op in enumerate(graph.ops[:end]):
        if k in fused:
            continue
        if k in notes["inplace"]:
            need.append(size(op.input) + int(np.prod(graph.shapes[op.output][1:])))
            continue
        names = {op.input, op.output} | ({op.input2} if op.kind == g.ADD else set())
        need.append(sum(size(n) for n in names))
    return max(need)


def test_place_is_plan_place_for_plain_buffers():
    for seed in range(25):
        graph = random_graph(np.random.default_rng(seed))
        p = arena.make_plan(graph, mct_format.trained_params(graph), None)
        items = [fa.Item(b.name, [(0, b.size, b.first, b.last)]) for b in p.buffers]
        assert fa.place(items) == p.arena_size, seed


def test_whole_and_patch_stage_equal_the_planner():
    checked = 0
    for seed in range(25):
        graph = random_graph(np.random.default_rng(seed))
        trained = mct_format.trained_params(graph)
        end = fa.frozen_end(graph, trained)
        assert fa.peaks(fa.strategy_buffers(graph, trained)[0], end)[3] == fa.whole_plan(graph, trained, None).arena_size
        # forward only: the frozen forward is the whole forward, and its arena is the planner's
        fwd = fa.peaks(fa.strategy_buffers(graph, {})[0], len(graph.ops))[0]
        assert fwd == fa.whole_plan(graph, {}, None).arena_size, seed
        frozen = set(graph.shapes) - arena.grad_acts(graph, trained)
        for n in range(1, len(graph.ops) + 1):
            if patch.stage_ok(graph, n, frozen):
                st = patch.Stage(n, 2, 1) if graph.shapes[graph.ops[n - 1].output][1] >= 2 else patch.Stage(n, 1, 1)
                assert (fa.peaks(fa.strategy_buffers(graph, trained, st)[0], end)[3]
                        == fa.whole_plan(graph, trained, st).arena_size), (seed, n)
                checked += 1
    assert checked > 5


@pytest.mark.parametrize("trained_last_conv", [False, True])
def test_inplace_and_fused_keep_what_they_must(trained_last_conv):
    graph = _ir_graph(trained_last_conv)
    trained = mct_format.trained_params(graph)
    end = fa.frozen_end(graph, trained)
    whole = fa.peaks(fa.strategy_buffers(graph, trained)[0], end)[0]
    for fuse, inplace in ((False, True), (True, False), (True, True)):
        items, notes = fa.strategy_buffers(graph, trained, None, fuse, inplace)
        fwd, live, rest, step = fa.peaks(items, end)
        assert fwd >= live >= _must_keep(graph, end, notes)
        assert fwd <= whole and step >= rest
        if inplace and not fuse:
            assert notes["inplace"] == [1, 4, 7]
        if inplace and fuse and trained_last_conv:
            assert notes["inplace"] == [7]                  # block 2 is not all frozen: not fused
        if fuse:
            assert notes["fused"][0] == (0, 2, 3 * 8 * 8 + 8 * 8)      # k rows of c0's output + one dw row
    # all three blocks fused when only the classifier is trained: each block's layout is forced (its
    # whole input and output and its ring; the model input is the caller's), and the peak is the
    # largest of them
    if not trained_last_conv:
        items, notes = fa.strategy_buffers(graph, trained, None, True, False)
        assert [(a, b) for a, b, _ in notes["fused"]] == [(0, 2), (3, 5), (6, 9)]
        assert notes["fused"][1][2] == 3 * 24 * 8 + 24 * 4             # stride 2: still k rows
        assert fa.peaks(items, end)[0] == _must_keep(graph, end, notes) >= 4 * 8 * 8 + 3 * 8 * 8 + 8 * 8


def test_mit_models_agree_with_the_planner(mit_dir):
    fa.MIT = mit_dir
    graph, trained = fa.load("mbv2-w0.35", "99kb")
    end = fa.frozen_end(graph, trained)
    st = patch.Stage(6, 3, 3)
    assert fa.peaks(fa.strategy_buffers(graph, trained, st)[0], end)[3] == fa.whole_plan(graph, trained, st).arena_size
    assert fa.peaks(fa.strategy_buffers(graph, trained)[0], end)[3] == fa.whole_plan(graph, trained, None).arena_size
    items, notes = fa.strategy_buffers(graph, trained, None, True, True)
    fwd, live, _, _ = fa.peaks(items, end)
    assert fwd >= live >= _must_keep(graph, end, notes)
