"""Update rules of header byte 50 (master, frac8, stochastic, nearest): the C core against the numpy
reference, bit for bit, on random graphs; the workspace each rule takes; what each rule does."""
import struct
import zlib

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

RULES = list(numerics.UPDATE_RULES)
SEEDS = range(40)


def _model(seed, rule, **kw):
    return random_model(seed, {"update_rule": rule}, **kw)


_input = random_input


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("seed", SEEDS)
def test_training_steps_bit_exact(seed, rule):
    rng, data, m = _model(seed, rule)
    assert m.train_flags == numerics.UPDATE_RULES[rule]
    assert_trains_like_reference(rng, data, m, qas=seed % 4 != 3)


@pytest.mark.parametrize("rule", RULES)
def test_workspace_per_rule(rule):
    """The trained bytes the core allocates are those the host computes: int copy + shadow + index."""
    for seed in range(10):
        _, data, m = _model(seed, rule)
        mem = CoreModel(data).mem()
        assert mem["trained"] == numerics.model_trained_bytes(m)
        n = [(c, t.itemsize) for t, c in zip(m.tensors, m.trained_count) if c]
        copies = sum((c * size + 3) // 4 * 4 for c, size in n)
        per_elem = {"master": 4, "frac8": 1, "stochastic": 0, "nearest": 0}[rule]
        index = (2 * len(m.tensors) + 3) // 4 * 4 if n else 0      # u16 entries: far below 256 KB of copies
        shadow = mem["trained"] - copies - index
        assert per_elem * sum(c for c, _ in n) <= shadow <= per_elem * sum(c for c, _ in n) + 3 * len(n)


def test_stochastic_seed_restarts_the_stream():
    rng, data, m = _model(5, "stochastic", n_bias_update=2)
    xs = [(_input(rng, m), int(rng.integers(0, m.n_classes))) for _ in range(3)]
    saves = []
    for seed in (1, 2, 1):
        core, ref = CoreModel(data), reference.Reference(mct_format.load(data))
        core.seed(seed)
        ref.seed(seed)
        for x, label in xs:
            core.train_step(x, label, 0.3)
            ref.train_step(x, label, 0.3)
        assert core.save() == ref.m.to_bytes()
        saves.append(core.save())
    assert saves[0] == saves[2] and saves[0] != saves[1]


def _apply_many(rule, step, n=1, w0=0):
    """Apply the same step n times to one element starting at w0 (reference numerics)."""
    flags = numerics.UPDATE_RULES[rule]
    shadow = np.array([w0], np.float32) if rule == "master" else np.zeros(1, np.int8)
    w = np.array([w0])
    for i in range(n):
        w, _ = numerics.apply_step(flags, w, shadow, np.float32([step]), -127, 127,
                                   numerics.rng_at(7, np.array([i])))
    return int(w[0])


def test_small_steps_accumulate_except_with_nearest():
    # 40 steps of -0.1: master and frac8 (0.1 is 26/256) reach 4, nearest never moves
    assert _apply_many("master", -0.1, 40) == 4
    assert _apply_many("frac8", -0.1, 40) == round(40 * 26 / 256)
    assert _apply_many("nearest", -0.1, 40) == 0
    assert _apply_many("nearest", -0.6, 10) == 10
    assert _apply_many("frac8", 1000.0, 1, w0=5) == -127 and _apply_many("frac8", -1000.0, 1) == 127


def test_stochastic_rounding_is_unbiased():
    flags = numerics.UPDATE_RULES["stochastic"]
    n = 200000
    for step in (0.3, -0.3, 2.75, -0.01):
        w, _ = numerics.apply_step(flags, np.zeros(n, np.int64), None, np.full(n, step, np.float32),
                                   -127, 127, numerics.rng_at(123, np.arange(n)))
        assert abs(-w.mean() - step) < 4 * 0.5 / np.sqrt(n)
        assert set(np.unique(-w)) <= {np.floor(step), np.floor(step) + 1}


def test_unknown_training_flags_are_rejected():
    _, data, _ = _model(1, "master")
    bad = bytearray(data)
    bad[50] = 0x80
    struct.pack_into("<I", bad, 12, zlib.crc32(bad[16:]) & 0xFFFFFFFF)
    with pytest.raises(CoreError) as e:
        CoreModel(bytes(bad))
    assert e.value.a == 0x80
    with pytest.raises(mct_format.FormatError, match="byte 50"):
        mct_format.load(bytes(bad))
    g = random_graph(np.random.default_rng(1))
    g.update_rule = "sometimes"
    with pytest.raises(UserError, match="update rule"):
        mct_format.to_bytes(g)


@pytest.mark.parametrize("board", ["unix", "qemu-m3"])
def test_each_rule_trains_bit_exactly_on_the_board(board, tmp_path):
    """The MicroPython binding (and the Cortex-M3 soft-float build) against the reference."""
    check_on_board(board, tmp_path, {f"{rule}.mct": _model(11, rule, n_bias_update=2)[1] for rule in RULES})


SEED_SCRIPT = """\
import mcutrain
data = open('model.mct', 'rb').read()
x = bytes(i %% 256 for i in range(%d))
for seed in (1, 2, 1):
    m = mcutrain.Model(data)
    m.seed(seed)
    for i in range(3):
        m.train_step(x, i %% %d, 0.3)
    print('S', seed, m.predict(x), bytes(m.forward(x)).hex())
try:
    mcutrain.Model(open('bad.mct', 'rb').read())
except ValueError as e:
    print('E', e)
"""


def test_seed_and_flags_on_unix(tmp_path):
    from host_tools.boards import runners as boards
    boards.build_firmware("unix")
    rng, data, m = _model(5, "stochastic", n_bias_update=2)
    size = int(np.prod(m.input_shape))
    (tmp_path / "model.mct").write_bytes(data)
    bad = bytearray(data)
    bad[50] = 0x80
    struct.pack_into("<I", bad, 12, zlib.crc32(bad[16:]) & 0xFFFFFFFF)
    (tmp_path / "bad.mct").write_bytes(bytes(bad))
    (tmp_path / "main.py").write_text(SEED_SCRIPT % (size, m.n_classes))
    res = boards.run_script("unix", tmp_path / "main.py", [tmp_path / "model.mct", tmp_path / "bad.mct"])
    lines = res.output.splitlines()
    runs = [ln for ln in lines if ln.startswith("S ")]
    assert len(runs) == 3 and runs[0].split()[2:] == runs[2].split()[2:], res.output
    # the same three steps in the reference, seeded alike
    x = (np.arange(size) % 256).astype(np.uint8).astype(np.int8)
    for ln in runs:
        seed = int(ln.split()[1])
        ref = reference.Reference(mct_format.load(data))
        ref.seed(seed)
        for i in range(3):
            ref.train_step(x, i % m.n_classes, 0.3)
        assert ln.split()[3] == ref.forward(x).tobytes().hex()
    assert "E model has unknown training flags 0x80 (header byte 50)" in lines, res.output
