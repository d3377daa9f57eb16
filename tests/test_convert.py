"""Converters: PyTorch -> Graph (PTQ, BN folding, fusion, errors), MIT int8 models -> Graph, data
readers, and the `convert` command."""
import argparse
import gzip
import math
import os
import struct
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from host_tools.errors import UserError  # noqa: E402
from host_tools.model.graph import Add, Conv2d, FullyConnected, GlobalAvgPool  # noqa: E402
from host_tools.model.layout import to_device  # noqa: E402
from host_tools.frontends.torch_fx import (convert_torch, fold_batchnorm, quantization_report,  # noqa: E402
                                      quantize_input, dequantize, run_graph, top1_agreement)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIT_DIR = os.path.join(ROOT, "..", "shared", "models", "mit")
MIT_MODELS = ("mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3")
needs_mit = pytest.mark.skipif(not os.path.isdir(MIT_DIR),
                               reason=f"the MIT int8 models are not there ({os.path.normpath(MIT_DIR)}; "
                                      f"a fresh clone has no ../shared)")

torch.set_num_threads(2)


def _randomize_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)
    return model.eval()


def _data(n=64, shape=(3, 16, 16), seed=0):
    return np.random.default_rng(seed).random((n,) + shape, dtype=np.float32)


def _output_sqnr(model, graph, x):
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy().reshape(len(x), -1).astype(np.float64)
    q = run_graph(graph, quantize_input(graph, x)).reshape(len(x), -1)
    s, z = graph.op_output_scale(graph.ops[-1])
    out = dequantize(q, s, z)
    return 10 * math.log10(np.sum(ref ** 2) / max(np.sum((ref - out) ** 2), 1e-30))


# ----------------------------------------------------------------------------------------------
# small models, one per supported construct

class ConvBnRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(self.flat(self.pool(self.act(self.bn(self.conv(x))))))


class StridedKernels(nn.Module):
    """5x5 stride 2, 1x1, grouped conv, depthwise + ReLU6, Hardtanh, mean((2,3)) pooling."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 5, 2, 2)
        self.c2 = nn.Conv2d(8, 8, 3, 1, 1, groups=2)
        self.dw = nn.Conv2d(8, 8, 3, 2, 1, groups=8)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU6()
        self.ht = nn.Hardtanh(0.0, 6.0)
        self.pw = nn.Conv2d(8, 12, 1)
        self.fc = nn.Linear(12, 4)

    def forward(self, x):
        x = self.ht(self.c1(x))
        x = F.relu(self.c2(x))
        x = self.act(self.bn(self.dw(x)))
        x = torch.relu(self.pw(x))
        return self.fc(x.mean((2, 3)))


class Residual(nn.Module):
    """Residual adds (+, torch.add, ReLU after the add), Identity, Dropout, F.relu6."""
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.BatchNorm2d(8), nn.ReLU6(inplace=True))
        self.a = nn.Sequential(nn.Conv2d(8, 16, 1), nn.BatchNorm2d(16), nn.ReLU6(),
                               nn.Conv2d(16, 16, 3, 1, 1, groups=16), nn.BatchNorm2d(16), nn.ReLU6(),
                               nn.Conv2d(16, 8, 1), nn.BatchNorm2d(8))
        self.b = nn.Conv2d(8, 8, 3, 1, 1)
        self.idn = nn.Identity()
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.a(x)
        x = F.relu(torch.add(self.idn(x), self.b(x)))
        x = F.relu6(self.b(x))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(self.drop(torch.flatten(x, 1)))


class FlattenMap(nn.Module):
    """Linear on a flattened (C, H, W) map (view(n, -1)), a lone BatchNorm2d, two Linears."""
    def __init__(self):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(3)
        self.c = nn.Conv2d(3, 4, 3, 2, 1)
        self.fc1 = nn.Linear(4 * 8 * 8, 16)
        self.fc2 = nn.Linear(16, 6)

    def forward(self, x):
        x = F.relu(self.c(self.bn0(x)))
        x = x.view(x.size(0), -1)
        return self.fc2(F.relu(self.fc1(x)))


class PlainPools(nn.Module):
    """A plain CNN: conv, max pool (padded, overlapping), conv, average pool, flatten, Linear."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.BatchNorm2d(8), nn.ReLU())
        self.mp = nn.MaxPool2d(3, 2, 1)
        self.c2 = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1), nn.ReLU())
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        x = self.mp(self.c1(x))
        x = F.avg_pool2d(self.c2(x), 2)
        return self.fc(torch.flatten(x, 1))


