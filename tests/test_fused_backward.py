"""The fused backward of inverted-residual blocks (c_src/mct_block_backward.c, memory/blocks.py fused_blocks):
one expanded channel at a time, bit-identical to the op-by-op backward and to the numpy reference,
in a smaller arena; and the loader's checks of the fused-block records."""
import struct

import numpy as np
import pytest

from host_tools.model import graph as g
from host_tools.model import mct_format
from host_tools.model import numerics
from host_tools.memory import arena
from host_tools.reference import oracle as reference
from tests.support.plans import count_smaller_arenas
from tests.support.graphgen import random_block_graph, random_input
from tests.support.file_edit import act_entry, fix_crc, op_entry
from host_tools.ccore.core import CoreError, CoreModel

SEEDS = range(30)
E_OP, P_FUSED = 11, 14          # MCT_E_OP, MCT_P_FUSED (c_src/mcutrain.h)


def _graph(seed, rule="master", fused=True):
    rng = np.random.default_rng(seed)
    graph = random_block_graph(rng)
    graph.update_rule = rule
    graph.fused_backward = fused
    return rng, graph


def _train(data, m, rng, steps=4, qas=True):
    core, ref = CoreModel(data, qas=qas), reference.Reference(mct_format.load(data), qas=qas)
    core.seed(1)            # the stream starts as the file's CRC, which the fused flag changes
    ref.seed(1)
    losses = []
    for _ in range(steps):
        x, label = random_input(rng, m), int(rng.integers(0, m.n_classes))
        lr = float(rng.choice([0.001, 0.01, 0.1, 0.5]))
        loss = core.train_step(x, label, lr)
        assert loss == pytest.approx(ref.train_step(x, label, lr), rel=1e-5, abs=1e-6)
        losses.append(loss)
    return core, ref, losses


@pytest.mark.parametrize("rule", list(numerics.UPDATE_RULES))
@pytest.mark.parametrize("seed", SEEDS)
def test_fused_blocks_train_like_the_reference_and_the_op_by_op_backward(seed, rule):
    rng, graph = _graph(seed, rule)
    data = mct_format.to_bytes(graph)
    m = mct_format.load(data)
    core, ref, losses = _train(data, m, rng)
    assert core.save() == ref.m.to_bytes()          # every trained tensor identical to the reference
    assert core.counters()["skipped_updates"] == ref.skipped_updates
    # the same graph with the op-by-op backward, from the same inputs: the same bytes
    rng2, graph2 = _graph(seed, rule, fused=False)
    data2 = mct_format.to_bytes(graph2)
    core2, _, losses2 = _train(data2, mct_format.load(data2), rng2)
    assert losses2 == losses
    for t2, t in zip(mct_format.load(core2.save()).tensors, mct_format.load(core.save()).tensors):
        assert np.array_equal(t2, t)


@pytest.mark.parametrize("rule", ["master", "stochastic"])
@pytest.mark.parametrize("seed,size", [(0, 8), (1, 8), (2, 12), (3, 7)])
def test_wide_blocks_train_like_the_reference(seed, size, rule):
    """Channel counts across the backward kernels' chunks (32 channels) and blocks (8), odd counts, and
    maps that do and do not take the pairs of expanded channels (c_src/mct_backward_pw_f32.c)."""
    rng = np.random.default_rng(seed)
    graph = random_block_graph(rng, n_blocks=2, size=size, width=37)
    graph.update_rule = rule
    graph.fused_backward = True
    data = mct_format.to_bytes(graph)
    core, ref, _ = _train(data, mct_format.load(data), rng, steps=2)
    assert core.save() == ref.m.to_bytes()


def test_random_blocks_exercise_every_fused_case():
    """The seeds above cover fused blocks with and without a trained expansion, strided
    depthwise convs, residual adds and a block input that needs no gradient."""
    cases = set()
    for seed in SEEDS:
        _, graph = _graph(seed)
        trained = mct_format.trained_params(graph)
        p = arena.make_plan(graph, trained, None)
        needs = arena.grad_acts(graph, trained)
        for k in p.fused:
            pw1, dw = graph.ops[k - 2], graph.ops[k - 1]
            cases.add(("expansion grad", pw1.output in needs))
            cases.add(("block input grad", pw1.input in needs))
            cases.add(("stride", dw.stride[0]))
            cases.add(("residual", any(op.kind == g.ADD and pw1.input in (op.input, op.input2)
                                       for op in graph.ops)))
    assert cases >= {("expansion grad", True), ("expansion grad", False), ("block input grad", True),
                     ("block input grad", False), ("stride", 1), ("stride", 2), ("residual", True),
                     ("residual", False)}, cases


def test_fused_arena_is_smaller_and_measured():
    """One expanded channel of gradient instead of the whole expanded width: a smaller plan, and
    the arena the core writes (its measured peak) stays within it."""
    smaller = count_smaller_arenas((_graph(seed) for seed in SEEDS), "fused_backward",
                                   lambda data, m, rng: _train(data, m, rng, steps=1)[0])
    assert smaller >= len(SEEDS) // 2


def test_integer_backward_does_not_fuse():
    _, graph = _graph(0, "stochastic")
    graph.backward = "int"
    assert arena.make_plan(graph, mct_format.trained_params(graph), None).fused == []


def _fused_file(seed=0):
    _, graph = _graph(seed)
    data = bytearray(mct_format.to_bytes(graph))
    m = mct_format.load(bytes(data))
    heads = arena.make_plan(graph, mct_format.trained_params(graph), "graph").fused
    assert heads
    return data, m, heads[0]





@pytest.mark.parametrize("what", ["not_a_block", "int_backward", "overlapping_grads", "grad_outside",
                                  "two_heads"])
def test_bad_fused_records_are_rejected(what):
    data, m, k = _fused_file()
    if what == "not_a_block":
        data[op_entry(data, len(m.ops) - 1) + 1] = 2    # the classifier is no block's head
    elif what == "int_backward":
        data[50] |= 0x04
    elif what == "overlapping_grads":
        e, d = m.ops[k - 2].out, m.ops[k - 1].out
        goff = struct.unpack_from("<I", data, act_entry(data, d) + 12)[0]
        struct.pack_into("<I", data, act_entry(data, e) + 12, goff)
    elif what == "grad_outside":
        d = m.ops[k - 1].out
        c, h, w = m.acts[d][:3]
        struct.pack_into("<I", data, act_entry(data, d) + 12, (m.arena_size - 4 * h * w + 4) // 4 * 4)
    elif what == "two_heads":
        data[op_entry(data, k - 1) + 1] = 2
    with pytest.raises(CoreError) as err:
        CoreModel(fix_crc(data))
    if what == "grad_outside":
        assert err.value.code != 0
    else:
        assert (err.value.code, err.value.a) == (E_OP, P_FUSED) or what == "int_backward"
