"""Channel concatenation (op type 8, torch.cat(dim=1)): the C core against the numpy reference bit
for bit (forward, float32 and integer backward, the patch-based stage), the gradients against
PyTorch autograd, the CLI with its report, a refused cat naming its node, and the family it opens
(SqueezeNet fire modules) converted, checked on the boards and trained."""
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from host_tools.ccore.core import CoreModel  # noqa: E402
from host_tools.frontends.torch_fx import quantize_input  # noqa: E402
from host_tools.memory import patch as patching  # noqa: E402
from host_tools.model import graph as g  # noqa: E402
from host_tools.model import mct_format  # noqa: E402
from host_tools.model.layout import to_device  # noqa: E402
from host_tools.reference import oracle as reference  # noqa: E402
from tests.support.graphgen import _conv, random_input  # noqa: E402
from tests.support.op_checks import (cli as _cli, core_trains_like_the_reference,  # noqa: E402
                                     gradients_are_autograds, save_onnx_classifier, patch_stage_is_whole, random_images)

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "support" / "concat_models.py"


def _graph(rng, backward="float", patch=None, same=False):
    """A fire module: squeeze conv -> (1x1 conv, 3x3 conv) -> cat -> global pool -> FC; the cat's
    inputs in their own scales (requantized), or with `same` in the output's (copied)."""
    shapes = {"x": (2, 8, 8)}
    sq, s0, _, yz = _conv(rng, "squeeze", "x", "s", 2, 8, 8, 4, 1, 1, 0, 1, 1 / 255, -128, False)
    sq.y_scale *= 8             # the outputs stay inside int8 (no clamp): the cat's split is what is tested
    e1, s1, _, _ = _conv(rng, "e1", "s", "a", 4, 8, 8, 3, 1, 1, 0, 1, sq.y_scale, yz, False)
    e3, s3, _, _ = _conv(rng, "e3", "s", "b", 4, 8, 8, 5, 3, 1, 1, 1, sq.y_scale, yz, False)
    for c in (e1, e3):
        c.y_scale *= 8
    y_scale, y_zero = (e1.y_scale, e1.y_zero) if same else (max(e1.y_scale, e3.y_scale) * 1.5, 4)
    if same:
        e3.y_scale, e3.y_zero, e3.act_min = e1.y_scale, e1.y_zero, e1.act_min
    cat = g.Concat("cat", "a", "b", "c", e1.y_scale, e1.y_zero, e3.y_scale, e3.y_zero, y_scale, y_zero)
    shapes.update(s=s0, a=s1, b=s3, c=(8, 8, 8), p=(8, 1, 1), logits=(5, 1, 1))
    fc = g.FullyConnected("fc", "p", "logits", rng.integers(-127, 128, (5, 8)).astype(np.int8),
                          rng.integers(-300, 300, 5).astype(np.int32), np.full(5, 0.01, np.float32),
                          y_scale, y_zero, 0.05, 0)
    graph = g.Graph("x", "logits", shapes, [sq, e1, e3, cat, g.GlobalAvgPool("gap", "c", "p", y_scale, y_zero), fc],
                    1 / 255, -128, n_bias_update=2 if patch else 3,
                    weight_update={} if patch else {0: 1.0, 1: 0.5, 2: 1.0})
    graph.backward, graph.update_rule, graph.patch = backward, "stochastic", patch
    return graph


@pytest.mark.parametrize("same", [False, True], ids=["requantized", "copied"])
@pytest.mark.parametrize("backward", ["float", "int"])
def test_core_trains_like_the_reference(backward, same):
    """Forward, loss and every trained tensor after four steps: C core == numpy reference."""
    rng = np.random.default_rng(1 + same)
    core_trains_like_the_reference(mct_format.to_bytes(_graph(rng, backward, same=same)), rng, 5)


def test_reference_concat_is_the_requantized_inputs():
    """The reference's cat output: each input's real values in the output's steps (TF-Lite's
    CONCATENATION), within the one rounding step."""
    rng = np.random.default_rng(3)
    m = mct_format.load(mct_format.to_bytes(_graph(rng)))
    ref = reference.Reference(m)
    ref.forward(random_input(rng, m))
    op = next(op for op in m.ops if op.type == g.CONCAT)
    real = np.concatenate([(ref.acts[a].astype(np.float64) - z) * s for a, s, z in
                           ((op.in0, op.in0_scale, op.in0_zero), (op.in1, op.in1_scale, op.in1_zero))])
    got = (ref.acts[op.out].astype(np.float64) - op.out_zero) * op.out_scale
    assert np.abs(got - real).max() <= 0.5 * op.out_scale * (1 + 1e-6)
    assert len(np.unique(ref.acts[op.out])) > 20          # not a constant


def test_patch_stage_runs_the_concat_on_windows():
    """A frozen fire module (squeeze, expands, cat) as a 2x2-patch first stage: the same logits."""
    rng = np.random.default_rng(5)
    whole = _graph(rng, patch=None)
    whole.weight_update, whole.n_bias_update = {}, 0          # the classifier only: the fire module frozen
    patch_stage_is_whole(whole, patching.Stage(4, 2, 2), rng, 5)          # squeeze, e1, e3, cat


