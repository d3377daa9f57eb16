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
from host_tools.model.layout import to_device  # noqa: E402
from host_tools.memory import patch as patching  # noqa: E402
from host_tools.model import graph as g  # noqa: E402
from host_tools.model import mct_format  # noqa: E402
from host_tools.model.lut import NAMES, make_lut  # noqa: E402
from host_tools.reference import oracle as reference  # noqa: E402
from tests.support.graphgen import _conv, random_input  # noqa: E402
from tests.support.op_checks import (core_trains_like_the_reference, gradients_are_autograds,  # noqa: E402
                                     patch_stage_is_whole, tflite_conv_input)

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
    core_trains_like_the_reference(mct_format.to_bytes(_graph(rng, fn, backward)), rng, 5)


def test_patch_stage_runs_the_table_on_windows():
    """A frozen conv -> LUT first stage in 2x2 patches: the same logits as whole tensors."""
    rng = np.random.default_rng(5)
    whole = _graph(rng, "hardswish", patch=None)
    whole.weight_update, whole.n_bias_update = {}, 1
    patch_stage_is_whole(whole, patching.Stage(2, 2, 2), rng, 5)          # conv, LUT


def test_channel_reordering_passes_through_the_tables():
    """conv -> table -> depthwise -> table -> pool -> FC: the conv's channels reordered (for partial
    training), the outputs unchanged."""
    from host_tools.model import channel_order
    rng = np.random.default_rng(7)
    data = mct_format.to_bytes(_graph(rng, "silu"))
    m = mct_format.load(data)
    perm = channel_order.magnitude_order(m, 0)
    assert list(perm) != sorted(perm)
    out = channel_order.reorder(data, 0, perm)
    assert out is not None
    a, b = reference.Reference(m), reference.Reference(mct_format.load(out))
    for _ in range(5):
        x = random_input(rng, m)
        assert np.array_equal(a.forward(x), b.forward(x))


@pytest.mark.parametrize("fn", NAMES)
def test_gradients_are_pytorch_autograds(fn):
    """The reference's gradients of the trained tensors (through both tables) against autograd on
    the dequantized graph at the same int8 point: equal but for float32 rounding."""
    rng = np.random.default_rng(10 + NAMES.index(fn))
    m = mct_format.load(mct_format.to_bytes(_graph(rng, fn)))
    gradients_are_autograds(m, rng, 5, {op.out: TORCH[fn] for op in m.ops if op.type == g.LUT})


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
    x = to_device(quantize_input(m, np.load(image_data / "calib.npz")["x"][:4]))     # the device's byte order
    for i, xi in enumerate(x):
        assert np.array_equal(core.forward(xi, 4), ref.forward(xi))
        assert core.train_step(xi, i % 4, 0.05) == pytest.approx(ref.train_step(xi, i % 4, 0.05), rel=1e-5)
    assert core.save() == m.to_bytes()


@pytest.mark.parametrize("cls,backward,board", [("HardswishNet", "float", "unix"), ("SiLUNet", "int", "qemu-m3")])
def test_activation_model_checks_on_board(cls, backward, board, image_data):
    """The tables on the boards, trained with the float32 or the integer backward (Cortex-M3: no FPU)."""
    out = image_data / f"{cls}-{backward}.mct"
    r = _cli("convert", f"{MODELS}:{cls}", "--calib", image_data / "calib.npz", "--n-bias-update", "2",
             "--backward", backward, "-o", out)
    assert r.returncode == 0, r.stderr
    r = _cli("check", out, "--board", board, "--data", image_data / "calib.npz", "--inputs", 3, "--steps", 3)
    assert r.returncode == 0 and "check passed" in r.stdout, r.stdout + r.stderr


def test_cli_runs_a_table_in_the_patch_stage(image_data):
    """--patch 2:2x2 puts the first conv and its Hardswish table in the tiled stage; the report says
    so, and the C core's tiled forward is the reference's whole one."""
    out = image_data / "patched.mct"
    r = _cli("convert", f"{MODELS}:HardswishNet", "--calib", image_data / "calib.npz", "--n-bias-update", "1",
             "--patch", "2:2x2", "-o", out)
    assert r.returncode == 0, r.stderr
    assert "lookup-table activations: 2, 1 in the patch stage, 1 on whole tensors" in r.stdout, r.stdout
    m = mct_format.read(out)
    assert m.stage == patching.Stage(2, 2, 2)
    core, ref = CoreModel(out.read_bytes()), reference.Reference(m)
    for xi in to_device(quantize_input(m, np.load(image_data / "calib.npz")["x"][:4])):
        assert np.array_equal(core.forward(xi, 4), ref.forward(xi))


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

