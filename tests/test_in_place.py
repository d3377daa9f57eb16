"""Outputs over inputs, to lower the camera case's peak: a depthwise conv writing its output over its
input through a ring of ph + 1 rows (c_src/mct_dw_in_place.c, memory/blocks.py in_place_forward_ops),
and a residual add's sole-reader input taking its gradient in the add output's buffer
(c_src/mct_backward_add.c, memory/arena.py add_shared_grads): bit-identical training to the numpy
reference and to the plan without them, in a smaller arena, on the host and on the boards; and the
loader's checks of the in-place record."""
import struct

import numpy as np
import pytest

from host_tools.ccore.core import CoreError, CoreModel
from host_tools.memory import arena
from host_tools.model import graph as g
from host_tools.model import mct_format
from tests.support.board_models import check_on_board
from tests.support.file_edit import act_entry, fix_crc, op_entry
from tests.support.graphgen import random_block_graph
from tests.support.plans import count_smaller_arenas
from tests.support.training import assert_same_tensors, train_beside_reference

SEEDS = range(60)
E_OP, P_IN_PLACE = 11, 16          # MCT_E_OP, MCT_P_IN_PLACE (c_src/mcutrain.h)
SWITCHES = ("in_place_forward", "shared_add_grads")


def _graph(seed, rule="stochastic", on=True, every=False):
    """every: every depthwise conv that can run in place does, not only those that lower the arena (the
    planner's choice), so that every kind of them runs."""
    rng = np.random.default_rng(seed)
    graph = random_block_graph(rng)
    graph.update_rule = rule
    for s in SWITCHES:
        setattr(graph, s, on)
    if every and on:
        graph.in_place_forward = "all"
    return rng, graph


def _plan(graph):
    return arena.make_plan(graph, mct_format.trained_params(graph))


def _shared(graph):
    """The add inputs whose gradient is the add output's buffer in the plan."""
    p = _plan(graph)
    return [b for op in graph.ops if op.kind == g.ADD and op.output in p.grad_offset
            for b in (op.input, op.input2) if p.grad_offset.get(b) == p.grad_offset[op.output]]


@pytest.mark.parametrize("every", [False, True])
@pytest.mark.parametrize("rule", ["master", "stochastic"])
@pytest.mark.parametrize("seed", SEEDS)
def test_trains_like_the_reference_and_the_plan_without_them(seed, rule, every):
    rng, graph = _graph(seed, rule, every=every)
    data = mct_format.to_bytes(graph)
    core, ref, losses = train_beside_reference(data, mct_format.load(data), rng)
    assert core.save() == ref.m.to_bytes()
    assert core.counters()["skipped_updates"] == ref.skipped_updates
    rng2, graph2 = _graph(seed, rule, on=False, every=every)
    data2 = mct_format.to_bytes(graph2)
    core2, _, losses2 = train_beside_reference(data2, mct_format.load(data2), rng2)
    assert losses2 == losses
    assert_same_tensors(core2, core)


def test_the_seeds_exercise_both():
    """In place over 3x3 and 5x5 windows, in the frozen and the trained part, and shared add gradients."""
    cases = set()
    for seed, every in ((s, e) for s in SEEDS for e in (False, True)):
        _, graph = _graph(seed, every=every)
        p = _plan(graph)
        needs = arena.grad_acts(graph, mct_format.trained_params(graph))
        for k in p.in_place:
            op = graph.ops[k]
            assert p.act_offset[op.output] == p.act_offset[op.input]
            cases.add(("kernel", op.weight.shape[2]))
            cases.add(("trained part", op.output in needs))
        cases.add(("shared", bool(_shared(graph))))
    assert cases >= {("kernel", 3), ("kernel", 5), ("trained part", True), ("trained part", False),
                     ("shared", True)}, cases


@pytest.mark.parametrize("switch", SWITCHES)
def test_arena_is_smaller_and_measured(switch):
    """Never larger (the planner keeps a depthwise conv in place only where that lowers the arena; on
    these small maps it seldom does), and the C core writes within the plan."""
    smaller = count_smaller_arenas((_graph(seed) for seed in SEEDS), switch,
                                   lambda data, m, rng: train_beside_reference(data, m, rng, steps=1)[0])
    assert smaller >= 1


def test_integer_backward_shares_no_add_gradient():
    for seed in SEEDS:
        _, graph = _graph(seed)
        graph.backward = "int"
        assert _shared(graph) == []


def _in_place_file():
    for seed in SEEDS:
        _, graph = _graph(seed)
        data = bytearray(mct_format.to_bytes(graph))
        ks = _plan(graph).in_place
        if ks:
            return data, mct_format.load(bytes(data)), ks[0]
    raise AssertionError("no seed plans a depthwise conv in place")


@pytest.mark.parametrize("what", ["not_depthwise", "offsets_apart", "ring_outside"])
def test_bad_in_place_records_are_rejected(what):
    data, m, k = _in_place_file()
    op = m.ops[k]
    if what == "not_depthwise":
        data[op_entry(data, len(m.ops) - 1) + 1] = 16       # the classifier
    elif what == "offsets_apart":
        off = struct.unpack_from("<I", data, act_entry(data, op.out) + 8)[0]
        struct.pack_into("<I", data, act_entry(data, op.out) + 8, off + 8)
    else:
        c, h, w = m.acts[op.out][:3]
        off = (m.arena_size - c * h * w) // 8 * 8          # the tensor fits, its ring does not
        for a in (op.in0, op.out):
            struct.pack_into("<I", data, act_entry(data, a) + 8, off)
    with pytest.raises(CoreError) as err:
        CoreModel(fix_crc(data))
    assert (err.value.code, err.value.a) == (E_OP, P_IN_PLACE), what


@pytest.mark.parametrize("board", ["qemu-m3", "qemu-m7", "qemu-m0"])
def test_boards_train_like_the_reference(board, tmp_path):
    """Two models whose plans have depthwise convs in place (a 3x3 and a 5x5 one among them) and shared
    add gradients."""
    models, kernels = {}, set()
    for seed in SEEDS:
        _, graph = _graph(seed, every=True)
        p = _plan(graph)
        ks = {graph.ops[k].weight.shape[2] for k in p.in_place}
        if _shared(graph) and ks - kernels:
            models[f"m{seed}.mct"] = mct_format.to_bytes(graph)
            kernels |= ks
        if len(models) == 2:
            break
    assert len(models) == 2 and kernels >= {3, 5}, kernels
    check_on_board(board, tmp_path, models)