def test_gradients_are_pytorch_autograds():
    """The reference's gradients of the trained tensors (through the cat's split) against autograd
    on the dequantized graph at the same int8 point."""
    rng = np.random.default_rng(10)
    gradients_are_autograds(mct_format.load(mct_format.to_bytes(_graph(rng))), rng, 5, min_tensors=4)


# ----------------------------------------------------------------------------------------------
# the CLI and the SqueezeNet family

@pytest.fixture(scope="module")
def squeezenet(tmp_path_factory):
    d = tmp_path_factory.mktemp("squeezenet")
    data = random_images(d)
    r = _cli("convert", f"{MODELS}:SqueezeNetTiny", "--calib", data, "--n-bias-update", "2", "-o", d / "sq.mct")
    return r, d / "sq.mct", data


def test_cli_converts_squeezenet_and_it_trains(squeezenet):
    """Fire modules through the CLI: three cats, said so by the report, the int8 graph agreeing with
    the float model, the C core's forward the reference's, and training lowering the loss."""
    r, mct, data = squeezenet
    assert r.returncode == 0, r.stderr
    assert "concatenations: 3, 0 in the patch stage, 3 on whole tensors" in r.stdout, r.stdout
    assert "int8 vs float top-1 agreement on the first 48 calibration images: 100.00%" in r.stdout, r.stdout
    m = mct_format.read(mct)
    assert sum(op.type == g.CONCAT for op in m.ops) == 3
    d = np.load(data)
    xs = to_device(quantize_input(m, d["x"][:4]))
    core, ref = CoreModel(mct.read_bytes()), reference.Reference(m)
    for x in xs:
        assert np.array_equal(core.forward(x, 5), ref.forward(x))
    losses = [[core.train_step(x, int(y), 0.05) for x, y in zip(xs, d["y"][:4])] for _ in range(8)]
    assert np.mean(losses[-1]) < np.mean(losses[0]), losses


@pytest.mark.parametrize("board", ["unix", "qemu-m3"])
def test_squeezenet_checks_on_board(squeezenet, board):
    """The int8 forward bit-exact with the reference, and training steps leaving identical tensors."""
    _, mct, data = squeezenet
    r = _cli("check", mct, "--board", board, "--data", data, "--inputs", 3, "--steps", 3)
    assert r.returncode == 0 and "check passed" in r.stdout, r.stdout + r.stderr


def test_cli_refuses_a_cat_along_the_width_naming_the_node(tmp_path):
    """torch.cat along dim 3: the error names the node and says what can be joined; no file."""
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).random((8, 1, 8, 8), dtype=np.float32))
    out = tmp_path / "bad.mct"
    r = _cli("convert", f"{MODELS}:CatAlongWidth", "--calib", tmp_path / "d.npz", "-o", out)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "cat 'cat'" in r.stderr and "dim 3" in r.stderr and "channels" in r.stderr, r.stderr
    assert not out.exists()


# ----------------------------------------------------------------------------------------------
# the other front ends: torch.export, ONNX, TF-Lite int8

def test_torch_export_converts_squeezenet(squeezenet, tmp_path):
    """The fire modules as an ExportedProgram (aten.cat): the rebuilt model computes the source's
    values and converts to the same int8 graph as the torch.fx route."""
    from tests.support.concat_models import SqueezeNetTiny
    from host_tools.frontends import torch_export as fe
    net = SqueezeNetTiny().eval()
    x = torch.from_numpy(np.load(squeezenet[2])["x"])
    ep = torch.export.export(net, (x[:2],))
    with torch.no_grad():
        assert float((fe.module_from_exported(ep)(x) - net(x)).abs().max()) < 1e-5
    torch.export.save(ep, tmp_path / "sq.pt2")
    r = _cli("convert", tmp_path / "sq.pt2", "--calib", squeezenet[2], "--n-bias-update", "2", "-o", tmp_path / "sq.mct")
    assert r.returncode == 0, r.stderr
    a, b = mct_format.read(tmp_path / "sq.mct"), mct_format.read(squeezenet[1])
    assert [op.type for op in a.ops] == [op.type for op in b.ops]
    assert all(np.array_equal(s, t) for s, t in zip(a.tensors, b.tensors))


def _onnx_fire(path, axis=1):
    from onnx import helper, numpy_helper
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n) for n, s in
             (("sq/w", (3, 1, 1, 1)), ("e1/w", (4, 3, 1, 1)), ("e3/w", (4, 3, 3, 3)), ("fc/w", (8, 3)))]
    nodes = [helper.make_node("Conv", ["x", "sq/w"], ["s0"], name="squeeze"),
             helper.make_node("Relu", ["s0"], ["s"], name="squeeze_relu"),
             helper.make_node("Conv", ["s", "e1/w"], ["a"], name="expand1x1"),
             helper.make_node("Conv", ["s", "e3/w"], ["b"], name="expand3x3", pads=[1] * 4),
             helper.make_node("Concat", ["a", "b"], ["c"], name="fire_cat", axis=axis)]
    return save_onnx_classifier(path, "fire", nodes, inits, (1, 12, 12), "c")