# name: (model file, input shape as the user's data has it, classes); ResNet basic blocks
# (tests/support/cli_models.py) needed nothing new: converted, checked and trained here alike
FAMILIES = {"DSCNN": (MODELS, (1, 49, 10), 12), "SensorCNN1d": (MODELS, (3, 64), 6),
            "ResNetTiny": (ROOT / "tests" / "support" / "cli_models.py", (1, 16, 16), 5)}


@pytest.fixture(scope="module")
def families(tmp_path_factory):
    d = tmp_path_factory.mktemp("families")
    done = {}
    for name, (src, shape, k) in FAMILIES.items():
        rng = np.random.default_rng(1)
        np.savez(d / f"{name}.npz", x=rng.random((48,) + shape, dtype=np.float32), y=rng.integers(0, k, 48))
        r = _cli("convert", f"{src}:{name}", "--calib", d / f"{name}.npz", "--n-bias-update", "2",
                 "-o", d / f"{name}.mct")
        done[name] = (r, d / f"{name}.mct", d / f"{name}.npz")
    return done


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_converts_and_trains(families, name):
    r, mct, data = families[name]
    assert r.returncode == 0, r.stderr
    assert "int8 vs float top-1 agreement on the first 48 calibration images: 100.00%" in r.stdout, r.stdout
    m = mct_format.read(mct)
    _, shape, k = FAMILIES[name]
    assert m.input_shape == ((shape[0], 1, shape[1]) if len(shape) == 2 else shape) and m.n_classes == k
    d = np.load(data)
    xs = to_device(quantize_input(m, d["x"][:4]))
    core = CoreModel(mct.read_bytes())
    losses = [[core.train_step(x, int(y), 0.05) for x, y in zip(xs, d["y"][:4])] for _ in range(8)]
    assert np.mean(losses[-1]) < np.mean(losses[0]), losses


@pytest.mark.parametrize("board", ["unix", "qemu-m3"])
@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_checks_on_board(families, name, board):
    """The int8 forward bit-exact with the reference, and training steps leaving identical tensors."""
    _, mct, data = families[name]
    r = _cli("check", mct, "--board", board, "--data", data, "--inputs", 3, "--steps", 3)
    assert r.returncode == 0 and "check passed" in r.stdout, r.stdout + r.stderr


# ----------------------------------------------------------------------------------------------
# the other front ends: torch.export, ONNX, TF-Lite int8

def test_torch_export_maps_every_activation(image_data):
    """An ExportedProgram with every activation: the rebuilt model computes the source's values, and
    the CLI converts it with one lookup table per activation."""
    import torch.nn as nn
    from host_tools.frontends import torch_export as fe
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Hardswish(), nn.Conv2d(4, 4, 1), nn.Hardsigmoid(),
                        nn.Conv2d(4, 4, 1), nn.Sigmoid(), nn.Conv2d(4, 4, 1), nn.Tanh(), nn.Conv2d(4, 4, 1),
                        nn.SiLU(), nn.Conv2d(4, 4, 1), nn.LeakyReLU(0.2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 4)).eval()
    x = torch.rand(8, 1, 12, 12)
    ep = torch.export.export(net, (x[:2],))
    torch.export.save(ep, image_data / "acts.pt2")
    with torch.no_grad():
        assert float((fe.module_from_exported(ep)(x) - net(x)).abs().max()) < 1e-5
    r = _cli("convert", image_data / "acts.pt2", "--calib", image_data / "calib.npz", "-o", image_data / "acts.mct")
    assert r.returncode == 0, r.stderr
    assert "lookup-table activations: 6" in r.stdout
    m = mct_format.read(image_data / "acts.mct")
    assert sum(op.type == g.LUT for op in m.ops) == 6


