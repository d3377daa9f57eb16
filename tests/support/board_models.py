"""The models, data files and output checks of the board scripts (tests/board/*.py), shared by the
board tests and fuzz/ (which replays the same scripts and long runs outside pytest)."""
import re
import struct
from pathlib import Path

import numpy as np

from host_tools.boards import check
from host_tools.boards import runners as boards
from host_tools.model import graph as g
from host_tools.model import mct_format
from tests.support.file_edit import fix_crc

BOARD_SCRIPTS = Path(__file__).resolve().parents[1] / "board"


def normalise(text, floats=False):
    """A board's output with every number (integers; with floats=True decimals too) and every CRC
    replaced, to compare it with a .exp file."""
    text = re.sub(r"CRC32 \w+, computed \w+", "CRC32 CRC, computed CRC", text)
    number = r"-?\b\d+(\.\d+)?(e[-+]?\d+)?\b" if floats else r"-?\b\d+\b"
    return re.sub(number, "N", text).strip()


def fixed_graph(rng, size=8, width=8):
    """conv 3x3 s1 -> conv 3x3 depthwise -> add -> pool -> fc, random weights."""
    from tests.support.graphgen import _conv
    shapes = {"x": (3, size, size)}
    c1, s1, ys1, yz1 = _conv(rng, "c1", "x", "a1", 3, size, size, width, 3, 1, 1, 1, 1 / 255, -128, True)
    c2, s2, ys2, yz2 = _conv(rng, "c2", "a1", "a2", width, size, size, width, 3, 1, 1, width, ys1, yz1, False)
    shapes.update(a1=s1, a2=s2, s=s2, p=(width, 1, 1), logits=(6, 1, 1))
    add = g.Add("add", "a1", "a2", "s", ys1, yz1, ys2, yz2, max(ys1, ys2) * 1.5, 0)
    pool = g.GlobalAvgPool("pool", "s", "p", add.y_scale, 0)
    ws = rng.uniform(0.005, 0.03, size=6).astype(np.float32)
    fc = g.FullyConnected("fc", "p", "logits", rng.integers(-127, 128, size=(6, width)).astype(np.int8),
                          rng.integers(-500, 500, size=6).astype(np.int32), ws, add.y_scale, 0,
                          float(add.y_scale * 0.02 * 128 * np.sqrt(width) * 0.3), 0)
    return g.Graph("x", "logits", shapes, [c1, c2, add, pool, fc], 1 / 255, -128, 2, True)


def board_graph():
    """The sound model of the reliability scripts."""
    return fixed_graph(np.random.default_rng(1234))


def write_inputs(folder, n=12):
    """inputs.bin and labels.bin: n inputs of folder/model.mct and their labels."""
    xs, ys = check.make_inputs(mct_format.read(folder / "model.mct"), n)
    (folder / "inputs.bin").write_bytes(xs.tobytes())
    (folder / "labels.bin").write_bytes(bytes(int(y) for y in ys))


def numeric_models(tmp):
    """model.mct: a sound model; tiny_scale.mct: its classifier's weight scales denormal (every update
    of the classifier overflows); nan_table.mct: a NaN in the softmax table (every loss is NaN)."""
    gr = board_graph()
    data = mct_format.to_bytes(gr)
    m = mct_format.load(data)
    t_off = struct.unpack_from("<I", data, 28)[0]
    fc = m.ops[-1]
    tiny = bytearray(data)
    off = struct.unpack_from("<I", tiny, t_off + 16 * fc.wscale)[0]
    n = m.tensors[fc.wscale].size
    struct.pack_into(f"<{n}f", tiny, off, *([1e-45] * n))
    w_off = struct.unpack_from("<I", data, t_off + 16 * fc.weight)[0]
    b_off = struct.unpack_from("<I", data, t_off + 16 * fc.bias)[0]
    nan = bytearray(data)
    off = struct.unpack_from("<I", nan, t_off + 16 * m.exp_table)[0]
    struct.pack_into("<f", nan, off, float("nan"))            # d = 0: every loss
    files = {"model.mct": data, "tiny_scale.mct": fix_crc(tiny), "nan_table.mct": fix_crc(nan)}
    for name, b in files.items():
        (tmp / name).write_bytes(b)
    lo, hi = min(w_off, b_off), max(w_off + m.tensors[fc.weight].size, b_off + 4 * m.tensors[fc.bias].size)
    (tmp / "fc_range.txt").write_text(f"{lo} {hi}\n")
    return files, (lo, hi)


def long_run(board, steps, files_dir, timeout=None):
    """Runs reliability_longrun.py; returns [(step, heap free, arena peak)] and the output."""
    (files_dir / "steps.txt").write_text(f"{steps}\n")
    res = boards.run_script(board, BOARD_SCRIPTS / "reliability_longrun.py",
                            [files_dir / n for n in ("model.mct", "inputs.bin", "labels.bin", "steps.txt")],
                            timeout=timeout, heapsize="2M" if board == "unix" else None)
    assert res.returncode == 0, res.output
    figures = [tuple(map(int, f)) for f in re.findall(r"step (\d+) heap free (\d+) arena peak (\d+)", res.output)]
    return figures, res.output


def check_on_board(board, folder, models, steps=4, lr=0.2):
    """Each model (name -> .mct bytes) trains on the board exactly as the reference does."""
    boards.build_firmware(board)
    for name, data in models.items():
        (folder / name).write_bytes(data)
        r = check.check_model(folder / name, board, n_inputs=3, steps=steps, lr=lr)
        assert r.trains and r.ok, (name, r.output)
