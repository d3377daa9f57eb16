"""Never crash the board (docs/reliability.md): fuzzing of the model reader and the engine, the
inputs the fuzzer found, hostile use from Python on both boards, out of memory, numerics, long runs."""
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from host_tools.boards import runners as boards
from host_tools.boards import check
from host_tools.model import mct_format
from host_tools.reference import oracle as reference
from tests.support.board_models import fixed_graph, long_run, normalise, numeric_models, write_inputs
from tests.support.graphgen import random_graph
from host_tools.ccore.core import CoreError, CoreModel

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "tests" / "board"
REGRESSIONS = sorted((ROOT / "fuzz" / "regressions").glob("*"))
BOARDS = ["unix", "qemu-m3"]
FUZZ_SECONDS = int(os.environ.get("MCT_FUZZ_SECONDS", "20"))


def _patched(data):
    """What the fuzz target loads: file size and CRC rewritten to match."""
    b = bytearray(data)
    if len(b) >= 16:
        struct.pack_into("<II", b, 8, len(b), zlib.crc32(bytes(b[16:])) & 0xFFFFFFFF)
    return bytes(b)


# -- fuzzing ----------------------------------------------------------------------------------

def _libfuzzer_missing():
    if shutil.which("clang") is None:
        return "clang is not installed (tools/install_deps.sh installs clang and libclang-rt-dev)"
    probe = subprocess.run(["clang", "-print-file-name=libclang_rt.fuzzer-x86_64.a"], capture_output=True, text=True)
    if not os.path.isabs(probe.stdout.strip()) or not os.path.exists(probe.stdout.strip()):
        return "clang has no libFuzzer runtime (Debian: libclang-rt-dev)"
    return None