@pytest.mark.parametrize("cls,min_db", [(ConvBnRelu, 28), (StridedKernels, 25), (Residual, 25),
                                        (FlattenMap, 25), (PlainPools, 25)])
def test_small_models_agree_with_float(cls, min_db):
    torch.manual_seed(0)
    model = _randomize_bn(cls())
    x = _data()
    graph = convert_torch(model, x)
    db = _output_sqnr(model, graph, x)
    assert db > min_db, f"{cls.__name__}: logits SQNR {db:.1f} dB"
    rows = quantization_report(model, graph, x)
    assert [r[0] for r in rows] == [op.name for op in graph.ops]
    assert all(r[1] > 20 for r in rows), rows
    assert top1_agreement(model, graph, x)["agreement"] >= 0.9
    # structure: BN folded, activations fused, the classifier last
    assert not any("bn" in op.name for op in graph.ops if cls is not FlattenMap)
    assert isinstance(graph.ops[-1], FullyConnected) and graph.output == graph.ops[-1].output
    for op in graph.ops:
        assert op.input in graph.shapes and op.output in graph.shapes
        if isinstance(op, (Conv2d, FullyConnected)):
            assert op.weight.dtype == np.int8 and op.weight.min() >= -127
            assert op.bias.dtype == np.int32 and op.w_scales.dtype == np.float32
            assert -128 <= op.act_min <= op.act_max <= 127


def test_structure_of_residual_model():
    model = _randomize_bn(Residual())
    graph = convert_torch(model, _data())
    kinds = [type(op).__name__ for op in graph.ops]
    assert kinds == ["Conv2d"] * 4 + ["Add", "Conv2d", "Add", "Conv2d", "GlobalAvgPool", "FullyConnected"]
    stem, add1, add2 = graph.ops[0], graph.ops[4], graph.ops[6]
    # ReLU6 fused: clamp from the zero point, output range 0..6 at most
    assert stem.act_min == stem.y_zero and stem.y_zero == -128 and stem.y_scale <= 6 / 255 + 1e-9
    # an Add's inputs keep their own quantization
    assert (add1.a_scale, add1.a_zero) == (stem.y_scale, stem.y_zero)
    pw = graph.ops[3]
    assert (add1.b_scale, add1.b_zero) == (pw.y_scale, pw.y_zero)
    assert add1.act_min == -128 and add2.act_min == add2.y_zero  # ReLU fused into the second add
    pool = graph.ops[-2]
    assert (pool.scale, pool.zero) == (graph.ops[-3].y_scale, graph.ops[-3].y_zero)
    assert graph.shapes[pool.output] == (8, 1, 1)


def test_flattened_map_feeds_fc():
    model = _randomize_bn(FlattenMap())
    graph = convert_torch(model, _data())
    fc1 = graph.ops[2]
    assert isinstance(fc1, FullyConnected) and fc1.weight.shape == (16, 256)
    assert graph.shapes[fc1.input] == (4, 8, 8)
    assert isinstance(graph.ops[0], Conv2d) and graph.ops[0].groups == 3  # lone BN -> depthwise 1x1


