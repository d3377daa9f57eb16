"""Lookup-table activations (op type 7: Hardswish, Hardsigmoid, Sigmoid, Tanh, SiLU, LeakyReLU):
their tables against PyTorch, the C core against the numpy reference bit for bit (forward, float32
and integer backward, the patch-based stage), the gradients against PyTorch autograd, each through
the CLI; and the model families they and the 1-D layers open (DS-CNN keyword spotting, a 1-D CNN
over sensor windows) converted, checked on the boards and trained."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from host_tools.ccore.core import CoreModel  # noqa: E402
from host_tools.frontends.torch_fx import quantize_input  # noqa: E402
from host_tools.memory import patch as patching  # noqa: E402
from host_tools.model import graph as g  # noqa: E402
from host_tools.model import mct_format  # noqa: E402
from host_tools.model.lut import NAMES, make_lut  # noqa: E402
from host_tools.reference import oracle as reference  # noqa: E402
from tests.support import torch_graph  # noqa: E402
from tests.support.graphgen import _conv, random_input  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "support" / "activation_models.py"
PARAMS = {"leaky_relu": (0.1,)}
TORCH = {"hardswish": F.hardswish, "hardsigmoid": F.hardsigmoid, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
         "silu": F.silu, "leaky_relu": lambda x: F.leaky_relu(x, 0.1)}


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "host_tools", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


@pytest.mark.parametrize("fn", NAMES)
def test_tables_are_pytorchs_function_and_derivative(fn):
    """Every int8 input: the table is PyTorch's value rounded to the output's step, the derivative
    table PyTorch's autograd gradient (0 where the int8 output saturates)."""
    xs, xz, ys, yz = 0.05, 7, 0.03, -20
    lut = make_lut("a", "x", "y", fn, PARAMS.get(fn, ()), xs, xz, ys, yz)
    x = ((torch.arange(-128, 128, dtype=torch.float64) - xz) * xs).requires_grad_(True)
    y = TORCH[fn](x)
    (d,) = torch.autograd.grad(y.sum(), x)
    v = y.detach() / ys + yz
    assert np.array_equal(lut.table, torch.round(v).clamp(-128, 127).numpy().astype(np.int8))
    inside = ((v >= -128) & (v <= 127)).numpy()
    assert inside.sum() > 100           # the test reaches the function's shape, not only its clamp
    np.testing.assert_allclose(lut.deriv[inside], d.numpy()[inside], rtol=1e-6, atol=1e-7)
    assert not lut.deriv[~inside].any()


def _graph(rng, fn, backward="float", patch=None):
    """conv -> LUT -> depthwise conv -> LUT -> global pool -> FC, trained from the first conv on (or,
    with a patch stage, the first conv frozen)."""
    shapes = {"x": (2, 10, 10)}
    c1, s1, _, z1 = _conv(rng, "c1", "x", "a1", 2, 10, 10, 4, 3, 1, 1, 1, 1 / 255, -128, False)
    c2, s2, _, z2 = _conv(rng, "c2", "l1", "a2", 4, *s1[1:], 4, 3, 2, 1, 4, 0.02, -5, False)
    for c in (c1, c2):
        c.y_scale *= 12         # the convs' outputs stay inside int8: the tables' ends are what is tested
    l1 = make_lut("act1", "a1", "l1", fn, PARAMS.get(fn, ()), c1.y_scale, z1, 0.02, -5)
    l2 = make_lut("act2", "a2", "l2", fn, PARAMS.get(fn, ()), c2.y_scale, z2, 0.03, 3)
    shapes.update(a1=s1, l1=s1, a2=s2, l2=s2, p=(4, 1, 1), logits=(5, 1, 1))
    fc = g.FullyConnected("fc", "p", "logits", rng.integers(-127, 128, (5, 4)).astype(np.int8),
                          rng.integers(-300, 300, 5).astype(np.int32), np.full(5, 0.01, np.float32), 0.03, 3, 0.05, 0)
    graph = g.Graph("x", "logits", shapes, [c1, l1, c2, l2, g.GlobalAvgPool("gap", "l2", "p", 0.03, 3), fc],
                    1 / 255, -128, n_bias_update=1 if patch else 2, weight_update={} if patch else {0: 0.5, 1: 1.0})
    graph.backward, graph.update_rule, graph.patch = backward, "stochastic", patch
    return graph


