"""Gate multiply (op type 9, squeeze-and-excitation's x * gate with a C x 1 x 1 gate): the C core
against the numpy reference bit for bit (forward, float32 and integer backward), the gradients to the
tensor and to the gate against PyTorch autograd, the CLI with its report, a refused multiply naming
its node, and the family it opens (MobileNetV3-Small style: Hardswish and SE) converted, checked on
the boards and trained."""
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
from tests.support.graphgen import _conv, random_input  # noqa: E402
from tests.support.op_checks import (cli as _cli, core_trains_like_the_reference,  # noqa: E402
                                     gradients_are_autograds, save_onnx_classifier, random_images, tflite_conv_input)

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "support" / "se_models.py"


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
    core_trains_like_the_reference(mct_format.to_bytes(_graph(rng, backward)), rng, 5)


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
    gradients_are_autograds(mct_format.load(mct_format.to_bytes(_graph(rng))), rng, 5, min_tensors=6)


# ----------------------------------------------------------------------------------------------
# the CLI and the MobileNetV3-Small family

@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory):
    d = tmp_path_factory.mktemp("mobilenetv3")
    data = random_images(d)
    out = {}
    for backward in ("float", "int"):       # biases of the last 12 convs: the SE convs and those before
        out[backward] = _cli("convert", f"{MODELS}:MobileNetV3Tiny", "--calib", data, "--n-bias-update",
                             "12", "--backward", backward, "-o", d / f"mb-{backward}.mct"), d / f"mb-{backward}.mct"
    return out, data


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


# ----------------------------------------------------------------------------------------------
# the other front ends: torch.export, ONNX, TF-Lite int8

def test_torch_export_maps_the_gate(tmp_path):
    """An SE block as an ExportedProgram (aten.mul by the gate): the rebuilt model computes the
    source's values and converts with one gate multiply."""
    import torch.nn as nn
    from host_tools.frontends import torch_export as fe
    from host_tools.frontends.torch_fx import convert_torch
    from tests.support.se_models import SqueezeExcite
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.Hardswish(), SqueezeExcite(8, 4), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(8, 3)).eval()
    x = torch.rand(16, 1, 8, 8)
    ep = torch.export.export(net, (x[:2],))
    rebuilt = fe.module_from_exported(ep)
    with torch.no_grad():
        assert float((rebuilt(x) - net(x)).abs().max()) < 1e-5
    graph = convert_torch(rebuilt, x.numpy())
    assert [op.kind for op in graph.ops].count(g.MUL) == 1


def _onnx_se(path, gate_shape=(1, 1)):
    from onnx import helper, numpy_helper
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n) for n, s in
             (("c/w", (4, 1, 3, 3)), ("f1/w", (2, 4, 1, 1)), ("f2/w", (4, 2, 1, 1)), ("fc/w", (4, 3)))]
    pool = [helper.make_node("GlobalAveragePool", ["a"], ["p"], name="se_pool")] if gate_shape == (1, 1) else \
        [helper.make_node("Identity", ["a"], ["p"], name="se_pool")]
    nodes = [helper.make_node("Conv", ["x", "c/w"], ["c"], name="conv", pads=[1] * 4),
             helper.make_node("HardSwish", ["c"], ["a"], name="hswish")] + pool + [
             helper.make_node("Conv", ["p", "f1/w"], ["f1"], name="se_fc1"),
             helper.make_node("Relu", ["f1"], ["r"], name="se_relu"),
             helper.make_node("Conv", ["r", "f2/w"], ["f2"], name="se_fc2"),
             helper.make_node("HardSigmoid", ["f2"], ["s"], name="se_gate", alpha=1 / 6, beta=0.5),
             helper.make_node("Mul", ["a", "s"], ["y0"], name="se_mul")]
    return save_onnx_classifier(path, "se", nodes, inits, (1, 8, 8), "y0")


