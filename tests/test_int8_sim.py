"""The converter's fast int8 simulation (host_tools/frontends/int8_sim.py) against the numpy reference
of the device (host_tools/reference/), bit for bit: every activation and the unclamped logits, on
models not written for it (activation-table models, the CLI's torchvision-style models, test_convert's residual model, the demo, issue 14's ShiftNet, the MIT
int8 models), through the C core's requantization and through PyTorch's (the fallback without a C
compiler); and the requantization alone on ties and edge values of every shift."""
import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from host_tools.frontends import int8_sim  # noqa: E402
from host_tools.frontends.torch_fx import convert_torch, quantize_input  # noqa: E402
from host_tools.model import mct_format  # noqa: E402
from host_tools.model.graph import FullyConnected  # noqa: E402
from host_tools.model.layout import to_device  # noqa: E402
from host_tools.model.quant import multiply_by_quantized_multiplier  # noqa: E402
from host_tools.reference.oracle import Reference  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIT_DIR = os.path.join(ROOT, "..", "shared", "models", "mit")
needs_c = pytest.mark.skipif(int8_sim.c_requant() is None, reason="the C core cannot be built here (no cc)")
BACKENDS = [pytest.param(True, id="c", marks=needs_c), pytest.param(False, id="torch")]


def _fc(x_scale, w_scales, y_scale, y_zero=0, act_min=-128, act_max=127):
    """A FullyConnected op whose requantization is the one under test (weights do not matter)."""
    o = len(w_scales)
    return FullyConnected("fc", "x", "y", np.ones((o, 1), np.int8), np.zeros(o, np.int32),
                          np.asarray(w_scales, np.float32), x_scale=x_scale, y_scale=y_scale, y_zero=y_zero,
                          act_min=act_min, act_max=act_max)


def _requantized(op, acc, use_c):
    p = int8_sim._weighted(op)
    s = torch.from_numpy(acc.astype(np.float32))
    out = torch.empty_like(s)
    if use_c:
        int8_sim._c_requantize(int8_sim.c_requant(), s, p, out)
    else:
        int8_sim.requantize(s, p, out)
    return out.numpy().astype(np.int64)


@pytest.mark.parametrize("use_c", BACKENDS)
def test_requantization_equals_the_reference_on_ties_and_edges(use_c):
    """Multipliers from 2^-30 to 2^3 (right shifts 31..0, left shifts), accumulators on and next to every
    rounding tie of the outputs in range, both signs, up to float32's exact 2^24, zero points."""
    rng = np.random.default_rng(0)
    reals = np.concatenate([2.0 ** rng.uniform(-30, 3, 60), [0.5, 0.25, 1.0, 2.0 ** -20, 0.75]])
    for y_zero, lo, hi in ((0, -128, 127), (-5, -5, 127), (17, -128, 40)):
        op = _fc(1.0, reals, 1.0, y_zero=y_zero, act_min=lo, act_max=hi)
        p = int8_sim._weighted(op)
        m = p.mult.astype(np.float64) * np.exp2(p.shift - 31.0)
        k = np.arange(-300, 300)[:, None] + 0.5                     # every half step of the outputs in range
        ties = np.round(k / np.maximum(m, 1e-300)).clip(-(2 ** 24) + 2, 2 ** 24 - 2)
        acc = np.concatenate([ties - 1, ties, ties + 1, rng.integers(-(2 ** 24) + 1, 2 ** 24, (2000, len(m))),
                              np.full((1, len(m)), 2 ** 24 - 1), np.full((1, len(m)), -(2 ** 24) + 1),
                              np.zeros((1, len(m)))])
        expect = np.clip(multiply_by_quantized_multiplier(acc.astype(np.int64), p.mult, p.shift),
                         lo - y_zero, hi - y_zero)
        np.testing.assert_array_equal(_requantized(op, acc, use_c), expect)


