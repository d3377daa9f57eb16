"""Fused blocks that recompute their expansion's clamp mask instead of keeping it, to lower the camera
case's peak (c_src/mct_block_backward.c, memory/blocks.py recompute_heads): bit-identical training to
the numpy reference and to the plan that keeps the masks, on the host and on the boards; never a larger
arena; and the loader's checks of the record."""
import struct

import numpy as np
import pytest

from host_tools.ccore.core import CoreError, CoreModel
from host_tools.memory import arena
from host_tools.model import mct_format
from tests.support.board_models import check_on_board
from tests.support.file_edit import act_entry, fix_crc, op_entry
from tests.support.graphgen import random_block_graph
from tests.support.plans import count_smaller_arenas
from tests.support.training import assert_same_tensors, train_beside_reference, use_reference_kernel_build

SEEDS = range(40)
E_OP = 11           # MCT_E_OP (c_src/mcutrain.h)
NO_GRAD = 0xFFFFFFFF


def _graph(seed, rule="stochastic", recompute="all"):
    """recompute "all": every fused block that can recompute its mask does, not only those that lower
    the arena (the planner's choice), so that every case runs."""
    rng = np.random.default_rng(seed)
    graph = random_block_graph(rng)
    graph.update_rule = rule
    graph.recompute_masks = recompute
    return rng, graph


def _plan(graph):
    return arena.make_plan(graph, mct_format.trained_params(graph))


def _recomputing_seeds():
    return [s for s in SEEDS if _plan(_graph(s)[1]).recompute]


@pytest.mark.parametrize("rule", ["master", "stochastic"])
@pytest.mark.parametrize("seed", SEEDS)
def test_trains_like_the_reference_and_the_plan_that_keeps_the_masks(seed, rule):
    rng, graph = _graph(seed, rule)
    p = _plan(graph)
    for k in p.recompute:
        assert graph.ops[k - 2].output not in p.mask_offset
    data = mct_format.to_bytes(graph)
    core, ref, losses = train_beside_reference(data, mct_format.load(data), rng)
    assert core.save() == ref.m.to_bytes()
    assert core.counters()["skipped_updates"] == ref.skipped_updates
    rng2, graph2 = _graph(seed, rule, recompute=False)
    data2 = mct_format.to_bytes(graph2)
    core2, _, losses2 = train_beside_reference(data2, mct_format.load(data2), rng2)
    assert losses2 == losses
    assert_same_tensors(core2, core)


def test_reference_kernel_build_trains_like_the_reference(tmp_path, monkeypatch):
    """The benchmarks' baseline build (-DMCT_REFERENCE_KERNELS) recomputes the masks without the fast
    pointwise kernel: the same training."""
    lib = use_reference_kernel_build(tmp_path, monkeypatch)
    for seed in _recomputing_seeds()[:6]:
        rng, graph = _graph(seed)
        data = mct_format.to_bytes(graph)
        core_model, ref, _ = train_beside_reference(data, mct_format.load(data), rng)
        assert core_model.save() == ref.m.to_bytes()
    assert lib.exists()


def test_the_seeds_exercise_it():
    """Expansions with every channel count mod 4 (the backward's groups of 4, 2, 1), some trained on part
    of their rows only, that part not a multiple of 4 (a group across the SRAM and the Flash rows)."""
    cases = set()
    for seed in _recomputing_seeds():
        _, graph = _graph(seed)
        m = mct_format.load(mct_format.to_bytes(graph))
        for k in _plan(graph).recompute:
            w = m.ops[k - 2].weight
            cout = graph.shapes[graph.ops[k - 2].output][0]
            rows = m.trained_count[w] // (m.tensors[w].size // cout)
            cases |= {("channels mod 4", cout % 4), ("part", rows < cout), ("split", rows < cout and rows % 4 != 0)}
    assert cases >= {("channels mod 4", r) for r in range(4)} | {("part", True), ("split", True)}, cases


def test_arena_is_never_larger_and_measured():
    """The planner recomputes a mask only where that lowers the arena; the C core writes within the plan."""
    count_smaller_arenas((_graph(seed, recompute=True) for seed in SEEDS), "recompute_masks",
                         lambda data, m, rng: train_beside_reference(data, m, rng, steps=1)[0])


