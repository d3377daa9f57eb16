"""Front ends of `host_tools convert`: torch.export (a forward() torch.fx cannot trace), TorchScript,
ONNX and TF-Lite int8, each on a file only it reads (examples/frontend_models.py), checked against
its source framework (the PyTorch model, the onnx package's reference evaluator, the TF-Lite
interpreter), through the CLI, on the board, and in training; bad input through the CLI."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from host_tools.model import mct_format  # noqa: E402
from host_tools.reference import oracle as reference  # noqa: E402
from host_tools.frontends.torch_fx import quantize_input  # noqa: E402
from host_tools.model.layout import to_device  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
import frontend_models  # noqa: E402

FILES = {"export": "frontnet.pt2", "torchscript": "frontnet_ts.pt", "onnx": "frontnet.onnx",
         "tflite": "frontnet.tflite", "fx-fallback": f"{ROOT}/examples/frontend_models.py:CheckedFrontNet"}


def _needs(module, why):
    return pytest.importorskip(module, reason=f"{module} is not installed ({why}; make venv installs it)")


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "host_tools", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    _needs("onnx", "the ONNX example")
    _needs("tflite", "the TF-Lite example")
    out = tmp_path_factory.mktemp("frontends")
    model = frontend_models.write_all(str(out), n_train=600, epochs=2, n_val=200)
    return out, model


@pytest.fixture(scope="module")
def converted(models):
    out, _ = models
    done = {}
    for kind, src in FILES.items():
        path = src if kind == "fx-fallback" else out / src
        calib = [] if kind == "tflite" else ["--calib", out / "calib.npz"]
        weights = ["--weights", out / "frontnet.pt"] if kind == "fx-fallback" else []
        r = _cli("convert", path, *weights, *calib, "--val", out / "val.npz", "--n-bias-update", "2",
                 "-o", out / f"{kind}.mct")
        done[kind] = (r, out / f"{kind}.mct")
    return done


@pytest.mark.parametrize("kind", list(FILES))
def test_front_end_converts_through_the_cli_and_trains(converted, models, kind):
    r, mct = converted[kind]
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout and "Traceback" not in r.stderr
    if kind == "tflite":
        assert "int8 top-1 on" in r.stdout and "final SOFTMAX" in r.stdout
    else:
        assert "int8 vs float top-1 agreement" in r.stdout
    if kind == "onnx":
        assert "final Softmax" in r.stdout
    if kind == "fx-fallback":
        assert "torch.fx cannot trace CheckedFrontNet" in r.stderr and "torch.export" in r.stderr
    m = mct_format.read(mct)
    assert m.input_shape == (1, 28, 28) and m.n_classes == 10
    # training on the reference of the device: a few steps on four images lower their loss
    out, _ = models
    d = np.load(out / "train.npz")
    ref = reference.Reference(m)
    xs = to_device(quantize_input(m, d["x"][:4]))      # the .mct's own input quantization, device order
    losses = [[ref.train_step(x, int(y), 0.05) for x, y in zip(xs, d["y"][:4])] for _ in range(6)]
    assert np.mean(losses[-1]) < np.mean(losses[0]), losses


def test_rebuilt_torch_models_compute_what_the_source_computes(models):
    """torch.export and TorchScript rebuilds against the PyTorch model they came from."""
    from host_tools.frontends import torch_export as fe
    out, model = models
    x = torch.from_numpy(np.load(out / "val.npz")["x"][:64])
    with torch.no_grad():
        want = model(x)
        for gm in (fe.module_from_exported(fe.load_exported(str(out / "frontnet.pt2"))),
                   fe.module_from_exported(fe.torchscript_to_exported(fe.load_torchscript(str(out / "frontnet_ts.pt")),
                                                                      x[:2]))):
            assert float((gm(x) - want).abs().max()) < 1e-5


def test_onnx_rebuild_matches_the_onnx_reference_evaluator(models):
    from onnx.reference import ReferenceEvaluator
    from host_tools.frontends.onnx_model import load_onnx
    out, _ = models
    x = np.load(out / "val.npz")["x"][:64]
    probs = ReferenceEvaluator(str(out / "frontnet.onnx")).run(None, {"input_1": x.transpose(0, 2, 3, 1)})[0]
    with torch.no_grad():
        mine = torch.softmax(load_onnx(str(out / "frontnet.onnx"), (1, 28, 28))(torch.from_numpy(x)), 1).numpy()
    assert np.abs(mine - probs).max() < 1e-5


def test_tflite_model_reproduces_the_tflite_interpreter(models):
    """Run on TF-Lite's own inputs, every op reproduces TF-Lite's reference kernels bit for bit except
    two, which may differ by one step: MEAN (TF-Lite divides by H*W with a fixed-point multiplier,
    int(2^35 / 49) * 2^-35 here, the device exactly, rounding half to even) and FULLY_CONNECTED
    (TF-Lite's reference kernel rounds the 64-bit product once, its convs and the device round twice);
    end to end the logits then differ by up to two steps."""
    _needs("ai_edge_litert", "the TF-Lite interpreter")
    from host_tools.frontends.tflite_parity import tflite_parity
    out, _ = models
    r = tflite_parity(out / "frontnet.tflite", np.load(out / "val.npz")["x"][:200])
    assert all(v == 0 for k, v in r["per_op"].items() if k not in ("mean", "fc")), r
    assert r["per_op"]["mean"] <= 1 and r["per_op"]["fc"] <= 1 and r["logits_max"] <= 2, r
    assert r["top1"] >= 0.97, r


@pytest.mark.parametrize("kind,board", [("export", "unix"), ("torchscript", "unix"), ("onnx", "unix"),
                                        ("onnx", "qemu-m3"), ("tflite", "unix"), ("tflite", "qemu-m3")])
def test_front_end_model_checks_on_board(converted, models, kind, board):
    out, _ = models
    r = _cli("check", converted[kind][1], "--board", board, "--data", out / "train.npz", "--inputs", 4,
             "--steps", 4)
    assert r.returncode == 0 and "check passed" in r.stdout, r.stdout + r.stderr


def test_list_ops_table_is_the_one_in_the_docs():
    r = _cli("convert", "--list-ops")
    assert r.returncode == 0
    doc = (ROOT / "docs" / "host_tools.md").read_text()
    begin, end = "<!-- convert --list-ops: begin -->\n", "\n<!-- convert --list-ops: end -->"
    assert begin in doc and end in doc
    assert doc.split(begin)[1].split(end)[0] == r.stdout.strip(), \
        "docs/host_tools.md's operator table differs from `host_tools convert --list-ops`: paste it again"


# ----------------------------------------------------------------------------------------------
# bad input: one sentence naming the layer or node, no traceback, no output file

def _refused(tmp_path, model, *extra, calib=True, match=()):
    out = tmp_path / "bad.mct"
    args = ["convert", model, "-o", out, *extra]
    if calib:
        args += ["--calib", tmp_path / "calib.npz"]
    r = _cli(*args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "error:" in r.stderr
    for m in match:
        assert m in r.stderr, r.stderr
    assert not out.exists() and not list(tmp_path.glob(".mct-*"))
    return r.stderr


def _tiny_onnx(path, tail=None, opset=17, dims=("N", 1, 8, 8), conv_attrs=None, pool=True):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "c/w"),
             numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "fc/w")]
    nodes = [helper.make_node("Conv", ["x", "c/w"], ["c"], name="conv", **(conv_attrs or {"pads": [1] * 4}))]
    last = "c"
    if tail:
        nodes.append(helper.make_node(tail, [last], ["t"], name=f"my_{tail.lower()}"))
        last = "t"
    if pool:
        nodes += [helper.make_node("GlobalAveragePool", [last], ["g"], name="gap"),
                  helper.make_node("Flatten", ["g"], ["f"], name="flat"),
                  helper.make_node("MatMul", ["f", "fc/w"], ["y"], name="dense")]
        last = "y"
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))],
                          [helper.make_tensor_value_info(last, TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


@pytest.fixture
def bad(tmp_path):
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).random((8, 1, 8, 8), dtype=np.float32))
    return tmp_path


def test_onnx_bad_input_is_named(bad):
    _needs("onnx", "ONNX models")
    t = bad
    _refused(t, _tiny_onnx(t / "elu.onnx", tail="Elu"), match=("Elu", "my_elu", "ReLU"))
    _refused(t, _tiny_onnx(t / "dyn.onnx", dims=("N", 1, "H", 8)), match=("dynamic height", "'H'", "fixed input"))
    _refused(t, _tiny_onnx(t / "old.onnx", opset=7), match=("opset 7", "opset_version"))
    _refused(t, _tiny_onnx(t / "dil.onnx", conv_attrs={"pads": [2] * 4, "dilations": [2, 2]}),
             match=("conv", "dilations"))
    _refused(t, _tiny_onnx(t / "asym.onnx", conv_attrs={"pads": [0, 0, 1, 1]}), match=("conv", "asymmetrically"))
    _refused(t, _tiny_onnx(t / "map.onnx", pool=False), match=("output 'c'", "[N, K]"))


class _Branchy(torch.nn.Module):
    """A scripted forward() that branches on the data: no static graph for the device."""

    def __init__(self):
        super().__init__()
        self.c, self.fc = torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Linear(4, 3)

    def forward(self, x):
        y = self.c(x)
        if bool(y.mean() > 0):
            y = torch.relu(y)
        return self.fc(y.mean((2, 3)))


def test_torch_export_bad_input_is_named(bad):
    import torch.nn as nn
    t = bad
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.GELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 3)).eval()
    x = torch.rand(2, 1, 8, 8)
    torch.export.save(torch.export.export(net, (x,)), t / "gelu.pt2")
    _refused(t, t / "gelu.pt2", match=("aten.gelu", "'1'", "GELU", "ReLU6"))
    plain = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 3)).eval()
    h = torch.export.Dim("h", min=4, max=64)
    torch.export.save(torch.export.export(plain, (x,), dynamic_shapes=({2: h},)), t / "dyn.pt2")
    _refused(t, t / "dyn.pt2", match=("dynamic height", "dynamic_shapes"))
    torch.jit.script(_Branchy().eval()).save(str(t / "branchy_ts.pt"))
    _refused(t, t / "branchy_ts.pt", match=("TorchScript archive", "--weights", "state_dict()", "torch.export.save"))
    conv_only = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU()).eval()
    torch.jit.trace(conv_only, x).save(str(t / "map_ts.pt"))
    _refused(t, t / "map_ts.pt", "--no-train-classifier", match=("[N, K]",))


def _tiny_tflite(path, act_type="int8", extra_op=None, end_at_conv=False, pad=False, flat=False):
    """input 8x8x1 -> [PAD ->] CONV_2D (4, ReLU) -> MEAN -> RESHAPE -> FULLY_CONNECTED (3 logits);
    flat: RESHAPE of the whole 8x8x4 map instead of the MEAN (the dense layer reads H, W, C order)."""
    from tflite_writer import TFLiteWriter
    w = TFLiteWriter()
    rng = np.random.default_rng(0)
    q = (lambda s, z: dict(scale=s, zero=z)) if act_type != "float32" else (lambda s, z: {})
    wt = "float32" if act_type == "float32" else "int8"
    z = -128 if act_type == "int8" else 0
    x = w.tensor("input", [1, 8, 8, 1], act_type, **q(1 / 255, z))
    src = x
    if pad:
        src = w.tensor("padded", [1, 10, 10, 1], act_type, **q(1 / 255, z))
        w.op("PAD", [x, w.tensor("pads", [4, 2], "int32", data=np.array([[0, 0], [1, 1], [1, 1], [0, 0]]))],
             [src], "PadOptions")
    k = w.tensor("conv/w", [4, 3, 3, 1], wt, **q(rng.uniform(0.01, 0.03, 4), np.zeros(4)),
                 data=rng.integers(-127, 128, (4, 3, 3, 1)))
    b = w.tensor("conv/b", [4], "int32", **q(np.full(4, 1e-4), np.zeros(4)), data=rng.integers(-500, 500, 4))
    c = w.tensor("conv", [1, 8, 8, 4], act_type, **q(0.05, z))
    w.op("CONV_2D", [src, k, b], [c], "Conv2DOptions", padding="VALID" if pad else "SAME", act="RELU")
    last = c
    if extra_op:
        e = w.tensor("my_act", [1, 8, 8, 4], act_type, **q(0.05, z))
        w.op(extra_op, [last], [e])
        last = e
    if not end_at_conv:
        n = 256 if flat else 4
        if not flat:
            axes = w.tensor("axes", [2], "int32", data=np.array([1, 2]))
            m = w.tensor("mean", [1, 1, 1, 4], act_type, **q(0.05, z))
            w.op("MEAN", [last, axes], [m], "ReducerOptions", keep_dims=True)
            last = m
        shp = w.tensor("shape", [2], "int32", data=np.array([1, n]))
        f = w.tensor("flat", [1, n], act_type, **q(0.05, z))
        w.op("RESHAPE", [last, shp], [f], "ReshapeOptions", shape=[1, n])
        fw = w.tensor("fc/w", [3, n], wt, **q(0.01, 0), data=rng.integers(-127, 128, (3, n)))
        last = w.tensor("logits", [1, 3], act_type, **q(0.2, 0))
        w.op("FULLY_CONNECTED", [f, fw, -1], [last], "FullyConnectedOptions")
    w.save(str(path), inputs=[x], outputs=[last])
    return path


def test_tflite_pad_and_flattened_map_match_the_interpreter(tmp_path):
    """A PAD folded into the conv after it, and a dense layer reading a whole H x W x C map (its
    columns reordered to C x H x W): bit-exact with the TF-Lite interpreter except the dense layer's
    single rounding (one step at most)."""
    _needs("ai_edge_litert", "the TF-Lite interpreter")
    from host_tools.frontends.tflite_int8 import load_tflite
    from host_tools.frontends.tflite_parity import tflite_parity
    path = _tiny_tflite(tmp_path / "padflat.tflite", pad=True, flat=True)
    graph = load_tflite(str(path))
    assert [type(op).__name__ for op in graph.ops] == ["Conv2d", "FullyConnected"]
    assert graph.ops[0].padding == (1, 1)
    r = tflite_parity(path, np.random.default_rng(1).random((40, 1, 8, 8), dtype=np.float32))
    assert r["per_op"]["conv"] == 0 and r["per_op"]["logits"] <= 1 and r["top1"] >= 0.9, r


def test_tflite_bad_input_is_named(bad):
    _needs("tflite", "TF-Lite models")
    t = bad
    _refused(t, _tiny_tflite(t / "ok.tflite"), calib=True, match=("--calib does not apply",))
    assert _cli("convert", _tiny_tflite(t / "ok.tflite"), "-o", t / "ok.mct").returncode == 0
    (t / "ok.mct").unlink()
    _refused(t, _tiny_tflite(t / "f.tflite", act_type="float32"), calib=False,
             match=("float model", "CONV_2D", "full integer quantization"))
    _refused(t, _tiny_tflite(t / "i16.tflite", act_type="int16"), calib=False, match=("INT16", "16x8", "int8"))
    _refused(t, _tiny_tflite(t / "elu.tflite", extra_op="ELU"), calib=False,
             match=("ELU", "'my_act'", "ReLU"))
    _refused(t, _tiny_tflite(t / "map.tflite", end_at_conv=True), "--no-train-classifier", calib=False,
             match=("output", "[N, K]"))