@pytest.mark.parametrize("backward", ["float", "int"])
@pytest.mark.parametrize("fn", NAMES)
def test_core_trains_like_the_reference(fn, backward):
    """Forward, loss and every trained tensor after four steps: C core == numpy reference."""
    rng = np.random.default_rng(NAMES.index(fn))
    data = mct_format.to_bytes(_graph(rng, fn, backward))
    m = mct_format.load(data)
    ref, core = reference.Reference(m), CoreModel(data)
    for _ in range(4):
        x, label = random_input(rng, m), int(rng.integers(0, 5))
        assert np.array_equal(core.forward(x, 5), ref.forward(x))
        assert core.train_step(x, label, 0.05) == pytest.approx(ref.train_step(x, label, 0.05), rel=1e-5)
    assert core.save() == m.to_bytes()


def test_patch_stage_runs_the_table_on_windows():
    """A frozen conv -> LUT first stage in 2x2 patches: the same logits as whole tensors."""
    rng = np.random.default_rng(5)
    whole = _graph(rng, "hardswish", patch=None)
    whole.weight_update, whole.n_bias_update = {}, 1
    data_whole = mct_format.to_bytes(whole)
    whole.patch = patching.Stage(2, 2, 2)            # conv, LUT
    data_patch = mct_format.to_bytes(whole)
    assert mct_format.load(data_patch).stage == patching.Stage(2, 2, 2)
    a, b = CoreModel(data_whole), CoreModel(data_patch)
    m = mct_format.load(data_whole)
    for _ in range(4):
        x = random_input(rng, m)
        assert np.array_equal(a.forward(x, 5), b.forward(x, 5))
        assert np.array_equal(b.logits32(5)[0], a.logits32(5)[0])
        assert np.array_equal(b.forward(x, 5), reference.Reference(m).forward(x))


@pytest.mark.parametrize("fn", NAMES)
def test_gradients_are_pytorch_autograds(fn):
    """The reference's gradients of the trained tensors (through both tables) against autograd on
    the dequantized graph at the same int8 point: equal but for float32 rounding."""
    rng = np.random.default_rng(10 + NAMES.index(fn))
    m = mct_format.load(mct_format.to_bytes(_graph(rng, fn)))
    luts = {op.out: TORCH[fn] for op in m.ops if op.type == g.LUT}
    for _ in range(3):
        ref = reference.Reference(m)
        x, label = random_input(rng, m), int(rng.integers(0, 5))
        want = torch_graph.autograd_grads(ref, x, label, luts)
        ref.train_step(x, label, 0.0)
        for t, w in want.items():
            got = ref.grads[t].reshape(-1)[:w.size].astype(np.float64)
            w = w.reshape(-1)[:got.size]
            np.testing.assert_allclose(got, w, rtol=1e-4, atol=1e-5 * max(np.abs(w).max(), 1e-12))


# ----------------------------------------------------------------------------------------------
# through the CLI, as a user converts a model with these activations

@pytest.fixture(scope="module")
def image_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("lut")
    rng = np.random.default_rng(0)
    np.savez(d / "calib.npz", x=rng.random((64, 1, 12, 12), dtype=np.float32), y=rng.integers(0, 4, 64))
    return d


