"""Gate multiply (op type 9, squeeze-and-excitation's x * gate with a C x 1 x 1 gate): the C core
against the numpy reference bit for bit (forward, float32 and integer backward), the gradients to the
tensor and to the gate against PyTorch autograd, the CLI with its report, a refused multiply naming
its node, and the family it opens (MobileNetV3-Small style: Hardswish and SE) converted, checked on
the boards and trained."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from host_tools.ccore.core import CoreModel  # noqa: E402
from host_tools.frontends.torch_fx import quantize_input  # noqa: E402
from host_tools.model import graph as g  # noqa: E402
from host_tools.model import mct_format  # noqa: E402
from host_tools.model.layout import to_device  # noqa: E402
from host_tools.reference import oracle as reference  # noqa: E402
from tests.support import torch_graph  # noqa: E402
from tests.support.graphgen import _conv, random_input  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "support" / "se_models.py"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "host_tools", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


def _graph(rng, backward="float"):
    """conv -> (global pool -> 1x1 conv: the gate) -> conv * gate -> global pool -> FC, every conv
    trained: gradients reach the gate's conv through the gate and the first conv through both."""
    shapes = {"x": (2, 6, 6)}
    c1, s1, _, z1 = _conv(rng, "c1", "x", "a", 2, 6, 6, 4, 3, 1, 1, 1, 1 / 255, -128, False)
    c1.y_scale *= 8             # outputs inside int8: the multiply's gradients are what is tested
    gate, _, _, zg = _conv(rng, "gate", "p1", "s", 4, 1, 1, 4, 1, 1, 0, 1, c1.y_scale, z1, False)
    gate.y_scale *= 8
    y_scale = c1.y_scale * gate.y_scale * 4        # the product's range (each factor within 1/8 of int8), with room
    mul = g.Mul("se", "a", "s", "y", c1.y_scale, z1, gate.y_scale, zg, y_scale, -3)
    shapes.update(a=s1, p1=(4, 1, 1), s=(4, 1, 1), y=s1, p2=(4, 1, 1), logits=(5, 1, 1))
    fc = g.FullyConnected("fc", "p2", "logits", rng.integers(-127, 128, (5, 4)).astype(np.int8),
                          rng.integers(-300, 300, 5).astype(np.int32), np.full(5, 0.01, np.float32), y_scale, -3,
                          0.05, 0)
    ops = [c1, g.GlobalAvgPool("gap1", "a", "p1", c1.y_scale, z1), gate, mul,
           g.GlobalAvgPool("gap2", "y", "p2", y_scale, -3), fc]
    graph = g.Graph("x", "logits", shapes, ops, 1 / 255, -128, n_bias_update=2, weight_update={0: 1.0, 1: 1.0})
    graph.backward, graph.update_rule, graph.patch = backward, "stochastic", None
    return graph


@pytest.mark.parametrize("backward", ["float", "int"])
def test_core_trains_like_the_reference(backward):
    """Forward, loss and every trained tensor after four steps: C core == numpy reference."""
    rng = np.random.default_rng(1)
    data = mct_format.to_bytes(_graph(rng, backward))
    m = mct_format.load(data)
    ref, core = reference.Reference(m), CoreModel(data)
    for _ in range(4):
        x, label = random_input(rng, m), int(rng.integers(0, 5))
        assert np.array_equal(core.forward(x, 5), ref.forward(x))
        assert core.train_step(x, label, 0.05) == pytest.approx(ref.train_step(x, label, 0.05), rel=1e-5)
    assert core.save() == m.to_bytes()


def test_reference_multiply_is_the_real_product():
    """The reference's output: x * gate in real units, in the output's steps within TF-Lite MUL's two
    roundings (the high half of the product, 1/2 step in units of 2^-right; then the right shift)."""
    rng = np.random.default_rng(3)
    m = mct_format.load(mct_format.to_bytes(_graph(rng)))
    ref = reference.Reference(m)
    ref.forward(random_input(rng, m))
    op = next(op for op in m.ops if op.type == g.MUL)
    real = ((ref.acts[op.in0].astype(np.float64) - op.in0_zero) * op.in0_scale *
            (ref.acts[op.in1].astype(np.float64) - op.in1_zero) * op.in1_scale)
    got = (ref.acts[op.out].astype(np.float64) - op.out_zero) * op.out_scale
    bound = 0.5 + 0.5 * 2.0 ** min(op.add_shift[0], 0)
    assert np.abs(got - real).max() <= bound * op.out_scale * (1 + 1e-6)
    assert len(np.unique(ref.acts[op.out])) > 10