def _make(*targets):
    proc = subprocess.run(["make", "-s", *targets], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds")
    from fuzz.make_corpus import main
    main([str(out), "--n", "16"])
    return out


@pytest.mark.parametrize("target,share", [("fuzz_model", 2), ("fuzz_model_raw", 1)])
def test_fuzz_short(target, share, seeds, tmp_path):
    """A short libFuzzer run of each target from the writer's models: no crash, leak or timeout."""
    missing = _libfuzzer_missing()
    if missing:
        pytest.skip(missing)
    _make(str(ROOT / "build" / "fuzz" / target))          # the rule is on the absolute path
    seconds = max(2, FUZZ_SECONDS * share // 3)
    proc = subprocess.run([str(ROOT / "build" / "fuzz" / target), f"-max_total_time={seconds}", "-rss_limit_mb=2048", "-print_final_stats=1",
                           "-timeout=20", "-max_len=65536", f"-artifact_prefix={tmp_path}/", str(tmp_path), str(seeds)],
                          capture_output=True, text=True, timeout=seconds + 120)
    found = sorted(p.name for p in tmp_path.glob("crash-*")) + sorted(p.name for p in tmp_path.glob("timeout-*"))
    assert proc.returncode == 0 and not found, proc.stderr[-4000:]
    runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr)
    assert runs and int(runs[-1]) > 100, proc.stderr[-2000:]


@pytest.mark.skipif(not REGRESSIONS, reason="no fuzz regressions")
def test_fuzz_regressions_replay_under_sanitizers():
    """Every input the fuzzer found, through the fuzz harness built with the C compiler's
    ASan/UBSan (no clang needed): loads or is refused, never an error report."""
    probe = subprocess.run(["cc", "-fsanitize=address,undefined", "-x", "c", "-", "-o", "/dev/null"],
                           input="int main(void){return 0;}", capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("the C compiler cannot build with -fsanitize=address,undefined")
    _make(str(ROOT / "build" / "fuzz" / "fuzz_replay"))
    proc = subprocess.run([str(ROOT / "build" / "fuzz" / "fuzz_replay"), *map(str, REGRESSIONS)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


@pytest.mark.parametrize("path", REGRESSIONS, ids=[p.name for p in REGRESSIONS])
def test_fuzz_regression_on_core(path):
    """The same inputs through the ctypes core: refused with a reason, or run and saved soundly."""
    data = _patched(path.read_bytes())
    try:
        core = CoreModel(data)
    except CoreError:
        return
    m = mct_format.load(data)
    x = np.random.default_rng(0).integers(-128, 128, size=int(np.prod(m.input_shape))).astype(np.int8)
    core.forward(x, m.n_classes)
    if any(m.trainable):
        for lr in (0.05, 1e30, 3e38):
            try:
                core.train_step(x, 0, lr)
            except CoreError as e:
                assert e.code == 17           # MCT_E_NUMERIC
    CoreModel(core.save())


# -- the reader: bugs found by the fuzzer and by reading it --------------------------------------

def _raw_model(acts, op, tensors, arena):
    """A .mct file from raw parts: acts [(c, h, w, offset)], one op record (dict of the OP fields
    in order), tensors [(np array, dtype code, flags)] (the softmax table is added last)."""
    tensors = list(tensors) + [(np.ones(256, np.float32), 3, 0)]
    t_off = 64
    a_off = t_off + mct_format.TENSOR_ENTRY * len(tensors)
    o_off = a_off + mct_format.ACT_ENTRY * len(acts)
    pos = (o_off + 64 + 15) // 16 * 16
    entries, body = [], b""
    for arr, code, flags in tensors:
        raw = np.ascontiguousarray(arr).tobytes()
        entries.append(mct_format.TENSOR.pack(pos + len(body), arr.size, code, flags, 0, arr.size if flags else 0))
        body += raw + b"\0" * (-len(raw) % 16)
    size = pos + len(body)
    head = mct_format.HEADER.pack(b"MCTR", 1, 64, size, 0, len(tensors), len(acts), 1,
                       0, len(acts) - 1, len(tensors) - 1, t_off, a_off, o_off, arena, 1.0, 0, 0, 0, 0, 0)
    table = b"".join(entries) + b"".join(mct_format.ACT.pack(c, h, w, 0, off, 0xFFFFFFFF, 0xFFFFFFFF, 0)
                                         for c, h, w, off in acts)
    rec = mct_format.OP.pack(*op)
    data = head + table + rec
    data += b"\0" * (pos - len(data)) + body
    return _patched(data)


def _fc_record(w, b, mult, shift, ws):
    return (4, 0, 0, 0xFFFF, 1, 0, 0, 0, -128, 127, w, b, mult, shift, ws, 0, 0, 0, 0, 0, 0, 0, 0,
            1.0, 0.0, 1.0, 0, 0, 0, 0, 0, 0, 0)


def _fc_model(n_in_shape, n_out, weight_count):
    n_in = int(np.prod(n_in_shape))
    acts = [(*n_in_shape, 0), (n_out, 1, 1, n_in)]
    tensors = [(np.zeros(weight_count, np.int8), 1, 0), (np.zeros(n_out, np.int32), 2, 0),
               (np.full(n_out, 1 << 30, np.int32), 2, 0), (np.zeros(n_out, np.int32), 2, 0),
               (np.ones(n_out, np.float32), 3, 0)]
    return _raw_model(acts, _fc_record(0, 1, 2, 3, 4), tensors, n_in + n_out)


def test_raw_fc_model_loads():
    """The raw writer makes a model the reader accepts (so the tests below test what they say)."""
    core = CoreModel(_fc_model((6, 2, 1), 3, 36))
    assert list(core.forward(np.zeros(12, np.int8), 3)) == [0, 0, 0]


def test_fc_weight_count_does_not_wrap():
    """in.size * out.size was computed in 32 bits: 65600 x 65474 = 2^32 + 127104, so a weight
    tensor of 127104 bytes passed for one of 4.3 GB and the forward pass read far past it."""
    assert 65600 * 65474 - (1 << 32) == 127104
    with pytest.raises(CoreError) as e:
        CoreModel(_fc_model((16400, 4, 1), 65474, 127104))
    assert e.value.code == 11                    # MCT_E_OP


def test_fan_in_beyond_int32_accumulator_is_refused():
    """255 * 128 * fan-in must fit the int32 accumulator: 65793 inputs per output at most."""
    CoreModel(_fc_model((3, 21931, 1), 1, 65793))           # 65793 = 3 x 21931
    with pytest.raises(CoreError) as e:
        CoreModel(_fc_model((2, 32897, 1), 1, 65794))
    assert e.value.code == 11 and e.value.a == 12    # MCT_E_OP, MCT_P_FAN_IN


def test_extreme_bias_and_requantization_do_not_overflow():
    """A bias at the int32 limit plus the largest sum, a multiplier near 2^31 with shift 30 and a
    zero point of 127: computed in 64 bits and saturated, as the reference does."""
    n = 8
    acts = [(n, 1, 1, 0), (2, 1, 1, n)]
    tensors = [(np.full(2 * n, -128, np.int8), 1, 0), (np.array([2**31 - 1, -2**31], np.int32), 2, 0),
               (np.full(2, 2**31 - 1, np.int32), 2, 0), (np.full(2, 30, np.int32), 2, 0),
               (np.ones(2, np.float32), 3, 0)]
    rec = list(_fc_record(0, 1, 2, 3, 4))
    rec[5], rec[7] = 127, 127                     # x_zero and y_zero
    data = _raw_model(acts, tuple(rec), tensors, n + 2)
    x = np.full(n, -128, np.int8)                # (x - 127) * -128 = +32640 per input
    out = CoreModel(data).forward(x, 2)
    np.testing.assert_array_equal(out, reference.Reference(mct_format.load(data)).forward(x))
    assert list(out) == [127, -128]


def test_trained_tensor_overlapping_a_table_is_refused():
    """Found by the fuzzer: a trained tensor whose data overlapped a table or another tensor was
    accepted; save() then wrote its trained copy over them, a file that no longer loads."""
    rng = np.random.default_rng(3)
    data = bytearray(mct_format.to_bytes(random_graph(rng, n_bias_update=1)))
    m = mct_format.load(bytes(data))
    t_off = struct.unpack_from("<I", data, 28)[0]
    trained = [i for i, tr in enumerate(m.trainable) if tr]
    other = [i for i, tr in enumerate(m.trainable) if not tr][0]
    for t in trained:
        bad = bytearray(data)
        struct.pack_into("<I", bad, t_off + 16 * t, struct.unpack_from("<I", data, t_off + 16 * other)[0])
        with pytest.raises(CoreError) as e:
            CoreModel(_patched(bad))
        assert e.value.code == 8 and e.value.index == t      # MCT_E_TENSOR
        bad = bytearray(data)
        struct.pack_into("<I", bad, t_off + 16 * t, 64)      # onto the header and tensor table
        with pytest.raises(CoreError) as e:
            CoreModel(_patched(bad))
        assert e.value.code == 8


# -- numerics -----------------------------------------------------------------------------------

def test_updates_that_are_not_finite_are_skipped_core_and_reference_agree(tmp_path):
    files, (lo, hi) = numeric_models(tmp_path)
    rng = np.random.default_rng(0)
    for name, lr, qas in [("tiny_scale.mct", 1e30, True), ("model.mct", 1e30, True), ("model.mct", 3e38, True),
                          ("model.mct", 3e38, False), ("nan_table.mct", 0.05, True)]:
        data = files[name]
        m = mct_format.load(data)
        core, ref = CoreModel(data, qas=qas), reference.Reference(m, qas=qas)
        for _ in range(6):
            x = rng.integers(-128, 128, size=int(np.prod(m.input_shape))).astype(np.int8)
            label = int(rng.integers(0, m.n_classes))
            with np.errstate(all="ignore"):
                ref_loss = ref.train_step(x, label, lr)
            if not np.isfinite(ref_loss):
                with pytest.raises(CoreError) as e:
                    core.train_step(x, label, lr)
                assert e.value.code == 17                     # MCT_E_NUMERIC: step skipped
            else:
                core.train_step(x, label, lr)
        counters = core.counters()
        assert counters["skipped"] == ref.skipped_steps
        assert counters["skipped_updates"] == ref.skipped_updates
        saved = core.save()
        assert saved == m.to_bytes()                          # bit-exact with the reference
        mct_format.load(saved)
        if name == "tiny_scale.mct":
            assert counters["skipped_updates"] > 0 and saved[lo:hi] == data[lo:hi]
        if name == "nan_table.mct":
            assert counters["skipped"] == 6 and saved == data


# -- boards: hostile use, numerics, out of memory, long runs -------------------------------------

@pytest.fixture(scope="module")
def board_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reliability")
    numeric_models(tmp)
    huge = fixed_graph(np.random.default_rng(6), size=200, width=64)
    mct_format.write(huge, tmp / "huge.mct")
    write_inputs(tmp)
    return tmp


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("script,names", [
    ("reliability_hostile", ["model.mct", "huge.mct"]),
    ("reliability_numerics", ["model.mct", "tiny_scale.mct", "nan_table.mct", "fc_range.txt", "inputs.bin",
                              "labels.bin"]),
])
def test_board_reliability_script(board, script, names, board_files):
    res = boards.run_script(board, HERE / f"{script}.py", [board_files / n for n in names], timeout=300,
                            heapsize="2M" if board == "unix" else None)
    expected = (HERE / f"{script}.py.exp").read_text()
    assert res.returncode == 0, res.output
    assert normalise(res.output, floats=True) == normalise(expected, floats=True), res.output


LONG_STEPS = {"unix": 10000, "qemu-m3": 500}
GC_BLOCK = {"unix": 32, "qemu-m3": 16}


@pytest.mark.parametrize("board", BOARDS)
def test_long_run_heap_and_arena_flat(board, board_files, tmp_path):
    for name in ("model.mct", "inputs.bin", "labels.bin"):
        shutil.copy(board_files / name, tmp_path / name)
    figures, out = long_run(board, LONG_STEPS[board], tmp_path, timeout=400)
    assert len(figures) == 6, out
    assert figures[-1][0] == LONG_STEPS[board]
    heap = [f[1] for f in figures]
    assert heap[0] == heap[-1], out                        # heap free: the same after the last step as after the first
    assert max(heap) - min(heap) <= GC_BLOCK[board], out   # and within one GC block in between
    peaks = [f[2] for f in figures]
    # the arena peak is the highest byte that differs from the fill pattern (0xA5): a trailing data
    # byte that happens to equal it reads a byte or two lower at some marks
    assert peaks[0] == peaks[-1] and max(peaks) - min(peaks) <= 4, out
    assert "heap flat: True peak flat: True" in out
    assert re.search(r"steps \d+ skipped 0 skipped updates 0", out), out


def test_formatted_error_messages_fit_micropythons_buffer():
    """MicroPython v1.25 formats an error message in a stack buffer of MP_MAX_UNCOMPRESSED_TEXT_LEN
    bytes, one short of the longest message's NUL (ASan found our MemoryError message writing past
    it): every formatted message of the binding must be shorter than the build's longest message."""
    header = ROOT / "build" / "unix" / "genhdr" / "compressed.data.h"
    if not header.exists():
        pytest.skip("the unix firmware is not built (make firmware BOARD=unix)")
    longest = int(re.search(r"MP_MAX_UNCOMPRESSED_TEXT_LEN \((\d+)\)", header.read_text()).group(1))
    source = (ROOT / "modules" / "mcutrain" / "modmcutrain.c").read_text()
    formatted = re.findall(r'mp_raise_msg_varg\([^;]*?MP_ERROR_TEXT\("((?:[^"\\]|\\.)*)"\)', source, re.S)
    assert len(formatted) >= 10
    too_long = [m for m in formatted if len(m) >= longest]
    assert not too_long, (longest, too_long)


def test_global_average_pool_over_more_than_2_24_values_is_refused():
    """The pool sums a channel in int32: at most 2^24 values of +-128 (more would overflow)."""
    def pool_model(h, w):
        rec = (3, 0, 0, 0xFFFF, 1, 0, 0, 0, -128, 127, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF,
               0, 0, 0, 0, 0, 0, 0, 0, 1.0, 0.0, 1.0, 0, 0, 0, 0, 0, 0, 0)
        return _raw_model([(1, h, w, 0), (1, 1, 1, h * w)], rec, [], h * w + 1)
    assert list(CoreModel(pool_model(4096, 4096)).forward(np.full(4096 * 4096, -128, np.int8), 1)) == [-128]
    with pytest.raises(CoreError) as e:
        CoreModel(pool_model(4097, 4096))
    assert e.value.code == 11                    # MCT_E_OP (shape)


def test_two_threads_training_one_model(tmp_path):
    """unix (the port with threads, and without a GIL: they run at once): concurrent train_step and
    predict calls on one model are serialised by the model's lock; all steps run and count, nothing
    crashes (without the lock, one thread's forward read the input pointer the other had cleared)."""
    here = Path(__file__).parent / "board"
    mct_format.write(fixed_graph(np.random.default_rng(3)), tmp_path / "model.mct")
    xs, ys = check.make_inputs(mct_format.read(tmp_path / "model.mct"), 6)
    (tmp_path / "inputs.bin").write_bytes(xs.tobytes())
    (tmp_path / "labels.bin").write_bytes(bytes(int(y) for y in ys))
    res = boards.run_script("unix", here / "reliability_threads.py",
                            [tmp_path / n for n in ("model.mct", "inputs.bin", "labels.bin")], timeout=120)
    assert res.returncode == 0, res.output
    assert res.output.strip() == (here / "reliability_threads.py.exp").read_text().strip()