def _reference_check(graph, x, n_ref, use_c):
    """Simulate x (int8 [N, C, H, W]); the reference on the first and last n_ref // 2 images. The logits
    alone (what convert's top-1 runs: shared buffers, other batches) equal those kept with every activation."""
    logits, acts = int8_sim.Int8Simulation(graph, use_c=use_c).run(x, keep_all=True)
    np.testing.assert_array_equal(int8_sim.Int8Simulation(graph, use_c=use_c).run(x), logits)
    ref = Reference(mct_format.load(mct_format.to_bytes(graph)))
    names = list(graph.shapes)
    for i in sorted(set(range(n_ref // 2)) | set(range(len(x) - n_ref // 2, len(x)))):
        ref.forward(to_device(x[i]))
        np.testing.assert_array_equal(to_device(logits[i].reshape(graph.shapes[graph.output])), ref.logits,
                                      err_msg=f"logits of image {i}")
        for k, name in enumerate(names):
            np.testing.assert_array_equal(acts[name][i], ref.acts[k], err_msg=f"{name} of image {i}")
    return logits, acts


def _images(graph, n, seed=0):
    """n float images in the model's input range: smooth random fields (natural-image statistics) and noise."""
    c, h, w = graph.shapes[graph.input] if hasattr(graph, "shapes") else graph     # a graph or (C, H, W)
    rng = np.random.default_rng(seed)
    low = torch.nn.functional.interpolate(torch.from_numpy(rng.random((n, c, 4, 4), np.float32)), size=(h, w),
                                          mode="bilinear", align_corners=False).numpy()
    return np.clip(low + rng.normal(0, 0.1, (n, c, h, w)), 0, 1).astype(np.float32)


def _torch_models():
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    from fashion_net import FashionNet
    from shift_net import ShiftNet
    from tests.support import activation_models, cli_models, concat_models, se_models
    from tests.test_convert import Residual
    return {"HardswishNet": (activation_models.HardswishNet, (1, 12, 12)),     # activation tables (Lut)
            "SigmoidNet": (activation_models.SigmoidNet, (1, 12, 12)),
            "Residual": (Residual, (3, 16, 16)),       # one conv module called twice: two ops of one name
            "ResNetTiny": (cli_models.ResNetTiny, (1, 16, 16)),
            "MobileNetV2Tiny": (cli_models.MobileNetV2Tiny, (3, 16, 16)),
            "MeanPoolNet": (cli_models.MeanPoolNet, (3, 8, 8)),
            "LeNet": (cli_models.LeNet, (1, 16, 16)),
            "FashionNet": (FashionNet, (1, 28, 28)),
            "ShiftNet": (ShiftNet, (1, 28, 28)),
            "SqueezeNetTiny": (concat_models.SqueezeNetTiny, (1, 16, 16)),       # concatenations
            "MobileNetV3Tiny": (se_models.MobileNetV3Tiny, (1, 16, 16))}         # gate multiplies


def _randomized(cls):
    """The model with random weights and batch-norm statistics (eval mode)."""
    from tests.test_convert import _randomize_bn
    torch.manual_seed(0)
    return _randomize_bn(cls(), seed=1).eval()


@pytest.mark.parametrize("use_c", BACKENDS)
@pytest.mark.parametrize("name", ["HardswishNet", "SigmoidNet", "Residual", "ResNetTiny", "MobileNetV2Tiny", "MeanPoolNet", "LeNet", "FashionNet", "ShiftNet",
                                  "SqueezeNetTiny", "MobileNetV3Tiny"])
def test_simulation_equals_the_reference_bit_for_bit(name, use_c, monkeypatch):
    """Every activation and logit of converted PyTorch models, over more images than one batch and
    one chunk (both made small here), against the reference image by image; the logits alone too."""
    cls, shape = _torch_models()[name]
    model = _randomized(cls)
    x = _images(shape, 80, seed=2)
    graph = convert_torch(model, x[:64])
    monkeypatch.setattr(int8_sim, "BATCH_ELEMENTS", 32 * int(np.prod(shape)))   # a few batches (the input is the largest or near)
    monkeypatch.setattr(int8_sim, "POOLED_BATCH_ELEMENTS", 24 * int(np.prod(shape)))
    monkeypatch.setattr(int8_sim, "CHUNK", 4096)
    _reference_check(graph, quantize_input(graph, x), 8, use_c)


@pytest.mark.parametrize("use_c", BACKENDS)
def test_simulation_sums_in_float64_where_float32_is_not_exact(use_c):
    """An FC whose sums may pass 2^24 (weights and biases made large) takes float64; a bias beyond 2^24
    with small sums is split (exact low part in the sum, the rest added once); both stay exact."""
    cls, shape = _torch_models()["ShiftNet"]
    x = _images(shape, 12, seed=3)
    graph = convert_torch(_randomized(cls), x)
    fc, classifier = [op for op in graph.ops if isinstance(op, FullyConnected)]
    fc.weight[:] = np.where(fc.weight >= 0, 127, -127)                # 3136 inputs x 127 x 255 > 2^24
    classifier.bias[:] = np.where(classifier.bias >= 0, 1, -1) * ((1 << 25) + 12345)
    sim = int8_sim.Int8Simulation(graph, use_c=use_c)
    assert sim.params[fc.output].weight.dtype == torch.float64
    assert sim.params[classifier.output].bias_high is not None
    _reference_check(graph, quantize_input(graph, x), 4, use_c)


@pytest.mark.skipif(not os.path.isdir(MIT_DIR), reason="the MIT int8 models are not there (../shared)")
@pytest.mark.parametrize("name", ["mbv2-w0.35", "mcunet-5fps", "proxyless-w0.3"])
def test_simulation_equals_the_reference_on_mit_models(name):
    """The MIT int8 models (biases beyond 2^24, residual adds, 128x128 and 160x160 inputs): the
    reference on two images (seconds each), the C and PyTorch requantizations on eight."""
    from host_tools.frontends.mit import load_mit
    graph = load_mit(os.path.join(MIT_DIR, name), num_classes=10)
    graph.ops[-1].weight[:] = np.random.default_rng(0).integers(-127, 128, graph.ops[-1].weight.shape)
    x = quantize_input(graph, _images(graph, 8, seed=4) * (255 / 127.5) - 128 / 127.5)
    ours, acts = _reference_check(graph, x, 2, False)
    if int8_sim.c_requant() is not None:
        theirs, acts_c = int8_sim.Int8Simulation(graph).run(x, keep_all=True)
        np.testing.assert_array_equal(theirs, ours)
        for k in acts:
            np.testing.assert_array_equal(acts_c[k], acts[k], err_msg=k)


def test_progress_bar_is_quiet_without_a_terminal(capsys):
    """Not a tty (pytest captures): the bar writes nothing."""
    cls, shape = _torch_models()["LeNet"]
    x = _images(shape, 4)
    graph = convert_torch(_randomized(cls), x)
    int8_sim.Int8Simulation(graph).run(quantize_input(graph, x), desc="int8 simulation")
    assert capsys.readouterr().err == ""



def test_progress_bars_show_on_a_terminal(monkeypatch):
    """On a terminal (stderr a tty), the calibration and the simulation show their tqdm bars."""
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    cls, shape = _torch_models()["LeNet"]
    x = _images(shape, 4)
    graph = convert_torch(_randomized(cls), x)
    int8_sim.Int8Simulation(graph).run(quantize_input(graph, x), desc="int8 simulation")
    text = err.getvalue()
    assert "calibration" in text and "int8 simulation" in text and "0/4" in text, text
