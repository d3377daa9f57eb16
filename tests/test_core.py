"""The C core (built for the host) against the numpy reference, and the reference against PyTorch."""
import struct
import zlib

import numpy as np
import pytest

from host_tools.model import graph as g
from host_tools.model import mct_format
from host_tools.reference import kernels
from host_tools.reference import oracle as reference
from tests.support.graphgen import random_graph, random_input, random_model
from host_tools.ccore.core import CoreError, CoreModel

SEEDS = range(60)


def _model(seed, **kw):
    return random_model(seed, **kw)


_input = random_input


@pytest.mark.parametrize("seed", SEEDS)
def test_forward_bit_exact(seed):
    rng, data, m = _model(seed)
    ref, core = reference.Reference(m), CoreModel(data)
    for _ in range(3):
        x = _input(rng, m)
        np.testing.assert_array_equal(core.forward(x, m.n_classes), ref.forward(x))


@pytest.mark.parametrize("qas", [True, False])
@pytest.mark.parametrize("seed", SEEDS)
def test_training_steps_bit_exact(seed, qas):
    rng, data, m = _model(seed)
    ref, core = reference.Reference(m, qas=qas), CoreModel(data, qas=qas)
    for _ in range(4):
        x, label = _input(rng, m), int(rng.integers(0, m.n_classes))
        lr = float(rng.choice([0.01, 0.1, 0.5]))
        loss_ref = ref.train_step(x, label, lr)
        loss_core = core.train_step(x, label, lr)
        assert loss_core == pytest.approx(loss_ref, rel=1e-5, abs=1e-6)
    saved = core.save()
    assert saved == m.to_bytes()           # every trained int8/int32 tensor identical
    if qas and any(m.trainable):
        mct_format.load(saved)             # the saved file is valid (CRC, layout)


def test_training_changes_exactly_the_trained_tensors():
    changed = 0
    for seed in range(20):
        rng, data, m = _model(seed, n_bias_update=2)
        core = CoreModel(data)
        for _ in range(8):
            core.train_step(_input(rng, m), int(rng.integers(0, m.n_classes)), 0.5)
        after = mct_format.load(core.save())
        for t0, t1, trained in zip(m.tensors, after.tensors, m.trainable):
            if not trained:
                np.testing.assert_array_equal(t0, t1)
            else:
                changed += not np.array_equal(t0, t1)
    assert changed > 0.8 * sum(sum(_model(s, n_bias_update=2)[2].trainable) for s in range(20))


def test_backward_matches_torch_autograd():
    """Gradients of every trained tensor against autograd on the dequantized graph: cosine >= 0.99
    for nearly all (a clamp boundary hit by rounding can flip one mask bit), >= 0.9 for every one."""
    torch_graph = pytest.importorskip("tests.support.torch_graph")
    cosines = []
    for seed in range(80):
        rng, data, m = _model(seed)
        ref = reference.Reference(m)
        x, label = _input(rng, m), int(rng.integers(0, m.n_classes))
        expected = torch_graph.autograd_grads(ref, x, label)
        ref.train_step(x, label, 0.0)
        for t, want in expected.items():
            want = want.reshape(len(want), -1)[:len(ref.grads[t].reshape(len(ref.grads[t]), -1))]
            got = ref.grads[t].reshape(want.shape).astype(np.float64)
            nw, ng = np.linalg.norm(want), np.linalg.norm(got)
            if nw < 1e-12 and ng < 1e-12:
                continue
            cosines.append(float((want * got).sum() / (nw * ng + 1e-30)))
    cosines = np.array(cosines)
    assert len(cosines) > 100
    assert cosines.min() >= 0.9
    assert np.mean(cosines >= 0.99) >= 0.97