def test_gradients_are_pytorch_autograds():
    """The reference's gradients of every trained tensor (through the tensor and through the gate)
    against autograd on the dequantized graph at the same int8 point."""
    rng = np.random.default_rng(10)
    m = mct_format.load(mct_format.to_bytes(_graph(rng)))
    for _ in range(3):
        ref = reference.Reference(m)
        x, label = random_input(rng, m), int(rng.integers(0, 5))
        want = torch_graph.autograd_grads(ref, x, label)
        ref.train_step(x, label, 0.0)
        assert len(want) >= 6
        for t, w in want.items():
            got = ref.grads[t].reshape(-1)[:w.size].astype(np.float64)
            w = w.reshape(-1)[:got.size]
            assert np.abs(w).max() > 0
            np.testing.assert_allclose(got, w, rtol=1e-4, atol=1e-5 * max(np.abs(w).max(), 1e-12))


# ----------------------------------------------------------------------------------------------
# the CLI and the MobileNetV3-Small family

@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory):
    d = tmp_path_factory.mktemp("mobilenetv3")
    rng = np.random.default_rng(1)
    np.savez(d / "data.npz", x=rng.random((48, 1, 16, 16), dtype=np.float32), y=rng.integers(0, 5, 48))
    out = {}
    for backward in ("float", "int"):       # biases of the last 12 convs: the SE convs and those before
        out[backward] = _cli("convert", f"{MODELS}:MobileNetV3Tiny", "--calib", d / "data.npz", "--n-bias-update",
                             "12", "--backward", backward, "-o", d / f"mb-{backward}.mct"), d / f"mb-{backward}.mct"
    return out, d / "data.npz"


@pytest.mark.parametrize("backward", ["float", "int"])
def test_cli_converts_mobilenetv3_and_it_trains(mobilenet, backward):
    """Hardswish and SE through the CLI: three gate multiplies, said so by the report, the int8 graph
    agreeing with the float model, the C core the reference's in forward and training (gradients
    through the gates), and training lowering the loss."""
    (r, mct), data = mobilenet[0][backward], mobilenet[1]
    assert r.returncode == 0, r.stderr
    assert "gate multiplies (squeeze-and-excitation): 3, 0 in the patch stage, 3 on whole tensors" in r.stdout, \
        r.stdout
    assert "int8 vs float top-1 agreement on the first 48 calibration images: 100.00%" in r.stdout, r.stdout
    m = mct_format.read(mct)
    assert sum(op.type == g.MUL for op in m.ops) == 3
    d = np.load(data)
    xs = to_device(quantize_input(m, d["x"][:4]))
    core, ref = CoreModel(mct.read_bytes()), reference.Reference(m)
    for x, y in zip(xs[:2], d["y"][:2]):
        assert np.array_equal(core.forward(x, 5), ref.forward(x))
        assert core.train_step(x, int(y), 0.05) == pytest.approx(ref.train_step(x, int(y), 0.05), rel=1e-5)
    assert core.save() == m.to_bytes()
    core = CoreModel(mct.read_bytes())
    losses = [[core.train_step(x, int(y), 0.05) for x, y in zip(xs, d["y"][:4])] for _ in range(8)]
    assert np.mean(losses[-1]) < np.mean(losses[0]), losses


@pytest.mark.parametrize("board", ["unix", "qemu-m3"])
def test_mobilenetv3_checks_on_board(mobilenet, board):
    """The int8 forward bit-exact with the reference, and training steps leaving identical tensors
    (the Cortex-M3 has no FPU: its model takes the integer backward)."""
    (_, mct), data = mobilenet[0]["int" if board == "qemu-m3" else "float"], mobilenet[1]
    r = _cli("check", mct, "--board", board, "--data", data, "--inputs", 3, "--steps", 3)
    assert r.returncode == 0 and "check passed" in r.stdout, r.stdout + r.stderr


def test_cli_refuses_a_product_of_two_maps_naming_the_node(tmp_path):
    """x * y of two full feature maps: the error names the node and says what is supported; no file."""
    src = tmp_path / "prod.py"
    src.write_text("import torch.nn as nn\n"
                   "class Prod(nn.Module):\n"
                   "    def __init__(self):\n"
                   "        super().__init__()\n"
                   "        self.a = nn.Conv2d(1, 4, 3, padding=1)\n"
                   "        self.b = nn.Conv2d(1, 4, 3, padding=1)\n"
                   "        self.fc = nn.Linear(4, 3)\n"
                   "    def forward(self, x):\n"
                   "        return self.fc((self.a(x) * self.b(x)).mean([2, 3]))\n")
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).random((8, 1, 8, 8), dtype=np.float32))
    out = tmp_path / "bad.mct"
    r = _cli("convert", f"{src}:Prod", "--calib", tmp_path / "d.npz", "-o", out)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "mul 'mul'" in r.stderr and "channel gate" in r.stderr, r.stderr
    assert not out.exists()