@pytest.mark.parametrize("fn", NAMES)
def test_cli_converts_each_activation(fn, image_data):
    from tests.support.activation_models import ACTIVATION_NETS
    out = image_data / f"{fn}.mct"
    r = _cli("convert", f"{MODELS}:{ACTIVATION_NETS[fn].__name__}", "--calib", image_data / "calib.npz",
             "--n-bias-update", "2", "-o", out)
    assert r.returncode == 0, r.stderr
    assert f" {fn[:10]} " in r.stdout and "lookup-table" in r.stdout       # the report's rows and plan line
    assert "int8 vs float top-1 agreement" in r.stdout
    m = mct_format.read(out)
    assert sum(op.type == g.LUT for op in m.ops) == 2
    ref, core = reference.Reference(m), CoreModel(out.read_bytes())
    x = quantize_input(m, np.load(image_data / "calib.npz")["x"][:4])
    for i, xi in enumerate(x):
        assert np.array_equal(core.forward(xi.reshape(-1), 4), ref.forward(xi.reshape(-1)))
        assert core.train_step(xi.reshape(-1), i % 4, 0.05) == pytest.approx(ref.train_step(xi.reshape(-1), i % 4, 0.05),
                                                                             rel=1e-5)
    assert core.save() == m.to_bytes()


def test_cli_refuses_an_unsupported_attribute_naming_the_node(image_data):
    """A 1-D conv with dilation: the error names the layer and says what to do; no file."""
    src = image_data / "dilated.py"
    src.write_text("import torch.nn as nn\n"
                   "class Dilated(nn.Module):\n"
                   "    def __init__(self):\n"
                   "        super().__init__()\n"
                   "        self.tconv = nn.Conv1d(3, 4, 3, dilation=2)\n"
                   "        self.fc = nn.Linear(4, 2)\n"
                   "    def forward(self, x):\n"
                   "        return self.fc(nn.functional.hardswish(self.tconv(x)).mean(-1))\n")
    np.savez(image_data / "sig.npz", x=np.random.default_rng(0).random((8, 3, 32), dtype=np.float32))
    out = image_data / "bad.mct"
    r = _cli("convert", f"{src}:Dilated", "--calib", image_data / "sig.npz", "-o", out)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "Conv1d 'tconv'" in r.stderr and "dilation" in r.stderr and "larger kernel" in r.stderr
    assert not out.exists()


# ----------------------------------------------------------------------------------------------
# model families: convert through the CLI, check on the boards, train

FAMILIES = {"DSCNN": ((1, 49, 10), 12), "SensorCNN1d": ((3, 64), 6)}


@pytest.fixture(scope="module")
def families(tmp_path_factory):
    d = tmp_path_factory.mktemp("families")
    done = {}
    for name, (shape, k) in FAMILIES.items():
        rng = np.random.default_rng(1)
        np.savez(d / f"{name}.npz", x=rng.random((48,) + shape, dtype=np.float32), y=rng.integers(0, k, 48))
        r = _cli("convert", f"{MODELS}:{name}", "--calib", d / f"{name}.npz", "--n-bias-update", "2",
                 "-o", d / f"{name}.mct")
        done[name] = (r, d / f"{name}.mct", d / f"{name}.npz")
    return done


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_converts_and_trains(families, name):
    r, mct, data = families[name]
    assert r.returncode == 0, r.stderr
    assert "int8 vs float top-1 agreement on the first 48 calibration images: 100.00%" in r.stdout, r.stdout
    m = mct_format.read(mct)
    shape, k = FAMILIES[name]
    assert m.input_shape == ((shape[0], 1, shape[1]) if len(shape) == 2 else shape) and m.n_classes == k
    d = np.load(data)
    xs = quantize_input(m, d["x"][:4]).reshape(4, -1)
    core = CoreModel(mct.read_bytes())
    losses = [[core.train_step(x, int(y), 0.05) for x, y in zip(xs, d["y"][:4])] for _ in range(8)]
    assert np.mean(losses[-1]) < np.mean(losses[0]), losses


@pytest.mark.parametrize("name,board", [("DSCNN", "unix"), ("SensorCNN1d", "unix"), ("SensorCNN1d", "qemu-m3")])
def test_family_checks_on_board(families, name, board):
    _, mct, data = families[name]
    r = _cli("check", mct, "--board", board, "--data", data, "--inputs", 3, "--steps", 3)
    assert r.returncode == 0 and "check passed" in r.stdout, r.stdout + r.stderr
