"""The patch-based first stage: the C core computing ops 0..S-1 tile by tile gives exactly the
whole-tensor result of the numpy reference, for every stage and grid of random graphs; the plan's
patch buffers are exactly what the tiles need (the loader rejects one byte less); bad stage
records are rejected; and the memory peak of the paper's models drops."""
import os
import struct

import numpy as np
import pytest

from host_tools.model import mct_format
from host_tools.memory import patch
from host_tools.memory import arena, blocks
from host_tools.reference import oracle as reference
from tests.support.graphgen import random_graph, random_input
from tests.support.file_edit import act_entry, fix_crc, op_entry
from host_tools.ccore.core import CoreError, CoreModel

MIT = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "models", "mit")


def _frozen(graph):
    return set(graph.shapes) - arena.grad_acts(graph, mct_format.trained_params(graph))


def _stages(graph):
    """Every valid stage length, each with a few grids (square and not)."""
    frozen = _frozen(graph)
    for n in range(1, len(graph.ops) + 1):
        if patch.stage_ok(graph, n, frozen):
            _, oh, ow = graph.shapes[graph.ops[n - 1].output]
            for rows, cols in {(1, 1), (2, 2), (3, 1), (1, 3), (oh, ow), (15, 2)}:
                yield patch.Stage(n, min(rows, oh, 15), min(cols, ow, 15))


_input = random_input


def _random_graph(seed, **kw):
    rng = np.random.default_rng(seed)
    return rng, random_graph(rng, size=int(rng.integers(6, 16)), **kw)


@pytest.mark.parametrize("seed", range(40))
def test_patched_forward_is_bit_exact(seed):
    rng, graph = _random_graph(seed, n_bias_update=0, weights=False)
    stages = list(_stages(graph))
    assert stages, "a frozen graph always has a patchable first conv"
    x = [_input(rng, mct_format.load(mct_format.to_bytes(graph))) for _ in range(2)]
    for st in stages:
        graph.patch = st
        data = mct_format.to_bytes(graph)
        m = mct_format.load(data)
        assert m.stage == st
        core, ref = CoreModel(data), reference.Reference(m)
        for xi in x:
            np.testing.assert_array_equal(core.forward(xi, m.n_classes), ref.forward(xi), err_msg=str(st))
        assert core.mem()["arena_peak"] <= m.arena_size


