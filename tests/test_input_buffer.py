"""The model input as a buffer of the model's own (convert --input-buffer model, Model.input_buffer()),
for a camera frame: at the arena's first byte, its bytes reused once read, training exactly like the
same model reading its input where the caller keeps it."""
from pathlib import Path

import numpy as np
import pytest

from host_tools.boards import runners as boards
from host_tools.boards import check
from host_tools.model import mct_format
from host_tools.memory import arena
from tests.support.graphgen import random_block_graph

HERE = Path(__file__).parent / "board"


def _graphs(seed=3):
    out = []
    for where in ("caller", "model"):
        graph = random_block_graph(np.random.default_rng(seed), n_blocks=2, size=12)
        graph.input_buffer = where
        out.append(graph)
    return out


def test_input_buffer_is_at_the_arena_start_and_reused():
    reused = 0
    for seed in range(20):
        caller, model = _graphs(seed)
        trained = mct_format.trained_params(model)
        p, q = arena.make_plan(model, trained, None), arena.make_plan(caller, trained, None)
        assert p.act_offset[model.input] == 0
        inp = next(b for b in p.buffers if b.name == "act:" + model.input)
        reused += any(b.offset < inp.size and b.first > inp.last for b in p.buffers)   # once read
        if q.act_offset[caller.input] == arena.IN_PLACE:
            assert q.arena_size <= p.arena_size
    assert reused >= 10


@pytest.mark.parametrize("board", ["unix", "qemu-m3"])
def test_input_buffer_trains_like_the_input_read_in_place(board, tmp_path):
    caller, model = _graphs()
    mct_format.write(caller, tmp_path / "caller.mct")
    mct_format.write(model, tmp_path / "model.mct")
    xs, ys = check.make_inputs(mct_format.read(tmp_path / "model.mct"), 8)
    (tmp_path / "inputs.bin").write_bytes(xs.tobytes())
    (tmp_path / "labels.bin").write_bytes(bytes(int(y) for y in ys))
    boards.build_firmware(board)
    res = boards.run_script(board, HERE / "input_buffer.py",
                            [tmp_path / n for n in ("caller.mct", "model.mct", "inputs.bin", "labels.bin")],
                            timeout=300)
    assert res.returncode == 0, res.output
    assert res.output.strip() == (HERE / "input_buffer.py.exp").read_text().strip(), res.output
