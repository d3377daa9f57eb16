"""The model input fed row by row (convert --input-buffer rows, docs/api.md "A reader as the input"):
a band of the rows one tile row of the patch-based stage reads, filled by a reader as the stage moves
down. On the boards, a model fed by a reader (a file, io.BytesIO, a reader of a few bytes at a time)
trains and infers bit for bit like the same graph fed the whole frame, and like the numpy reference;
its measured arena peak is below the whole frame's in the model's RAM (--input-buffer model)."""
import re
from pathlib import Path

import numpy as np
import pytest

from host_tools.boards import runners as boards
from host_tools.model import mct_format
from host_tools.memory import arena, patch
from host_tools.reference import oracle as reference
from tests.support.graphgen import random_block_graph, random_graph, random_input

HERE = Path(__file__).parent / "board"
STEPS = 3


def _graph(seed):
    """A random graph whose first layers are frozen (a stage can be patched), with a sparse scheme."""
    if seed % 2 == 0:
        rng = np.random.default_rng(seed)
        return random_graph(rng, size=int(rng.integers(6, 16)), n_bias_update=1, weights=False)
    for s in range(1000 * seed, 1000 * seed + 1000):      # a MobileNetV2-like graph whose stem is frozen
        rng = np.random.default_rng(s)
        graph = random_block_graph(rng, n_blocks=2, size=int(rng.integers(8, 15)))
        if 0 not in mct_format.trained_params(graph):
            return graph


def _auto_stage(graph):
    """The stage the planner chooses for the input read in place (None: none)."""
    graph.input_buffer, graph.patch = "caller", "auto"
    return arena.make_plan(graph, mct_format.trained_params(graph)).stage


def _cases(seeds, tmp_path):
    """Files of each case (rows, whole and model-buffer conversions of one graph, inputs, labels),
    and for each the reference's logits, losses and trained file."""
    files, want = [tmp_path / "count.txt"], []
    for i, seed in enumerate(seeds):
        graph = _graph(seed)
        data = {}
        for name, where in (("rows", "rows"), ("whole", "caller"), ("model", "model")):
            graph.input_buffer, graph.patch = where, "auto"
            data[name] = mct_format.to_bytes(graph)
            (tmp_path / f"{name}{i}.mct").write_bytes(data[name])
            files.append(tmp_path / f"{name}{i}.mct")
        m = mct_format.load(data["rows"])
        rng = np.random.default_rng(seed + 100)
        xs = [random_input(rng, m) for _ in range(STEPS)]
        labels = [int(v) for v in rng.integers(0, m.n_classes, STEPS)]
        (tmp_path / f"inputs{i}.bin").write_bytes(b"".join(x.tobytes() for x in xs))
        (tmp_path / f"labels{i}.bin").write_bytes(bytes(labels))
        files += [tmp_path / f"inputs{i}.bin", tmp_path / f"labels{i}.bin"]
        ref = reference.Reference(m)
        ref.seed(1)
        logits = ref.forward(xs[0]).astype(np.int8).tobytes().hex()
        losses = [ref.train_step(x, y, 0.05) for x, y in zip(xs, labels)]
        want.append((m, logits, losses, m.to_bytes().hex()))
    (tmp_path / "count.txt").write_text(str(len(seeds)))
    return files, want


def _check(board, seeds, tmp_path):
    files, want = _cases(seeds, tmp_path)
    boards.build_firmware(board)
    res = boards.run_script(board, HERE / "input_rows.py", files, timeout=600)
    assert res.returncode == 0, res.output
    out = res.output.split("case ")[1:]
    assert len(out) == len(seeds), res.output
    lower = 0
    for text, (m, logits, losses, saved) in zip(out, want):
        assert f"logits {logits}\n" in text, text
        assert "same logits: True True True True" in text, text
        got = [float(v) for v in re.findall(r"^loss \d+ (\S+) True$", text, re.M)]
        assert got == pytest.approx(losses, rel=1e-5, abs=1e-6), text
        assert "file read to its end: True" in text and "same logits after training: True" in text, text
        assert f"saved {saved}\n" in text, "trained tensors differ from the reference's"
        assert "model buffer with a reader: True True" in text, text
        rows = [int(v) for v in re.search(r"memory rows (\d+) (\d+) (\d+)", text).groups()]
        whole = [int(v) for v in re.search(r"memory model (\d+) (\d+) (\d+)", text).groups()]
        # the measured peaks (fill pattern): never above the whole frame's, below it where the input
        # is part of the peak
        assert rows[1] <= rows[0] and rows[1] <= whole[1], text
        lower += rows[1] < whole[1]
    assert lower >= max(1, len(seeds) // 3), res.output


def test_band_is_what_each_tile_row_reads():
    """The band holds the most input rows one tile row reads; the loader refuses one row less."""
    from host_tools.ccore.core import CoreError, CoreModel
    from tests.support.file_edit import act_entry, fix_crc
    for seed in range(12):
        graph = _graph(seed)
        graph.input_buffer, graph.patch = "rows", "auto"
        data = bytearray(mct_format.to_bytes(graph))
        m = mct_format.load(bytes(data))
        c, h, w = m.input_shape
        band = m.act_capacity[m.input]
        assert band == patch.band_bytes(graph, m.stage) and band % (w * c) == 0 and band < c * h * w
        CoreModel(bytes(data))
        at = act_entry(data, m.input) + 20
        data[at:at + 4] = (band - w * c).to_bytes(4, "little")
        with pytest.raises(CoreError):
            CoreModel(fix_crc(data))


def test_rows_forces_a_stage_where_the_planner_chooses_none():
    """On graphs where the planner patches nothing, --input-buffer rows gets a stage all the same
    (row bands among the options), and the forward from the band is the reference's bit for bit."""
    from host_tools.ccore.core import CoreModel
    found = 0
    for seed in range(40):
        graph = _graph(seed)
        if _auto_stage(graph) is not None:
            continue
        found += 1
        graph.input_buffer, graph.patch = "rows", "auto"
        data = mct_format.to_bytes(graph)
        m = mct_format.load(data)
        assert m.stage is not None
        x = random_input(np.random.default_rng(seed), m)
        np.testing.assert_array_equal(CoreModel(data).forward(x, m.n_classes), reference.Reference(m).forward(x))
    assert found >= 3


@pytest.mark.parametrize("board", ["unix", "qemu-m3"])
def test_reader_trains_like_the_whole_frame(board, tmp_path):
    """Random graphs (half with a planner-chosen stage, half without) on unix; a few on qemu-m3."""
    seeds = range(12) if board == "unix" else (0, 1, 5)
    _check(board, seeds, tmp_path)
    chosen = [_auto_stage(_graph(s)) is not None for s in seeds]
    assert any(chosen) and not all(chosen), chosen


@pytest.mark.parametrize("board", ["qemu-m7", "qemu-m0"])
def test_reader_on_more_boards(board, tmp_path):
    _check(board, (0, 1), tmp_path)