def _recompute_file():
    for seed in _recomputing_seeds():
        _, graph = _graph(seed)
        data = bytearray(mct_format.to_bytes(graph))
        return data, mct_format.load(bytes(data)), _plan(graph).recompute[0]
    raise AssertionError("no seed recomputes a mask")


@pytest.mark.parametrize("what", ["not_fused", "mask_kept", "no_expansion_grad"])
def test_bad_recompute_records_are_rejected(what):
    data, m, k = _recompute_file()
    e = m.ops[k - 2].out
    if what == "not_fused":
        data[op_entry(data, k) + 1] = 32                    # the recompute bit without the fused one
    elif what == "mask_kept":
        struct.pack_into("<I", data, act_entry(data, e) + 16, 0)
    else:
        struct.pack_into("<I", data, act_entry(data, e) + 12, NO_GRAD)
    with pytest.raises(CoreError) as err:
        CoreModel(fix_crc(data))
    # without the fused bit the one-channel gradients no longer fit their records: rejected before
    assert err.value.code == E_OP or (what == "not_fused" and err.value.code != 0), what


def test_cli_convert_reports_it_and_checks_bit_exact(tmp_path):
    """`host_tools convert` on a torchvision-style model whose block's expansion weights are trained: the
    report names the blocks that recompute and the multiply-accumulates that costs, the file flags them,
    and `check` on the unix board finds training bit-exact; with `--recompute none` none is, and the
    arena is larger."""
    import re
    from host_tools.boards import runners as boards
    from tests.test_cli import CASES, MODELS, cli, data_file
    shape, classes, _ = CASES["MobileNetV2Tiny"]
    data = data_file(tmp_path / "data.npz", shape, classes)
    out = tmp_path / "m.mct"
    res = cli("convert", f"{MODELS}:MobileNetV2Tiny", "--calib", data, "--n-bias-update", "6", "--weight-update",
              "3:1", "-o", out)
    assert res.returncode == 0, res.stdout + res.stderr
    report = res.stdout
    line = re.search(r"(\d+) of them recomputing their expansion's clamp mask \((\d+) more multiply-accumulates",
                     report)
    m = mct_format.read(out)
    heads = [k for k, op in enumerate(m.ops) if op.flags & mct_format.OF_RECOMPUTE]
    assert line and int(line.group(1)) == len(heads) == 1, report
    pw1 = m.ops[heads[0] - 2]
    assert int(line.group(2)) == np.prod(m.acts[pw1.out][:3]) * m.acts[pw1.in0][0]
    boards.build_firmware("unix")
    res = cli("check", out, "--board", "unix", "--data", data, "--inputs", "3", "--steps", "3")
    assert res.returncode == 0 and "check passed" in res.stdout, res.stdout + res.stderr
    # --recompute none keeps every mask: nothing flagged, nothing recomputed in the report, a larger arena
    kept = tmp_path / "kept.mct"
    res_kept = cli("convert", f"{MODELS}:MobileNetV2Tiny", "--calib", data, "--n-bias-update", "6",
                   "--weight-update", "3:1", "--recompute", "none", "-o", kept)
    assert res_kept.returncode == 0, res_kept.stdout + res_kept.stderr
    assert "recomputing" not in res_kept.stdout
    assert not any(op.flags & mct_format.OF_RECOMPUTE for op in mct_format.read(kept).ops)
    arena_of = lambda text: int(re.search(r"memory plan: arena (\d+) bytes", text).group(1))
    assert arena_of(res_kept.stdout) > arena_of(report)


@pytest.mark.parametrize("board", ["qemu-m3", "qemu-m7", "qemu-m0"])
def test_boards_train_like_the_reference(board, tmp_path):
    """Two models whose fused blocks recompute their masks."""
    models = {f"m{seed}.mct": mct_format.to_bytes(_graph(seed)[1]) for seed in _recomputing_seeds()[:2]}
    assert len(models) == 2
    check_on_board(board, tmp_path, models)