def test_input_quantization_and_bias_units():
    model = _randomize_bn(ConvBnRelu())
    x = _data()
    graph = convert_torch(model, x)
    assert graph.input_scale == pytest.approx(1 / 255) and graph.input_zero == -128
    q = quantize_input(graph, np.array([[[[0.0, 1.0, 0.5]]]], np.float32))
    assert q.ravel().tolist() == [-128, 127, 0]   # round half to even: 127.5 -> 128 -> 0
    folded = fold_batchnorm(model)
    conv = graph.ops[0]
    w = folded.conv.weight.detach().double().numpy()
    b = folded.conv.bias.detach().double().numpy()
    np.testing.assert_allclose(conv.w_scales, np.abs(w).reshape(8, -1).max(1) / 127, rtol=1e-6)
    np.testing.assert_array_equal(conv.bias, np.round(b / (conv.w_scales.astype(np.float64) / 255)))


def test_percentile_method_and_training_options():
    model = _randomize_bn(Residual())
    g = convert_torch(model, _data(), method="percentile", percentile=99.9, n_bias_update=3,
                      train_classifier=True)
    assert g.n_bias_update == 3 and g.train_classifier and g.classifier() is g.ops[-1]
    assert _output_sqnr(model, g, _data(seed=1)) > 20
    with pytest.raises(UserError, match="n_bias_update"):
        convert_torch(model, _data(), n_bias_update=99)
    with pytest.raises(UserError, match="method"):
        convert_torch(model, _data(), method="kl")


def test_bn_folding_is_exact_in_float():
    torch.manual_seed(1)
    model = _randomize_bn(Residual())
    x = torch.from_numpy(_data(16))
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        np.testing.assert_allclose(folded(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layer,name", [(nn.GELU(), "GELU"), (nn.AdaptiveMaxPool2d(4), "AdaptiveMaxPool2d"),
                                        (nn.ELU(), "ELU"), (nn.LayerNorm([8, 16, 16]), "LayerNorm")])
def test_unsupported_module_is_named(layer, name):
    model = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), layer, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 2))
    with pytest.raises(UserError) as e:
        convert_torch(model, _data(8))
    msg = str(e.value)
    assert name in msg and "'1'" in msg   # the type and the qualified name in the model
    assert "replace" in msg or "use" in msg or "remove" in msg


def test_lstm_is_named():
    class WithLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.rnn = nn.LSTM(4, 4)

        def forward(self, x):
            x = self.conv(x).mean((2, 3))
            return self.rnn(x)[0]

    with pytest.raises(UserError, match="LSTM.*'rnn'"):
        convert_torch(WithLSTM(), _data(4))


