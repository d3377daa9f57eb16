"""Row-streamed forward of frozen inverted-residual blocks (c_src/mct_rows.c, memory/blocks.py row_blocks): the
block's expansion as a ring of k rows, its depthwise (and, with a residual add, its projection)
output one row at a time; bit-identical to the whole-tensor forward and the numpy reference, in a
smaller arena; and the loader's checks of the row-block records."""
import struct

import numpy as np
import pytest

from host_tools.model import graph as g
from host_tools.model import mct_format
from host_tools.memory import arena
from host_tools.reference import oracle as reference
from tests.support.plans import count_smaller_arenas, plans_with_and_without
from tests.support.graphgen import random_block_graph, random_input
from tests.support.file_edit import act_entry, fix_crc, op_entry
from host_tools.ccore.core import CoreError, CoreModel

SEEDS = range(40)
E_OP, P_ROWS = 11, 15           # MCT_E_OP, MCT_P_ROWS (c_src/mcutrain.h)


def _graph(seed, rows=True):
    """A random MobileNetV2-like graph; every other seed trains only the classifier and the last
    conv's bias, so that most of its blocks are frozen."""
    rng = np.random.default_rng(seed)
    graph = random_block_graph(rng, size=int(rng.integers(8, 17)))
    if seed % 2:
        graph.n_bias_update, graph.weight_update = 1, {}
    graph.row_blocks = "all" if rows else False       # every block the planner can stream, for coverage
    return rng, graph


@pytest.mark.parametrize("seed", SEEDS)
def test_row_blocks_forward_and_train_like_the_reference(seed):
    rng, graph = _graph(seed)
    data = mct_format.to_bytes(graph)
    m = mct_format.load(data)
    core, ref = CoreModel(data), reference.Reference(m)
    for _ in range(3):
        x, label = random_input(rng, m), int(rng.integers(0, m.n_classes))
        np.testing.assert_array_equal(core.forward(x, m.n_classes), ref.forward(x))
        assert core.train_step(x, label, 0.1) == pytest.approx(ref.train_step(x, label, 0.1), rel=1e-5, abs=1e-6)
    assert core.save() == ref.m.to_bytes()


def test_random_graphs_cover_every_row_block_case():
    cases = set()
    for seed in SEEDS:
        _, graph = _graph(seed)
        trained = mct_format.trained_params(graph)
        for first, last in arena.make_plan(graph, trained, None).rows:
            a, d = graph.ops[first], graph.ops[first + 1]
            cases |= {("add", last == first + 3), ("stride", d.stride[0]), ("kernel", d.weight.shape[2]),
                      ("expansion kernel", a.weight.shape[2]), ("model input", a.input == graph.input)}
    assert cases >= {("add", True), ("add", False), ("stride", 1), ("stride", 2), ("kernel", 3), ("kernel", 5),
                     ("expansion kernel", 1), ("expansion kernel", 3), ("model input", True)}, cases


def test_row_blocks_lower_the_arena_and_the_core_stays_within_it():
    def one_step(data, m, rng):
        core = CoreModel(data)
        core.train_step(random_input(rng, m), 0, 0.1)
        return core
    assert count_smaller_arenas((_graph(seed) for seed in SEEDS), "row_blocks", one_step) >= 5


@pytest.mark.parametrize("seed", range(5))
def test_row_blocks_shrink_a_frozen_high_resolution_forward(seed):
    """32x32, only the classifier trained: the blocks' whole expansions set the peak, the rings do not."""
    graph = random_block_graph(np.random.default_rng(seed), n_blocks=2, size=32)
    graph.n_bias_update, graph.weight_update = 0, {}
    graph.patch = None
    rows, whole = plans_with_and_without(graph, "row_blocks", False)
    assert rows.rows and rows.arena_size < 0.8 * whole.arena_size


def _rows_file():
    for seed in SEEDS:
        _, graph = _graph(seed)
        graph.patch = None
        p = arena.make_plan(graph, mct_format.trained_params(graph), None)
        blocks = [(f, la) for f, la in p.rows if la == f + 3]
        if blocks:
            data = bytearray(mct_format.to_bytes(graph))
            return data, mct_format.load(bytes(data)), blocks[0]
    raise AssertionError("no row block with a residual add")





@pytest.mark.parametrize("what", ["ring_short", "row_short", "stray_flag", "no_first", "whole_ring",
                                  "not_depthwise"])
def test_bad_row_block_records_are_rejected(what):
    data, m, (first, last) = _rows_file()
    CoreModel(bytes(data))
    a_out, d_out = m.ops[first].out, m.ops[first + 1].out
    if what == "ring_short":
        cap = struct.unpack_from("<I", data, act_entry(data, a_out) + 20)[0]
        struct.pack_into("<I", data, act_entry(data, a_out) + 20, cap - 1)
    elif what == "row_short":
        cap = struct.unpack_from("<I", data, act_entry(data, d_out) + 20)[0]
        struct.pack_into("<I", data, act_entry(data, d_out) + 20, cap - 1)
    elif what == "stray_flag":
        data[op_entry(data, last + 1) + 1] = 8             # MCT_OF_ROWS after the block
    elif what == "no_first":
        data[op_entry(data, first) + 1] = 0
    elif what == "whole_ring":
        struct.pack_into("<I", data, act_entry(data, a_out) + 20, 0)
    elif what == "not_depthwise":
        data[op_entry(data, first + 1) + 1] = 4            # the depthwise conv as a block's first op
        data[op_entry(data, first) + 1] = 0
    with pytest.raises(CoreError) as err:
        CoreModel(fix_crc(data))
    assert err.value.code == E_OP
    if what in ("ring_short", "row_short", "not_depthwise"):
        assert err.value.a == P_ROWS


def test_by_default_only_blocks_that_lower_the_arena_stream():
    """Row streaming costs kernel calls per row: the default keeps a block whole where streaming it
    does not lower the arena, with the same arena as streaming them all."""
    fewer = 0
    for seed in SEEDS:
        _, graph = _graph(seed)
        every, chosen = plans_with_and_without(graph, "row_blocks", True)
        assert chosen.arena_size <= every.arena_size and set(chosen.rows) <= set(every.rows)
        fewer += len(chosen.rows) < len(every.rows)
    assert fewer >= 5
