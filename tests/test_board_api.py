"""MicroPython-side tests: the same scripts and expected outputs on every board (unix, qemu-m3),
and the boards' numbers against the host reference."""
import os

import numpy as np
import pytest

from host_tools.boards import runners as boards
from host_tools.boards import check
from host_tools.model import mct_format
from host_tools.model import graph as g
from tests.support.board_models import BOARD_SCRIPTS, fixed_graph, normalise, write_inputs

HERE = BOARD_SCRIPTS
BOARDS = list(boards.BOARDS)          # unix and every emulated MCU


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("board")
    # 6 channels: two of its workspaces must fit side by side in the stock firmware's fragmented heap
    # (tests/test_natmod.py, files and the .mpy in RAM)
    gr = fixed_graph(np.random.default_rng(1234), width=6)
    gr.weight_update = {1: 0.5}                 # half the depthwise conv's channels train their weights
    mct_format.write(gr, tmp / "model.mct")
    frozen = fixed_graph(np.random.default_rng(5))
    frozen.n_bias_update, frozen.train_classifier = 0, False
    mct_format.write(frozen, tmp / "frozen.mct")
    # 16x400x400 activations (MBs of arena) from a 2 KB file: small heaps hold the file easily
    huge = fixed_graph(np.random.default_rng(6), size=400, width=16)
    mct_format.write(huge, tmp / "huge.mct")
    write_inputs(tmp)
    return tmp


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("script", ["api_errors", "api_training"])
def test_board_script(board, script, files):
    if board == "rp2-pico" and script == "api_training" and not os.environ.get("MCT_PICO_FULL"):
        pytest.skip("api_training takes about 100 s in rp2040js (set MCT_PICO_FULL=1 to run it); training on "
                    "the Pico is checked bit for bit by test_board_matches_reference and the export round trip")
    names = ["model.mct", "frozen.mct", "huge.mct", "inputs.bin", "labels.bin"]
    res = boards.run_script(board, HERE / f"{script}.py", [files / n for n in names], timeout=300,
                            heapsize="2M" if board in boards.UNIX_BOARDS else None)
    expected = (HERE / f"{script}.py.exp").read_text()
    assert res.returncode == 0, res.output
    assert normalise(res.output) == normalise(expected), res.output


@pytest.mark.parametrize("board", BOARDS)
def test_board_matches_reference(board, files):
    r = check.check_model(files / "model.mct", board, n_inputs=6, steps=6, lr=0.05)
    assert r.forward_equal == r.forward_total == 6
    assert r.trains and r.crc_board == r.crc_ref
    assert r.losses_board == pytest.approx(r.losses_ref, rel=1e-5)


@pytest.mark.parametrize("board", [b for b in boards.BOARDS if b not in boards.UNIX_BOARDS])
def test_model_in_flash_is_not_copied(tmp_path, board):
    """The MCUs: a 100+ KB model in ROMFS costs the heap only its workspace (zero copy)."""
    rng = np.random.default_rng(11)
    gr = fixed_graph(rng, size=8, width=8)
    fc = gr.ops[-1]
    # a wide, untrained hidden FC makes the file large while the workspace stays small
    gr.ops[-1] = g.FullyConnected("wide", "s", "h", rng.integers(-127, 128, size=(256, 8 * 8 * 8)).astype(np.int8),
                                  rng.integers(-500, 500, size=256).astype(np.int32),
                                  rng.uniform(0.005, 0.03, size=256).astype(np.float32),
                                  fc.x_scale, 0, 0.5, 0)
    gr.ops.remove(gr.ops[3])                     # the pool: the wide FC reads the add's output
    gr.shapes["h"] = (256, 1, 1)
    del gr.shapes["p"]
    gr.ops.append(g.FullyConnected("fc", "h", "logits", rng.integers(-127, 128, size=(6, 256)).astype(np.int8),
                                   rng.integers(-500, 500, size=6).astype(np.int32),
                                   rng.uniform(0.005, 0.03, size=6).astype(np.float32), 0.5, 0, 0.3, 0))
    mct_format.write(gr, tmp_path / "big.mct")
    assert (tmp_path / "big.mct").stat().st_size > 130000
    res = boards.run_script(board, HERE / "flash_zero_copy.py", [tmp_path / "big.mct"], timeout=120)
    assert res.returncode == 0, res.output
    assert res.output.strip() == (HERE / "flash_zero_copy.py.exp").read_text().strip()


@pytest.mark.parametrize("board", BOARDS)
def test_trained_model_exports_to_a_state_dict(board, files, tmp_path):
    """Train on the board, bring the saved model back, export it: the trained tensors (and only
    they) changed, exactly as the host reference trained them."""
    from host_tools.reference import oracle as reference
    from host_tools.cli.main import main as host_tools_main
    res = boards.run_script(board, HERE / "export_roundtrip.py",
                            [files / n for n in ("model.mct", "inputs.bin", "labels.bin")], timeout=300)
    assert res.returncode == 0, res.output
    trained = bytes.fromhex("".join(res.output.split()))
    (tmp_path / "trained.mct").write_bytes(trained)
    ref = reference.Reference(mct_format.read(files / "model.mct"))
    xs = np.frombuffer((files / "inputs.bin").read_bytes(), dtype=np.int8)
    labels = (files / "labels.bin").read_bytes()
    for i, x in enumerate(xs.reshape(len(labels), -1)):
        ref.train_step(x, labels[i], 0.1)
    assert trained == ref.m.to_bytes()

    out = tmp_path / "state.npz"
    assert host_tools_main(["export", str(tmp_path / "trained.mct"), "--original", str(files / "model.mct"),
                            "-o", str(out)]) == 0
    from host_tools.model.export import compare, dequantized_state
    changes = {c.name: c for c in compare(mct_format.read(tmp_path / "trained.mct"), mct_format.read(files / "model.mct"))}
    assert {n for n, c in changes.items() if c.changed} <= {n for n, c in changes.items() if c.trained}
    assert changes["fc.weight"].changed and changes["fc.bias"].changed
    state = dict(np.load(out))
    want = dequantized_state(ref.m)
    assert state.keys() == want.keys() == {f"{n}.{p}" for n in ("c1", "c2", "fc") for p in ("weight", "bias")}
    for k in state:
        np.testing.assert_allclose(state[k], want[k], rtol=1e-6)
    assert state["c1.weight"].shape == (6, 3, 3, 3) and state["c2.weight"].shape == (6, 1, 3, 3)


@pytest.mark.parametrize("board", [b for b in boards.BOARDS if b not in boards.UNIX_BOARDS])
def test_random_graphs_match_reference_on_mcus(board, tmp_path):
    """Every kernel the MCU build selects (SIMD ones on cores with the DSP extension) against the
    host reference, on random graphs: forward bit-exact, training steps identical."""
    from tests.support.graphgen import random_graph
    pointwise = 0
    for seed in range(6):
        gr = random_graph(np.random.default_rng(100 + seed), size=9)
        pointwise += any(op.kind == g.CONV2D and op.weight.shape[2:] == (1, 1) and op.stride == (1, 1)
                         and op.padding == (0, 0) for op in gr.ops)
        mct_format.write(gr, tmp_path / "r.mct")
        r = check.check_model(tmp_path / "r.mct", board, n_inputs=3, steps=3, lr=0.1)
        assert r.forward_equal == r.forward_total, (seed, r.output)
        assert r.crc_board == r.crc_ref, (seed, r.output)
    assert pointwise >= 2