def test_onnx_maps_concat(tmp_path):
    """A fire module in ONNX: the rebuilt model against the onnx package's reference evaluator, then
    through the CLI with its report; a Concat along the height refused, naming the node."""
    pytest.importorskip("onnx", reason="onnx is not installed (make venv installs it)")
    from onnx.reference import ReferenceEvaluator
    from host_tools.frontends.onnx_model import load_onnx
    path = _onnx_fire(tmp_path / "fire.onnx")
    x = np.random.default_rng(1).random((16, 1, 12, 12), dtype=np.float32)
    np.savez(tmp_path / "d.npz", x=x)
    want = ReferenceEvaluator(str(path)).run(None, {"x": x})[0]
    with torch.no_grad():
        assert np.abs(load_onnx(str(path), (1, 12, 12))(torch.from_numpy(x)).numpy() - want).max() < 1e-4
    r = _cli("convert", path, "--calib", tmp_path / "d.npz", "-o", tmp_path / "fire.mct")
    assert r.returncode == 0, r.stderr
    # the plan tiles the whole fire module, cat included: the C core's tiled forward is the reference's
    assert "concatenations: 1, 1 in the patch stage, 0 on whole tensors" in r.stdout, r.stdout
    m = mct_format.read(tmp_path / "fire.mct")
    assert m.stage is not None and m.stage.ops == 4
    core, ref = CoreModel((tmp_path / "fire.mct").read_bytes()), reference.Reference(m)
    for xi in to_device(quantize_input(m, x[:4])):
        assert np.array_equal(core.forward(xi, 3), ref.forward(xi))
    bad = _onnx_fire(tmp_path / "bad.onnx", axis=2)
    r = _cli("convert", bad, "--calib", tmp_path / "d.npz", "-o", tmp_path / "bad.mct")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "Concat node 'fire_cat'" in r.stderr and "axis 2" in r.stderr and "channels" in r.stderr, r.stderr
    assert not (tmp_path / "bad.mct").exists()


def test_tflite_concatenation_matches_the_interpreter(tmp_path):
    """An int8 .tflite fire module (CONCATENATION on the channel axis, its inputs in the output's
    quantization as TF-Lite's converter writes them): every layer equal to the interpreter's."""
    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed (the TF-Lite interpreter)")
    sys.path.insert(0, str(ROOT / "examples"))
    from tflite_writer import TFLiteWriter
    from host_tools.frontends.tflite_parity import tflite_parity
    rng = np.random.default_rng(0)
    w = TFLiteWriter()
    x = w.tensor("input", [1, 8, 8, 1], "int8", scale=1 / 255, zero=-128)
    outs = []
    for name, k, c in (("e1", 1, 3), ("e3", 3, 4)):
        kt = w.tensor(f"{name}/w", [c, k, k, 1], "int8", scale=rng.uniform(0.01, 0.03, c), zero=np.zeros(c),
                      data=rng.integers(-127, 128, (c, k, k, 1)))
        bt = w.tensor(f"{name}/b", [c], "int32", scale=np.full(c, 1e-4), zero=np.zeros(c),
                      data=rng.integers(-900, 500, c))
        outs.append(w.tensor(name, [1, 8, 8, c], "int8", scale=0.03, zero=-128))
        w.op("CONV_2D", [x, kt, bt], [outs[-1]], "Conv2DOptions", padding="SAME", act="RELU")
    cat = w.tensor("cat", [1, 8, 8, 7], "int8", scale=0.03, zero=-128)
    w.op("CONCATENATION", outs, [cat], "ConcatenationOptions", axis=3)
    axes = w.tensor("axes", [2], "int32", data=np.array([1, 2]))
    m = w.tensor("mean", [1, 1, 1, 7], "int8", scale=0.03, zero=-128)
    w.op("MEAN", [cat, axes], [m], "ReducerOptions", keep_dims=True)
    f = w.tensor("flat", [1, 7], "int8", scale=0.03, zero=-128)
    w.op("RESHAPE", [m, w.tensor("shape", [2], "int32", data=np.array([1, 7]))], [f], "ReshapeOptions", shape=[1, 7])
    y = w.tensor("logits", [1, 3], "int8", scale=0.02, zero=0)
    w.op("FULLY_CONNECTED", [f, w.tensor("fc/w", [3, 7], "int8", scale=0.01, zero=0,
                                         data=rng.integers(-127, 128, (3, 7))), -1], [y], "FullyConnectedOptions")
    w.save(str(tmp_path / "fire.tflite"), inputs=[x], outputs=[y])
    r = tflite_parity(tmp_path / "fire.tflite", rng.random((20, 1, 8, 8), dtype=np.float32))
    assert max(r["per_op"].values()) == 0 and r["logits_max"] == 0, r
