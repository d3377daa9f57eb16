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


def _check(board, seeds, tmp_path, natmod=False):
    files, want = _cases(seeds, tmp_path)
    res = _run(board, "input_rows.py", files, natmod)
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


def _run(board, script, files, natmod):
    """The script on the board's firmware with the built-in module, or (natmod) on MicroPython's own
    unix port with the x64 native module."""
    if not natmod:
        boards.build_firmware(board)
        return boards.run_script(board, HERE / script, files, timeout=600)
    from tests.test_natmod import NATMOD, STOCK_UNIX, _make
    _make("natmod-x64", "firmware-unix-stock")
    return boards.run_script("unix", HERE / script, [NATMOD / "x64" / "mcutrain.mpy", *files], timeout=600,
                             heapsize="2M", firmware=STOCK_UNIX)


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


@pytest.mark.parametrize("board", ["qemu-m7", "qemu-m0", "natmod-x64"])
def test_reader_on_more_boards(board, tmp_path):
    """The Cortex-M7 and M0 boards, and the native module (x64 .mpy on stock MicroPython, unix)."""
    _check(board, (0, 1), tmp_path, natmod=board == "natmod-x64")


def _error_files(tmp_path, seed=0):
    graph = _graph(seed)
    for name, where in (("rows", "rows"), ("whole", "caller")):
        graph.input_buffer, graph.patch = where, "auto"
        mct_format.write(graph, tmp_path / f"{name}.mct")
    m = mct_format.read(tmp_path / "rows.mct")
    x = random_input(np.random.default_rng(seed), m)
    (tmp_path / "inputs.bin").write_bytes(x.tobytes())
    (tmp_path / "labels.bin").write_bytes(bytes([m.n_classes - 1]))
    return [tmp_path / n for n in ("rows.mct", "whole.mct", "inputs.bin", "labels.bin")], m


def error_lines(m):
    """What tests/board/input_rows_errors.py prints: the exception of each bad input, the model unchanged."""
    size = int(np.prod(m.input_shape))
    unchanged = "  unchanged: True True"
    return [
        f"short ValueError input reader gave {size - 5} bytes, expected {size} (the input's H*W*C)", unchanged,
        f"empty ValueError input reader gave 0 bytes, expected {size} (the input's H*W*C)", unchanged,
        "raises at once OSError camera unplugged", unchanged,
        "raises later OSError camera unplugged", unchanged,
        "too many ValueError input reader's readinto() must return the number of bytes it read", unchanged,
        "not a count ValueError input reader's readinto() must return the number of bytes it read", unchanged,
        "reentrant ValueError model is busy: its step is reading its input", unchanged,
        "no readinto TypeError input must be a buffer (bytes, bytearray, memoryview) or a reader with readinto()",
        unchanged,
        f"bad label ValueError label 999 out of range for {m.n_classes} classes", unchanged,
        f"short buffer ValueError input must be {size} int8 bytes, got {size - 1}", unchanged,
        "input_buffer ValueError model reads its input row by row: give forward() and train_step() a reader",
        unchanged,
        "in place ValueError model reads its input in place: convert it with --input-buffer rows (or model) to give "
        "it a reader", unchanged,
        "then trains: True",
        "kept buffers empty: True True",
    ]


@pytest.mark.parametrize("board", ["unix", "qemu-m3", "natmod-x64"])
def test_bad_readers_are_refused_and_the_model_unchanged(board, tmp_path):
    """The same checks in both bindings: the built-in module and the native one."""
    files, m = _error_files(tmp_path)
    res = _run(board, "input_rows_errors.py", files, board == "natmod-x64")
    assert res.returncode == 0, res.output
    assert res.output.strip().splitlines() == error_lines(m), res.output


def test_cli_convert_rows_reports_the_band_and_checks_bit_exact(tmp_path):
    """`host_tools convert --input-buffer rows` on a torchvision-style model: the report says where the
    input goes and the band's size, the arena is below --input-buffer model's, and `check` on the unix
    board finds the forward and training bit-exact; with --patch none it is refused, nothing written."""
    from tests.test_cli import CASES, MODELS, cli, data_file
    shape, classes, _ = CASES["MobileNetV2Tiny"]
    data = data_file(tmp_path / "data.npz", shape, classes)
    arenas, reports = {}, {}
    for where in ("rows", "model"):
        out = tmp_path / f"{where}.mct"
        res = cli("convert", f"{MODELS}:MobileNetV2Tiny", "--calib", data, "--n-bias-update", "1",
                  "--input-buffer", where, "-o", out)
        assert res.returncode == 0, res.stdout + res.stderr
        arenas[where] = int(re.search(r"memory plan: arena (\d+) bytes", res.stdout).group(1))
        reports[where] = res.stdout
    m = mct_format.read(tmp_path / "rows.mct")
    c, h, w = m.input_shape
    band = m.act_capacity[m.input]
    line = re.search(r"input: fed row by row .* into a band of (\d+) of its (\d+) rows in the arena, (\d+) bytes "
                     r"\(the whole frame: (\d+)\)", reports["rows"])
    assert line and [int(v) for v in line.groups()] == [band // (w * c), h, band, c * h * w], line
    assert band < c * h * w and arenas["rows"] < arenas["model"], arenas
    boards.build_firmware("unix")
    res = cli("check", tmp_path / "rows.mct", "--board", "unix", "--data", data, "--inputs", "4", "--steps", "3")
    assert res.returncode == 0 and "check passed" in res.stdout, res.stdout + res.stderr
    assert "forward: 4/4 inputs bit-exact" in res.stdout, res.stdout
    refused = tmp_path / "refused.mct"
    res = cli("convert", f"{MODELS}:MobileNetV2Tiny", "--calib", data, "--input-buffer", "rows", "--patch", "none",
              "-o", refused)
    assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr
    assert "--input-buffer rows" in res.stderr and "--patch none" in res.stderr, res.stderr
    assert not refused.exists()


def test_api_doc_example_on_the_board(tmp_path):
    """docs/api.md's reader example, as written, on qemu-m3 (a rows model, frames and labels in /rom)."""
    from tests.test_docs import block
    graph = _graph(0)
    graph.input_buffer, graph.patch = "rows", "auto"
    mct_format.write(graph, tmp_path / "camera.mct")
    m = mct_format.read(tmp_path / "camera.mct")
    rng = np.random.default_rng(0)
    (tmp_path / "frames.bin").write_bytes(b"".join(random_input(rng, m).tobytes() for _ in range(4)))
    (tmp_path / "labels.bin").write_bytes(bytes([0, 1, 0]))
    script = tmp_path / "block.py"
    script.write_text(block("docs/api.md", "import mcutrain [2]") + "print('block ran', frames.read() == b'')\n")
    boards.build_firmware("qemu-m3")
    res = boards.run_script("qemu-m3", script, [tmp_path / n for n in ("camera.mct", "frames.bin", "labels.bin")],
                            timeout=300)
    assert res.returncode == 0 and "block ran True" in res.output, res.output