def test_reference_conv_matches_torch():
    """The integer conv against PyTorch's float conv on dequantized tensors: at most one step off."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    for groups, k, stride, pad in [(1, 3, 1, 1), (4, 3, 2, 1), (1, 1, 1, 0), (2, 5, 2, 2), (4, 3, 1, 0)]:
        c, o = 4, 8
        x = rng.integers(-128, 128, size=(c, 9, 9)).astype(np.int8)
        w = rng.integers(-127, 128, size=(o, c // groups, k, k)).astype(np.int8)
        b = rng.integers(-3000, 3000, size=o).astype(np.int32)
        ws = rng.uniform(0.001, 0.01, size=o)
        xs, xz, ys, yz = 0.02, -5, 0.05, 3
        from host_tools.model.quant import quantize_multiplier
        mult, shift = map(np.array, zip(*(quantize_multiplier(xs * s / ys) for s in ws)))
        got = kernels.conv2d_s8(x, w, b, mult, shift, xz, yz, -128, 127, (stride, stride), (pad, pad), groups)
        xr = torch.tensor((x.astype(np.float64) - xz) * xs)[None]
        wr = torch.tensor(w.astype(np.float64) * ws[:, None, None, None])
        yr = torch.nn.functional.conv2d(xr, wr, torch.tensor(b * ws * xs), stride=stride, padding=pad, groups=groups)[0]
        want = np.clip(np.round(yr.numpy() / ys) + yz, -128, 127)
        assert np.abs(got.astype(np.int64) - want).max() <= 1


def test_memory_plan_never_overlaps_live_buffers():
    from host_tools.memory.arena import make_plan
    for seed in range(40):
        gr = random_graph(np.random.default_rng(seed))
        plan = make_plan(gr, mct_format.trained_params(gr))
        bufs = plan.buffers
        for i, a in enumerate(bufs):
            assert a.offset + a.size <= plan.arena_size
            for b in bufs[i + 1:]:
                live = a.first <= b.last and b.first <= a.last
                apart = a.offset + a.size <= b.offset or b.offset + b.size <= a.offset
                assert apart or not live, (a, b)


def test_arena_peak_is_measured_and_within_the_plan():
    rng, data, m = _model(3, n_bias_update=2)
    core = CoreModel(data)
    assert core.mem()["arena_peak"] == 0
    core.train_step(_input(rng, m), 0, 0.1)
    mem = core.mem()
    assert 0 < mem["arena_peak"] <= mem["arena"] == m.arena_size
    assert mem["workspace"] >= mem["arena"] + mem["trained"]


# -- bad model files: a clear error, never a crash ----------------------------------------------

def _refresh_crc(b):
    b = bytearray(b)
    struct.pack_into("<I", b, 12, zlib.crc32(b[16:]) & 0xFFFFFFFF)
    return bytes(b)


def _err(data):
    with pytest.raises(CoreError) as e:
        CoreModel(data)
    return e.value.code


MCT_E = dict(TRUNCATED=1, MAGIC=2, VERSION=3, SIZE=4, CRC=5, TABLE=6, TOO_MANY=7, TENSOR=8,
             ALIGN=9, ACT=10, OP=11, TRAIN=12, NOT_TRAINABLE=13, INPUT=14, LABEL=15, LR=16)


def test_bad_files_are_rejected_with_the_reason():
    _, data, m = _model(5, n_bias_update=1)
    assert _err(data[:40]) == MCT_E["TRUNCATED"]
    assert _err(data[:-1]) == MCT_E["TRUNCATED"]
    assert _err(data + b"\0") == MCT_E["SIZE"]
    assert _err(b"XXXX" + data[4:]) == MCT_E["MAGIC"]
    assert _err(_refresh_crc(data[:4] + b"\x02\x00" + data[6:])) == MCT_E["VERSION"]
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    assert _err(bytes(flipped)) == MCT_E["CRC"]

    def patched(off, fmt, value):
        b = bytearray(data)
        struct.pack_into(fmt, b, off, value)
        return _refresh_crc(b)

    h = mct_format.HEADER.unpack_from(data)
    t_off, a_off, o_off = h[11], h[12], h[13]
    assert _err(patched(28, "<I", len(data))) == MCT_E["TABLE"]               # tensor table past the end
    assert _err(patched(20, "<H", 0)) == MCT_E["TOO_MANY"]                   # no ops
    assert _err(patched(t_off, "<I", len(data) - 16)) == MCT_E["TENSOR"]      # tensor data past the end
    assert _err(patched(t_off + 8, "<B", 9)) == MCT_E["TENSOR"]               # unknown dtype
    assert _err(patched(a_off + 8, "<I", m.arena_size)) == MCT_E["ACT"]       # activation outside arena
    assert _err(patched(a_off, "<H", 0)) == MCT_E["ACT"]                      # empty activation
    assert _err(patched(o_off, "<B", 77)) in (MCT_E["OP"],)                   # unknown op type
    assert _err(patched(o_off + 2, "<H", 999)) == MCT_E["OP"]                 # input index out of range
    assert _err(patched(o_off + 16, "<H", 999)) == MCT_E["OP"]                # weight tensor out of range
    assert _err(patched(o_off + 36, "<f", float("nan"))) == MCT_E["OP"]      # NaN scale
    assert _err(patched(o_off + 33, "<B", 7)) == MCT_E["OP"] if m.ops[0].type == g.CONV2D else True


def test_every_truncation_and_every_single_byte_corruption_is_caught():
    _, data, _ = _model(9, n_bias_update=1)
    for n in range(0, len(data), 7):
        _err(data[:n])
    rng = np.random.default_rng(0)
    for pos in rng.integers(0, len(data), size=300):
        b = bytearray(data)
        b[pos] ^= int(rng.integers(1, 256))
        if pos in range(12, 16):
            continue                       # the CRC field itself: caught as CRC mismatch below
        _err(bytes(b))


def test_step_errors():
    rng, data, m = _model(5, n_bias_update=1)
    core = CoreModel(data)
    x = _input(rng, m)
    for bad_x, code in [(x[:-1], "INPUT"), (np.concatenate([x, x[:1]]), "INPUT")]:
        with pytest.raises(CoreError) as e:
            core.train_step(bad_x, 0, 0.1)
        assert e.value.code == MCT_E[code]
    with pytest.raises(CoreError) as e:
        core.train_step(x, m.n_classes, 0.1)
    assert e.value.code == MCT_E["LABEL"]
    for lr in (float("nan"), float("inf"), -1.0):
        with pytest.raises(CoreError) as e:
            core.train_step(x, 0, lr)
        assert e.value.code == MCT_E["LR"]


def test_model_without_trained_tensors_refuses_training():
    rng = np.random.default_rng(1)
    gr = random_graph(rng, n_bias_update=0, weights=False)
    gr.train_classifier = False
    data = mct_format.to_bytes(gr)
    m = mct_format.load(data)
    core = CoreModel(data)
    x = _input(rng, m)
    np.testing.assert_array_equal(core.forward(x, m.n_classes), reference.Reference(m).forward(x))
    with pytest.raises(CoreError) as e:
        core.train_step(x, 0, 0.1)
    assert e.value.code == MCT_E["NOT_TRAINABLE"]
    assert core.mem()["trained"] == 0