def test_unsupported_functions_and_shapes():
    class Mul(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return torch.nn.functional.gelu(self.c(x)).mean((2, 3))

    with pytest.raises(UserError, match="gelu"):
        convert_torch(Mul(), _data(4))

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            if x.sum() > 0:
                return self.c(x)
            return x

    with pytest.raises(UserError, match="trace"):
        convert_torch(Branchy(), _data(4))
    with pytest.raises(UserError, match=r"\[N, C, H, W\]"):
        convert_torch(ConvBnRelu(), np.zeros((4, 48), np.float32))
    # [N, C, W] is a 1-D model's input: a 2-D model says it does not run on it
    with pytest.raises(UserError, match=r"does not run on the calibration data of shape \(1, 3, 16\)"):
        convert_torch(ConvBnRelu(), np.zeros((4, 3, 16), np.float32))


def test_fashion_net_converts_small():
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        from fashion_net import FashionNet
    finally:
        sys.path.pop(0)
    torch.manual_seed(0)
    model = _randomize_bn(FashionNet())
    x = _data(32, (1, 28, 28))
    graph = convert_torch(model, x, n_bias_update=2)
    assert len(graph.conv_layers()) == 11 and sum(isinstance(o, Add) for o in graph.ops) == 2
    assert isinstance(graph.ops[-2], GlobalAvgPool)
    worst = max(sum(int(np.prod(graph.shapes[n])) for n in {op.input, op.output}) for op in graph.ops)
    assert worst < 40_000
    assert _output_sqnr(model, graph, x) > 20


# ----------------------------------------------------------------------------------------------
# the engine's integer reference (host_tools/reference/oracle.py) against the float64 rule

def _reference_module():
    try:
        from host_tools.model import mct_format
        from host_tools.reference import oracle as reference
    except ImportError as e:
        pytest.skip(f"host_tools.reference.oracle / mct_format not available yet ({e})")
    return mct_format, reference


def _truncate(graph, n_ops):
    import copy
    g = copy.copy(graph)
    g.ops = graph.ops[:n_ops]
    g.output = g.ops[-1].output
    g.shapes = {k: v for k, v in graph.shapes.items()
                if k == graph.input or any(k == op.output for op in g.ops)}
    g.train_classifier = isinstance(g.ops[-1], FullyConnected)
    g.n_bias_update = 0
    return g


def _one_step_report(graph, x, n_ops=None):
    """Fixed-point reference (host_tools/reference/oracle.py) against the float64 rule, layer by layer:
    each op of the reference is fed the float64 rule's input activations, so that differences do
    not propagate. Returns [(layer, outputs that differ, max difference, outputs)] and the
    end-to-end max difference of the last output."""
    mct_format, reference = _reference_module()
    g = _truncate(graph, n_ops) if n_ops else graph
    ref = reference.Reference(mct_format.load(mct_format.to_bytes(g)))
    end = ref.forward(to_device(x)).astype(np.int64)       # x: (C, H, W), the device takes it channels last
    f64 = run_graph(g, x, keep_all=True)
    assert len(ref.m.ops) == len(g.ops)
    rows = []
    for op, mop in zip(g.ops, ref.m.ops):
        ref.acts[mop.in0] = f64[op.input].reshape(ref._shape(mop.in0))
        if isinstance(op, Add):
            ref.acts[mop.in1] = f64[op.input2].reshape(ref._shape(mop.in1))
        a = ref.forward_op(mop).astype(np.int64).reshape(-1)
        d = np.abs(a - f64[op.output].astype(np.int64).reshape(-1))
        rows.append((op.name, int((d > 0).sum()), int(d.max()), d.size))
    end_diff = int(np.abs(end - f64[g.output].astype(np.int64).reshape(-1)).max())
    return rows, end_diff


@pytest.mark.parametrize("cls", [lambda: Residual(), lambda: PlainPools()])
def test_reference_matches_float64_rule_on_small_model(cls):
    model = _randomize_bn(cls())
    x = _data()
    graph = convert_torch(model, x)
    rows, end_diff = _one_step_report(graph, quantize_input(graph, x[:1])[0])
    assert all(r[2] <= 1 for r in rows), rows
    assert sum(r[1] for r in rows) <= 0.01 * sum(r[3] for r in rows), rows


# ----------------------------------------------------------------------------------------------
# MIT int8 models

def _test_image(size=128):
    """A real photograph when scikit-learn is there, else a smooth synthetic image."""
    try:
        from sklearn.datasets import load_sample_image
        img = load_sample_image("china.jpg")
    except Exception:
        yy, xx = np.mgrid[0:427, 0:640]
        img = np.stack([(xx * 255 // 640), (yy * 255 // 427), ((xx + yy) % 256)], -1).astype(np.uint8)
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
    r = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (r.round().clamp(0, 255) - 128).to(torch.int8).numpy()


@needs_mit
@pytest.mark.parametrize("name", MIT_MODELS)
def test_mit_models_load_and_match_the_readme_rule(name):
    from host_tools.frontends.mit import load_mit, mit_reference_forward
    d = os.path.join(MIT_DIR, name)
    g = load_mit(d, n_bias_update=4)
    assert g.input_scale == pytest.approx(1 / 127.5) and g.input_zero == 0
    assert g.shapes[g.input] == (3, 128, 128)
    assert isinstance(g.ops[-1], FullyConnected) and g.ops[-1].weight.shape[0] == 1000
    assert isinstance(g.ops[-2], GlobalAvgPool)
    assert all(op.act_min == -128 and op.act_max == 127 for op in g.ops if not isinstance(op, GlobalAvgPool))
    for op in g.conv_layers():
        kh = op.weight.shape[2]
        assert op.padding == ((kh - 1) // 2,) * 2
    x = _test_image()
    ours = run_graph(g, x, keep_all=True)
    rule = mit_reference_forward(d, x, keep_all=True)
    for k, v in rule.items():
        np.testing.assert_array_equal(ours[k].reshape(v.shape), v, err_msg=k)


@needs_mit
@pytest.mark.parametrize("name", MIT_MODELS)
def test_mit_sanity_check_china(name):
    pytest.importorskip("sklearn", reason="scikit-learn (china.jpg) is optional")
    pytest.importorskip("PIL", reason="scikit-learn needs Pillow to read its sample images")
    from host_tools.frontends.mit import mit_reference_forward
    logits = mit_reference_forward(os.path.join(MIT_DIR, name), _test_image())[0].astype(int)
    top5 = set(np.argsort(-logits, kind="stable")[:5].tolist())
    assert {442, 497, 832} <= top5, top5


@needs_mit
def test_mit_new_classifier():
    from host_tools.frontends.mit import load_mit, load_mit_json
    d = os.path.join(MIT_DIR, "mbv2-w0.35")
    g = load_mit(d, num_classes=10)
    fc = g.ops[-1]
    old = load_mit_json(d)["classifier"]["params"]
    assert fc.weight.shape == (10, 112) and not fc.weight.any() and not fc.bias.any()
    assert np.all(fc.w_scales == np.float32(np.median(old["w_scales"].astype(np.float64))))
    assert fc.y_zero == 0 and fc.y_scale == pytest.approx(1 / 16)
    assert g.shapes["classifier"] == (10, 1, 1)
    with pytest.raises(UserError):
        load_mit(d, n_bias_update=1000)


@needs_mit
@pytest.mark.parametrize("name", MIT_MODELS)
def test_mit_fixed_point_reference_one_step(name):
    """The engine's fixed-point multipliers against the README's float64 rounding: at most one step
    on the first layers (errors then propagate); the counts are printed (pytest -s)."""
    from host_tools.frontends.mit import load_mit
    g = load_mit(os.path.join(MIT_DIR, name))
    rows, end_diff = _one_step_report(g, _test_image()[0])
    for layer, n_diff, max_diff, size in rows:
        print(f"{name} {layer}: {n_diff}/{size} outputs differ, max {max_diff} step")
    total, n = sum(r[1] for r in rows), sum(r[3] for r in rows)
    print(f"{name}: {total}/{n} outputs ({100 * total / n:.3f}%) differ by one step layer by layer; "
          f"end to end the logits differ by at most {end_diff}")
    assert all(r[2] <= 1 for r in rows), rows
    assert total <= 0.01 * n


# ----------------------------------------------------------------------------------------------
# data readers and the command

def test_idx_reader_and_missing_dataset(tmp_path):
    from host_tools.datasets import load_fashion_mnist, read_idx
    imgs = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">BBBBIII", 0, 0, 8, 3, 2, 28, 28) + imgs.tobytes())
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">BBBBI", 0, 0, 8, 1, 2) + bytes([3, 7]))
    x, y = load_fashion_mnist("test", root=str(tmp_path))
    np.testing.assert_array_equal(x, imgs)
    assert y.tolist() == [3, 7]
    assert read_idx(str(tmp_path / "t10k-labels-idx1-ubyte.gz")).dtype == np.uint8
    with pytest.raises(UserError, match="dataset-fashion-mnist"):
        load_fashion_mnist("train", root=str(tmp_path))


def test_load_npz(tmp_path):
    from host_tools.frontends.calibrate import load_data
    p = tmp_path / "c.npz"
    np.savez(p, x=np.zeros((5, 1, 4, 4), np.float32), y=np.arange(5))
    x, y = load_data(str(p), (1, 4, 4))
    assert x.shape == (5, 1, 4, 4) and y.tolist() == list(range(5))
    with pytest.raises(UserError, match="shape"):
        load_data(str(p), (3, 4, 4))
    np.savez(tmp_path / "bad.npz", images=np.zeros(3))
    with pytest.raises(UserError, match="'x'"):
        load_data(str(tmp_path / "bad.npz"))


def _run_convert(argv):
    from host_tools.cli.main import add_command
    p = argparse.ArgumentParser(prog="host_tools")
    sub = p.add_subparsers(dest="command")
    add_command(sub, "convert")
    args = p.parse_args(["convert"] + argv)
    return args.func(args)


def test_convert_command(tmp_path, capsys):
    pytest.importorskip("host_tools.model.mct_format")
    model_py = tmp_path / "net.py"
    model_py.write_text(
        "import torch.nn as nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.f = nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.BatchNorm2d(4), nn.ReLU6(),\n"
        "                               nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))\n"
        "    def forward(self, x):\n"
        "        return self.f(x)\n")
    torch.manual_seed(0)
    ns = {}
    exec(model_py.read_text(), ns)
    torch.save(ns["Net"]().state_dict(), tmp_path / "w.pt")
    np.savez(tmp_path / "calib.npz", x=_data(16, (1, 8, 8)), y=np.arange(16) % 3)
    out = tmp_path / "m.mct"
    rc = _run_convert([f"{model_py}:Net", "--weights", str(tmp_path / "w.pt"), "--calib",
                       str(tmp_path / "calib.npz"), "--val", str(tmp_path / "calib.npz"),
                       "--n-bias-update", "1", "-o", str(out)])
    assert rc == 0 and out.stat().st_size > 0
    text = capsys.readouterr().out
    assert "SQNR" in text and "agreement" in text and "f.0" in text
    # a folder of images as the calibration data: the input shape comes from the model and the images
    from PIL import Image
    (tmp_path / "imgs").mkdir()
    for i, im in enumerate(_data(6, (1, 8, 8))):
        Image.fromarray((im[0] * 255).round().astype(np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
    folder_out = tmp_path / "f.mct"
    assert _run_convert([f"{model_py}:Net", "--weights", str(tmp_path / "w.pt"), "--calib", str(tmp_path / "imgs"),
                         "-o", str(folder_out)]) == 0
    from host_tools.model import mct_format
    assert mct_format.read(folder_out).input_shape == (1, 8, 8)
    with pytest.raises(UserError, match="--calib"):
        _run_convert([f"{model_py}:Net", "-o", str(out)])
    with pytest.raises(UserError, match="state_dict|pickled"):
        _run_convert([str(tmp_path / "w.pt"), "--calib", str(tmp_path / "calib.npz"), "-o", str(out)])
    with pytest.raises(UserError, match="no Nope"):
        _run_convert([f"{model_py}:Nope", "--calib", str(tmp_path / "calib.npz"), "-o", str(out)])


@pytest.mark.parametrize("cls", [Residual, FlattenMap, PlainPools, StridedKernels])
def test_fast_simulation_is_bit_identical_to_float64(cls):
    """run_graph's exact float32 sums (where they stay below 2^24) and batches give every activation
    of the float64 original (f64=True), on more images than one batch; a layer whose sums may pass
    2^24 takes float64 (FlattenMap's fc1 with its weights and biases made large enough)."""
    from host_tools.frontends.torch_fx import BATCH, _exact_dtype
    model = _randomize_bn(cls())
    x = _data(BATCH + 37, seed=1)
    graph = convert_torch(model, x[:64])
    if cls is FlattenMap:
        fc1 = next(op for op in graph.ops if isinstance(op, FullyConnected))
        assert _exact_dtype(fc1, False) == torch.float32
        fc1.weight[:] = np.where(fc1.weight >= 0, 127, -127)       # 256 inputs x 127 x 255 ~ 2^23
        fc1.bias[:] = np.where(fc1.bias >= 0, 1, -1) * (1 << 24)   # + 2^24
        assert _exact_dtype(fc1, False) == torch.float64
    q = quantize_input(graph, x)
    fast, slow = run_graph(graph, q, keep_all=True), run_graph(graph, q, keep_all=True, f64=True)
    assert fast.keys() == slow.keys()
    for k in slow:
        np.testing.assert_array_equal(fast[k], slow[k], err_msg=k)
    assert any(_exact_dtype(op, False) == torch.float32 for op in graph.ops if hasattr(op, "weight"))