@pytest.mark.parametrize("seed", range(30))
def test_patched_training_is_bit_exact(seed):
    """Training behind a patched frozen stage: same losses and trained tensors as the reference."""
    rng, graph = _random_graph(seed, n_bias_update=1, weights=False)
    stages = list(_stages(graph))
    if not stages:
        pytest.skip("this graph's first layer is trained: no frozen stage to patch")
    graph.patch = stages[len(stages) // 2]
    data = mct_format.to_bytes(graph)
    m = mct_format.load(data)
    core, ref = CoreModel(data), reference.Reference(m)
    for _ in range(3):
        xi, label = _input(rng, m), int(rng.integers(0, m.n_classes))
        assert core.train_step(xi, label, 0.1) == pytest.approx(ref.train_step(xi, label, 0.1), rel=1e-5, abs=1e-6)
    assert core.save() == m.to_bytes()


def _patched_file(seed=3):
    for s in range(seed, seed + 50):
        _, graph = _random_graph(s, n_bias_update=0, weights=False)
        stages = [st for st in _stages(graph) if st.ops >= 2 and st.rows * st.cols > 1]
        if stages:
            graph.patch = stages[0]
            data = mct_format.to_bytes(graph)
            return bytearray(data), mct_format.load(data)
    raise AssertionError("no random graph with a two-op patchable stage")





def test_patch_buffers_are_exactly_what_the_tiles_need():
    """The host's windows and the device's agree: one byte less in any patch buffer is rejected."""
    data, m = _patched_file()
    CoreModel(bytes(data))
    for k in range(m.stage.ops - 1):
        a = m.ops[k].out
        bad = bytearray(data)
        struct.pack_into("<I", bad, act_entry(m.data, a) + 20, m.act_capacity[a] - 1)
        if m.act_capacity[a] - 1 == 0:
            continue
        with pytest.raises(CoreError) as e:
            CoreModel(fix_crc(bad))
        assert e.value.index == k


@pytest.mark.parametrize("what", ["grid_without_ops", "ops_without_grid", "not_a_prefix", "zero_rows",
                                  "too_many_rows", "capacity_on_whole", "no_capacity"])
def test_bad_stage_records_are_rejected(what):
    data, m = _patched_file()
    n = m.stage.ops
    if what == "grid_without_ops":
        for k in range(n):
            data[op_entry(m.data, k) + 1] = 0
    elif what == "ops_without_grid":
        data[51] = 0
    elif what == "not_a_prefix":
        data[op_entry(m.data, 0) + 1] = 0
    elif what == "zero_rows":
        data[51] = m.stage.cols
    elif what == "too_many_rows":
        data[51] = 15 << 4 | m.stage.cols
        _, oh, _ = m.acts[m.ops[n - 1].out][:3]
        if oh >= 15:
            pytest.skip("the stage output has 15 rows or more")
    elif what == "capacity_on_whole":
        struct.pack_into("<I", data, act_entry(m.data, m.ops[n - 1].out) + 20, 1)
    elif what == "no_capacity":
        struct.pack_into("<I", data, act_entry(m.data, m.ops[0].out) + 20, 0)
    with pytest.raises(CoreError):
        CoreModel(fix_crc(data))


def test_auto_never_raises_the_peak():
    for seed in range(30):
        _, graph = _random_graph(seed)
        trained = mct_format.trained_params(graph)
        assert arena.make_plan(graph, trained, "auto").arena_size <= arena.make_plan(graph, trained, None).arena_size


@pytest.mark.skipif(not os.path.isdir(MIT), reason="../shared/models/mit is absent (a fresh clone)")
@pytest.mark.parametrize("name,budget", [("mbv2-w0.35", "99kb"), ("proxyless-w0.3", "98kb"),
                                         ("mcunet-5fps", "99kb")])
def test_mit_models_forward_peak_drops(name, budget):
    """At 128x128 the whole-tensor frozen forward sets the peak (MbV2: a 48x64x64 expansion next to
    its input). With the patch-based stage where it helps (its recomputed halos adding at most a
    fifth of the whole forward's MACs, patch.choose) and row-streamed blocks after it, the peak falls
    by over half, and the forward is bit-exact with the whole-tensor reference."""
    from host_tools.cli.convert import load_scheme
    from host_tools.frontends.mit import load_mit
    graph = load_mit(os.path.join(MIT, name), num_classes=10)
    graph.n_bias_update, graph.weight_update = load_scheme(f"{MIT}/schemes.json:{name}:{budget}")
    trained = mct_format.trained_params(graph)
    graph.row_blocks = False
    whole = arena.make_plan(graph, trained, None)
    graph.row_blocks = True
    auto = arena.make_plan(graph, trained, "auto")
    assert auto.rows and auto.arena_size < 0.5 * whole.arena_size
    st = auto.stage
    if st is not None:
        extra = patch.stage_macs(graph, st, st.ops) - patch.stage_macs(graph, None, st.ops)
        assert 0 < extra <= 0.2 * patch.model_macs(graph)
    data = mct_format.to_bytes(graph)
    m = mct_format.load(data)
    x = _input(np.random.default_rng(0), m)
    np.testing.assert_array_equal(CoreModel(data).forward(x, m.n_classes), reference.Reference(m).forward(x))


def _depthwise_chain(rng, k, channels=6, size=9):
    """conv -> depthwise k x k (stride 1, 'same') -> conv -> FC, the depthwise trained: the shape of
    every MobileNet block's middle."""
    from host_tools.model import graph as g
    from tests.support.graphgen import _conv
    shapes, ops = {"x": (2, size, size)}, []
    xs, xz = 1 / 255, -128
    for i, (c_in, c_out, kk, groups) in enumerate([(2, channels, 1, 1), (channels, channels, k, channels),
                                                    (channels, 4, 1, 1)]):
        op, shape, xs, xz = _conv(rng, f"conv{i}", "x" if i == 0 else f"a{i - 1}", f"a{i}", c_in, size, size,
                                  c_out, kk, 1, kk // 2, groups, xs, xz, relu=True)
        ops.append(op)
        shapes[f"a{i}"] = shape
    fc = g.FullyConnected("fc", "a2", "logits", rng.integers(-127, 128, size=(3, 4 * size * size)).astype(np.int8),
                          np.zeros(3, np.int32), np.full(3, 0.01, np.float32), xs, xz, 0.1, 0)
    ops.append(fc)
    shapes["logits"] = (3, 1, 1)
    return g.Graph("x", "logits", shapes, ops, 1 / 255, -128, 3, True, weight_update={1: 1.0, 0: 0.5})


@pytest.mark.parametrize("k", [3, 5, 7])
def test_depthwise_backward_in_place_is_bit_exact_and_smaller(k):
    """The depthwise conv's input gradient overwrites its output gradient channel by channel: one
    gradient buffer (plus one channel) instead of two, and the same training, bit for bit."""
    rng = np.random.default_rng(k)
    graph = _depthwise_chain(rng, k)
    graph.patch = None
    graph.fused_backward = False    # else the chain is a fused block (tests/test_fused_backward.py)
    trained = mct_format.trained_params(graph)
    needs = arena.grad_acts(graph, trained)
    consumers = {a: [i for i, op in enumerate(graph.ops) if op.input == a] for a in graph.shapes}
    assert blocks.inplace_ops(graph, needs, consumers) == [1]
    p = arena.make_plan(graph, trained)
    _, h, w = graph.shapes["a0"]
    assert p.grad_offset["a1"] == p.grad_offset["a0"] + 4 * h * w
    sizes = {b.name: b.size for b in p.buffers}
    assert "grad:a1" not in sizes and sizes["grad:a0"] == 4 * (6 + 1) * h * w     # one buffer, one channel more
    data = mct_format.to_bytes(graph)
    m = mct_format.load(data)
    core, ref = CoreModel(data), reference.Reference(m)
    for _ in range(4):
        xi, label = _input(rng, m), int(rng.integers(0, 3))
        assert core.train_step(xi, label, 0.2) == pytest.approx(ref.train_step(xi, label, 0.2), rel=1e-5, abs=1e-6)
    assert core.save() == m.to_bytes()
    t = m.ops[0].bias       # before the depthwise: its gradient went through the in-place backward
    assert not np.array_equal(mct_format.load(core.save()).tensors[t], mct_format.load(data).tensors[t])
