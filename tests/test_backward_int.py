"""The integer backward (header byte 50 bit 2): the C core against the numpy integer reference, bit
for bit, on random graphs; its gradients against the float32 backward's."""
import numpy as np
import pytest

from host_tools.model import mct_format
from host_tools.model import numerics
from host_tools.reference import oracle as reference
from host_tools.errors import UserError
from tests.support.board_models import check_on_board
from tests.support.core_check import assert_trains_like_reference
from tests.support.graphgen import random_graph, random_input, random_model
from host_tools.ccore.core import CoreError, CoreModel

RULES = ["frac8", "stochastic", "nearest"]
SEEDS = range(40)


def _model(seed, rule, backward="int", **kw):
    return random_model(seed, {"update_rule": rule, "backward": backward}, **kw)


_input = random_input


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("seed", SEEDS)
def test_training_steps_bit_exact(seed, rule):
    rng, data, m = _model(seed, rule)
    assert m.train_flags == numerics.UPDATE_RULES[rule] | numerics.INT_BACKWARD
    assert_trains_like_reference(rng, data, m, qas=seed % 4 != 3)


def test_gradients_close_to_the_float_backward():
    """Each trained tensor's gradient (one step, lr 0) against the float32 backward's on the same
    graph and input: cosine >= 0.999 for every tensor (measured: >= 0.99998 over 60 graphs)."""
    cosines = []
    for seed in range(60):
        rng, _, m = _model(seed, "stochastic")
        _, _, mf = _model(seed, "stochastic", backward="float")
        x, label = _input(rng, m), int(rng.integers(0, m.n_classes))
        ri, rf = reference.Reference(m), reference.Reference(mf)
        ri.train_step(x, label, 0.0)
        rf.train_step(x, label, 0.0)
        assert set(ri.grads) == set(rf.grads)
        for t, gf in rf.grads.items():
            gf, gi = gf.reshape(-1).astype(np.float64), ri.grads[t].reshape(-1)
            nf, ni = np.linalg.norm(gf), np.linalg.norm(gi)
            if nf < 1e-12 and ni < 1e-12:
                continue
            cosines.append(float(gf @ gi / (nf * ni)))
    assert len(cosines) > 200
    assert min(cosines) >= 0.999


def test_training_changes_the_trained_tensors():
    changed = total = 0
    for seed in range(20):
        rng, data, m = _model(seed, "nearest", n_bias_update=2)
        core = CoreModel(data)
        for _ in range(6):
            core.train_step(_input(rng, m), int(rng.integers(0, m.n_classes)), 0.5)
        after = mct_format.load(core.save())
        for t0, t1, trained in zip(m.tensors, after.tensors, m.trainable):
            if trained:
                total += 1
                changed += not np.array_equal(t0, t1)
            else:
                np.testing.assert_array_equal(t0, t1)
    assert changed > 0.8 * total


def test_workspace_holds_the_gradient_exponents():
    for seed in range(5):
        _, data, m = _model(seed, "frac8")
        _, data_f, m_f = _model(seed, "frac8", backward="float")
        got, got_f = CoreModel(data).mem()["trained"], CoreModel(data_f).mem()["trained"]
        assert got == numerics.model_trained_bytes(m)
        assert got - got_f == (2 * len(m.acts) + 3) // 4 * 4


def test_int_backward_with_master_is_refused():
    g = random_graph(np.random.default_rng(2))
    g.update_rule, g.backward = "master", "int"
    with pytest.raises(UserError, match="integer update rule"):
        mct_format.to_bytes(g)
    import struct
    import zlib
    _, data, _ = _model(2, "frac8")
    bad = bytearray(data)
    bad[50] = numerics.INT_BACKWARD          # master + int
    struct.pack_into("<I", bad, 12, zlib.crc32(bad[16:]) & 0xFFFFFFFF)
    with pytest.raises(CoreError) as e:
        CoreModel(bytes(bad))
    assert e.value.a == numerics.INT_BACKWARD
    with pytest.raises(mct_format.FormatError, match="master"):
        mct_format.load(bytes(bad))


@pytest.mark.parametrize("board", ["unix", "qemu-m3"])
def test_int_backward_on_the_board(board, tmp_path):
    check_on_board(board, tmp_path, {f"{rule}.mct": _model(11, rule, n_bias_update=2)[1] for rule in RULES})


def test_integer_helpers_against_exact_arithmetic():
    from fractions import Fraction
    from host_tools.reference.int_backward import bitlen, f32_split, shift_round
    rng = np.random.default_rng(0)
    f = np.concatenate([rng.standard_normal(500) * 10.0 ** rng.integers(-40, 38, 500),
                        [1e-45, -3e-42, 0.0, 1.0, 2147483520.0]]).astype(np.float32)
    mant, e = f32_split(f)
    for fv, mv, ev in zip(f.tolist(), mant.tolist(), e.tolist()):
        assert abs(mv) < 2 ** 24 and Fraction(mv) * Fraction(2) ** ev == Fraction(fv)
    v = rng.integers(-2 ** 40, 2 ** 40, 2000)
    s = rng.integers(-30, 70, 2000)
    got = shift_round(v, s)
    for vv, ss, gg in zip(v.tolist(), s.tolist(), got.tolist()):
        if ss > 62:
            want = 0
        elif ss > 0:
            want = (vv + (1 << (ss - 1))) >> ss          # Python ints: exact floor, half up
        else:
            want = max(-(1 << 62), min(1 << 62, vv << -ss))
        assert gg == want, (vv, ss)
    assert bitlen(np.array([0, 1, 255, 256, -256, 2 ** 62])).tolist() == [0, 1, 8, 9, 9, 63]