def test_onnx_maps_the_gate(tmp_path):
    """An SE block in ONNX: the rebuilt model against the onnx package's reference evaluator, then
    converted; a Mul of two full maps refused, naming the node."""
    pytest.importorskip("onnx", reason="onnx is not installed (make venv installs it)")
    from onnx.reference import ReferenceEvaluator
    from host_tools.errors import UserError
    from host_tools.frontends.onnx_model import load_onnx
    from host_tools.frontends.torch_fx import convert_torch
    path = _onnx_se(tmp_path / "se.onnx")
    x = np.random.default_rng(1).random((16, 1, 8, 8), dtype=np.float32)
    want = ReferenceEvaluator(str(path)).run(None, {"x": x})[0]
    net = load_onnx(str(path), (1, 8, 8))
    with torch.no_grad():
        assert np.abs(net(torch.from_numpy(x)).numpy() - want).max() < 1e-4
    assert [op.kind for op in convert_torch(net, x).ops].count(g.MUL) == 1
    with pytest.raises(UserError, match="ONNX Mul node 'se_mul'.*gate"):
        load_onnx(str(_onnx_se(tmp_path / "bad.onnx", gate_shape=None)), (1, 8, 8))


def test_tflite_mul_matches_the_interpreter(tmp_path):
    """An int8 .tflite with an SE gate (MEAN, FULLY_CONNECTED as the 1x1 conv, LOGISTIC, MUL by the
    [1, 1, 1, C] gate): every layer equal to the interpreter's but the table's step."""
    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed (the TF-Lite interpreter)")
    sys.path.insert(0, str(ROOT / "examples"))
    from tflite_writer import TFLiteWriter
    from host_tools.frontends.tflite_parity import tflite_parity
    rng = np.random.default_rng(0)
    w = TFLiteWriter()
    x, c = tflite_conv_input(w, rng, -10)
    axes = w.tensor("axes", [2], "int32", data=np.array([1, 2]))
    p = w.tensor("pool", [1, 1, 1, 4], "int8", scale=0.03, zero=-10)
    w.op("MEAN", [c, axes], [p], "ReducerOptions", keep_dims=True)
    k2 = w.tensor("fc1/w", [4, 1, 1, 4], "int8", scale=np.full(4, 0.02), zero=np.zeros(4),
                  data=rng.integers(-127, 128, (4, 1, 1, 4)))
    b2 = w.tensor("fc1/b", [4], "int32", scale=np.full(4, 6e-4), zero=np.zeros(4), data=rng.integers(-900, 900, 4))
    f = w.tensor("fc1", [1, 1, 1, 4], "int8", scale=0.05, zero=0)
    w.op("CONV_2D", [p, k2, b2], [f], "Conv2DOptions", padding="VALID")
    s = w.tensor("gate", [1, 1, 1, 4], "int8", scale=1 / 256, zero=-128)
    w.op("LOGISTIC", [f], [s])
    y0 = w.tensor("se_mul", [1, 8, 8, 4], "int8", scale=0.02, zero=-5)
    w.op("MUL", [c, s], [y0], "MulOptions")
    m = w.tensor("mean", [1, 1, 1, 4], "int8", scale=0.02, zero=-5)
    w.op("MEAN", [y0, axes], [m], "ReducerOptions", keep_dims=True)
    fl = w.tensor("flat", [1, 4], "int8", scale=0.02, zero=-5)
    w.op("RESHAPE", [m, w.tensor("shape", [2], "int32", data=np.array([1, 4]))], [fl], "ReshapeOptions", shape=[1, 4])
    y = w.tensor("logits", [1, 3], "int8", scale=0.02, zero=0)
    w.op("FULLY_CONNECTED", [fl, w.tensor("fc/w", [3, 4], "int8", scale=0.01, zero=0,
                                          data=rng.integers(-127, 128, (3, 4))), -1], [y], "FullyConnectedOptions")
    w.save(str(tmp_path / "se.tflite"), inputs=[x], outputs=[y])
    r = tflite_parity(tmp_path / "se.tflite", rng.random((20, 1, 8, 8), dtype=np.float32))
    assert r["per_op"]["conv"] == 0 and r["per_op"]["gate"] <= 1, r
    # the multiply is TF-Lite's requantization, bit for bit: it differs only where the gate's table did
    assert r["per_op"]["se_mul"] <= r["per_op"]["gate"], r