def _onnx_acts(path, hardsigmoid=(1 / 6, 0.5)):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "c/w"),
             numpy_helper.from_array(rng.standard_normal((4, 4)).astype(np.float32), "fc/w")]
    nodes = [helper.make_node("Conv", ["x", "c/w"], ["c"], name="conv", pads=[1] * 4),
             helper.make_node("HardSwish", ["c"], ["a1"], name="hswish"),
             helper.make_node("LeakyRelu", ["a1"], ["a2"], name="leaky", alpha=0.2),
             helper.make_node("Tanh", ["a2"], ["a3"], name="tanh"),
             helper.make_node("HardSigmoid", ["a3"], ["a4"], name="hsig", alpha=hardsigmoid[0], beta=hardsigmoid[1]),
             helper.make_node("Sigmoid", ["a4"], ["a5"], name="sig"),
             helper.make_node("GlobalAveragePool", ["a5"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flat"),
             helper.make_node("MatMul", ["f", "fc/w"], ["y"], name="dense")]
    gr = helper.make_graph(nodes, "acts", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 12, 12])],
                           [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(gr, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


@pytest.mark.parametrize("hardsigmoid", [(1 / 6, 0.5), (0.2, 0.5)])      # PyTorch's, ONNX's default
def test_onnx_maps_its_activations(image_data, hardsigmoid):
    """HardSwish, LeakyRelu, Tanh, HardSigmoid and Sigmoid: the rebuilt model against the onnx
    package's reference evaluator, then through the CLI."""
    pytest.importorskip("onnx", reason="onnx is not installed (make venv installs it)")
    from onnx.reference import ReferenceEvaluator
    from host_tools.frontends.onnx_model import load_onnx
    path = _onnx_acts(image_data / "acts.onnx", hardsigmoid)
    x = np.load(image_data / "calib.npz")["x"][:16]
    want = ReferenceEvaluator(str(path)).run(None, {"x": x})[0]
    with torch.no_grad():
        assert np.abs(load_onnx(str(path), (1, 12, 12))(torch.from_numpy(x)).numpy() - want).max() < 1e-5
    r = _cli("convert", path, "--calib", image_data / "calib.npz", "-o", image_data / "acts_onnx.mct")
    assert r.returncode == 0, r.stderr
    assert "lookup-table activations: 5" in r.stdout
    m = mct_format.read(image_data / "acts_onnx.mct")
    from host_tools.model.lut import tables
    lut = [op for op in m.ops if op.type == g.LUT][3]          # the HardSigmoid: its alpha in the table
    want, _ = tables("hardsigmoid", hardsigmoid, lut.in0_scale, lut.in0_zero, lut.out_scale, lut.out_zero)
    assert np.array_equal(m.tensors[lut.weight], want)


def test_onnx_refuses_an_unsupported_attribute_naming_the_node(image_data):
    """A 1-D Conv padded unevenly: the error names the node and what to do; no file."""
    pytest.importorskip("onnx", reason="onnx is not installed (make venv installs it)")
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3)).astype(np.float32), "c/w"),
             numpy_helper.from_array(rng.standard_normal((4, 2)).astype(np.float32), "fc/w")]
    nodes = [helper.make_node("Conv", ["x", "c/w"], ["c"], name="c1d", pads=[0, 1]),
             helper.make_node("Sigmoid", ["c"], ["s"], name="sig"),
             helper.make_node("GlobalAveragePool", ["s"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flat"),
             helper.make_node("MatMul", ["f", "fc/w"], ["y"], name="dense")]
    gr = helper.make_graph(nodes, "bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32])],
                           [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(gr, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, image_data / "c1d.onnx")
    np.savez(image_data / "sig.npz", x=rng.random((8, 3, 32), dtype=np.float32))
    r = _cli("convert", image_data / "c1d.onnx", "--calib", image_data / "sig.npz", "-o", image_data / "c1d.mct")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "ONNX Conv node 'c1d' pads asymmetrically" in r.stderr and "symmetric padding" in r.stderr
    assert not (image_data / "c1d.mct").exists()


TFLITE_OUT = {"LOGISTIC": (1 / 256, -128), "TANH": (1 / 128, 0), "HARD_SWISH": (0.03, -60), "LEAKY_RELU": (0.05, 20),
              "SILU": (0.03, -60)}


@pytest.mark.parametrize("kind", list(TFLITE_OUT))
def test_tflite_activation_is_within_a_step_of_the_interpreter(kind, tmp_path):
    """An int8 .tflite with the activation between a conv and the mean: the device's table against
    TF-Lite's reference kernel on TF-Lite's own inputs: at most one step apart (TF-Lite computes
    them in fixed point, the table is the float function rounded; SiLU, LOGISTIC then MUL in
    TF-Lite, one table here)."""
    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed (the TF-Lite interpreter)")
    sys.path.insert(0, str(ROOT / "examples"))
    from tflite_writer import TFLiteWriter
    from host_tools.frontends.tflite_parity import tflite_parity
    rng = np.random.default_rng(0)
    w = TFLiteWriter()
    x, c = tflite_conv_input(w, rng, 0)
    s, z = TFLITE_OUT[kind]
    a = w.tensor("my_act", [1, 8, 8, 4], "int8", scale=s, zero=z)
    if kind == "SILU":              # Keras' swish as TF-Lite writes it: x * LOGISTIC(x)
        sig = w.tensor("sig", [1, 8, 8, 4], "int8", scale=1 / 256, zero=-128)
        w.op("LOGISTIC", [c], [sig])
        w.op("MUL", [c, sig], [a], "MulOptions")
    else:
        w.op(kind, [c], [a], "LeakyReluOptions" if kind == "LEAKY_RELU" else None, alpha=0.2)
    axes = w.tensor("axes", [2], "int32", data=np.array([1, 2]))
    m = w.tensor("mean", [1, 1, 1, 4], "int8", scale=s, zero=z)
    w.op("MEAN", [a, axes], [m], "ReducerOptions", keep_dims=True)
    f = w.tensor("flat", [1, 4], "int8", scale=s, zero=z)
    w.op("RESHAPE", [m, w.tensor("shape", [2], "int32", data=np.array([1, 4]))], [f], "ReshapeOptions", shape=[1, 4])
    y = w.tensor("logits", [1, 3], "int8", scale=0.02, zero=0)
    w.op("FULLY_CONNECTED", [f, w.tensor("fc/w", [3, 4], "int8", scale=0.01, zero=0,
                                         data=rng.integers(-127, 128, (3, 4))), -1], [y], "FullyConnectedOptions")
    w.save(str(tmp_path / "act.tflite"), inputs=[x], outputs=[y])
    r = tflite_parity(tmp_path / "act.tflite", rng.random((20, 1, 8, 8), dtype=np.float32))
    assert r["per_op"]["my_act"] <= 1 and r["per_op"]["conv"] == 0, r


def test_torch_export_converts_a_1d_model(families, tmp_path):
    """The sensor CNN as an ExportedProgram (aten.conv1d, batch_norm on [N, C, W], max_pool1d,
    avg_pool1d, mean over the last dim): the rebuilt model computes the source's values and converts
    to the same int8 graph as the torch.fx route."""
    from tests.support.activation_models import SensorCNN1d
    from host_tools.frontends import torch_export as fe
    net = SensorCNN1d().eval()
    x = torch.from_numpy(np.load(families["SensorCNN1d"][2])["x"])
    ep = torch.export.export(net, (x[:2],))
    with torch.no_grad():
        assert float((fe.module_from_exported(ep)(x) - net(x)).abs().max()) < 1e-5
    torch.export.save(ep, tmp_path / "sensor.pt2")
    r = _cli("convert", tmp_path / "sensor.pt2", "--calib", families["SensorCNN1d"][2], "--n-bias-update", "2",
             "-o", tmp_path / "sensor.mct")
    assert r.returncode == 0, r.stderr
    a, b = mct_format.read(tmp_path / "sensor.mct"), mct_format.read(families["SensorCNN1d"][1])
    assert [op.type for op in a.ops] == [op.type for op in b.ops]
    assert all(np.array_equal(s, t) for s, t in zip(a.tensors, b.tensors))


def test_onnx_converts_a_1d_model(families, tmp_path):
    """The sensor CNN exported to ONNX (Conv and pools over one axis, SiLU as x * Sigmoid(x),
    ReduceMean over axis 2): the rebuilt model against the onnx package's reference evaluator, then
    through the CLI to the same ops as the torch.fx route."""
    pytest.importorskip("onnx", reason="onnx is not installed (make venv installs it)")
    import warnings
    from onnx.reference import ReferenceEvaluator
    from tests.support.activation_models import SensorCNN1d
    from host_tools.frontends.onnx_model import load_onnx
    x = np.load(families["SensorCNN1d"][2])["x"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(SensorCNN1d().eval(), (torch.from_numpy(x[:1]),), str(tmp_path / "sensor.onnx"), dynamo=False,
                          input_names=["x"], dynamic_axes={"x": {0: "N"}}, opset_version=17)
    want = ReferenceEvaluator(str(tmp_path / "sensor.onnx")).run(None, {"x": x[:16]})[0]
    with torch.no_grad():
        got = load_onnx(str(tmp_path / "sensor.onnx"), (1,) + x.shape[1:])(torch.from_numpy(x[:16])).numpy()
    assert np.abs(got - want).max() < 1e-5
    r = _cli("convert", tmp_path / "sensor.onnx", "--calib", families["SensorCNN1d"][2], "--n-bias-update", "2",
             "-o", tmp_path / "sensor.mct")
    assert r.returncode == 0, r.stderr
    assert "lookup-table activations: 1" in r.stdout
    a, b = mct_format.read(tmp_path / "sensor.mct"), mct_format.read(families["SensorCNN1d"][1])
    assert [op.type for op in a.ops] == [op.type for op in b.ops] and a.input_shape == (3, 1, 64)
