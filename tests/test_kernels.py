"""The engine's conv kernels (c_src/mct_conv2d.c picks them), one conv op at a time, against the numpy
reference, bit for bit: the depthwise kernel (c_src/mct_depthwise_s8_hwc.c: interior runs unrolled for
3x3, zero point folded; past 7x7 the generic kernel) over many kernels (square or not), strides, paddings, sizes, zero points,
clamps, and requantization scales (right shifts of 0..31, left shifts, multipliers of any size)
and biases at the int32 limits, which take the reference requantization; the pointwise and
general kernels with the same extremes. Built for the host (the portable paths); the SIMD paths
run the same graphs on qemu-m7 in tests/test_boards_kernels.py."""
import numpy as np
import pytest

from host_tools.model import graph as g
from host_tools.model import mct_format
from host_tools.reference import oracle as reference
from host_tools.ccore.core import CoreModel


def conv_graph(rng, kind, size=None, k=None, stride=None, log2_scale=(-6, 40)):
    """One conv: kind 'depthwise' (groups == C_in == C_out), 'pointwise' (1x1, stride 1, no
    padding) or 'general' (any kernel, groups 1 or 2); k, stride: square ones instead of random;
    the requantization multiplier is 2^-u for u uniform in log2_scale (below 8 or so, an
    accumulator off by one changes outputs)."""
    c = int(rng.integers(1, 7))
    h = int(size or rng.integers(1, 21))
    w = int(size or rng.integers(1, 21))
    if kind == "pointwise":
        kh = kw = sh = sw = 1
        ph = pw = 0
    else:
        kh = int(k or rng.choice([1, 2, 3, 3, 3, 5, 7]))
        kw = kh if k or rng.random() < 0.7 else int(rng.choice([1, 2, 3, 5]))
        sh = int(stride or rng.choice([1, 1, 2, 3]))
        sw = sh if stride or rng.random() < 0.8 else int(rng.choice([1, 2]))
        ph, pw = int(rng.integers(0, kh // 2 + 2)), int(rng.integers(0, kw // 2 + 2))
        h, w = max(h, kh - 2 * ph), max(w, kw - 2 * pw)
    groups = c if kind == "depthwise" else (2 if kind == "general" and c % 2 == 0 and rng.random() < 0.5 else 1)
    c_out = c if kind == "depthwise" else int(rng.integers(1, 5)) * groups
    weight = rng.integers(-128, 128, size=(c_out, c // groups, kh, kw), dtype=np.int64).astype(np.int8)
    if rng.random() < 0.2:
        weight[:] = rng.choice([-128, 127])             # the largest accumulators
    bias = rng.integers(-3000, 3000, size=c_out).astype(np.int64)
    if rng.random() < 0.3:                              # biases at the int32 limits (a trained one at its clamp)
        bias[rng.random(c_out) < 0.5] = rng.choice([2**31 - 1, -2**31, 2**31 - 5000, -2**31 + 5000])
    w_scales = rng.uniform(0.002, 0.02, size=c_out).astype(np.float32)
    x_scale = 1 / 255
    x_zero = int(rng.choice([-128, 127, 0, int(rng.integers(-128, 128))]))
    # the real multiplier x_scale * w_scale / y_scale from 2^-40 (every right shift) to 2^6 (left shifts)
    y_scale = float(x_scale * np.median(w_scales) * 2.0 ** rng.uniform(*log2_scale))
    y_zero = int(rng.integers(-128, 128))
    lo = int(rng.choice([-128, y_zero, int(rng.integers(-128, 128))]))
    hi = int(rng.choice([127, int(rng.integers(lo, 128))]))
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    op = g.Conv2d("conv", "x", "y", weight, bias.astype(np.int32), w_scales, (sh, sw), (ph, pw), groups,
                  x_scale, x_zero, y_scale, y_zero, act_min=lo, act_max=hi)
    return g.Graph("x", "y", {"x": (c, h, w), "y": (c_out, oh, ow)}, [op], x_scale, x_zero, 0, False), op


def check(rng, gr, n_inputs=2):
    data = mct_format.to_bytes(gr)
    m = mct_format.load(data)
    core, ref = CoreModel(data), reference.Reference(m)
    c, h, w = m.input_shape
    n_out = int(np.prod(gr.shapes["y"]))
    for _ in range(n_inputs):
        x = rng.integers(-128, 128, size=c * h * w).astype(np.int8)
        if rng.random() < 0.3:
            x[:] = rng.choice([-128, 127])
        np.testing.assert_array_equal(core.forward(x, n_out), ref.forward(x))


@pytest.mark.parametrize("kind", ["depthwise", "pointwise", "general"])
def test_conv_kernel_bit_exact(kind):
    rng = np.random.default_rng({"depthwise": 1, "pointwise": 2, "general": 3}[kind])
    shifts = set()
    for _ in range(300 if kind == "depthwise" else 100):
        gr, op = conv_graph(rng, kind)
        check(rng, gr)
        shifts.update(mct_format.load(mct_format.to_bytes(gr)).tensors[3].tolist())
    assert min(shifts) <= -25 and max(shifts) >= 1     # right and left shifts both exercised


def test_depthwise_3x3_interior_sizes():
    """3x3 at stride 1 and 2 with padding 0 and 1 over every width from 1 to 17: interiors of odd and
    even length (the two-output loop and its tail), none at all, and borders on both sides."""
    rng = np.random.default_rng(4)
    for width in range(1, 18):
        for stride in (1, 2):
            for pad in (0, 1):
                if width + 2 * pad < 3:
                    continue
                gr, op = conv_graph(rng, "depthwise")
                c = gr.shapes["x"][0]
                op.weight = rng.integers(-128, 128, size=(c, 1, 3, 3)).astype(np.int8)
                op.stride, op.padding = (stride, stride), (pad, pad)
                h = int(rng.integers(3, 9))
                gr.shapes["x"] = (c, h, width)
                gr.shapes["y"] = (c, (h + 2 * pad - 3) // stride + 1, (width + 2 * pad - 3) // stride + 1)
                check(rng, gr)


def test_reference_kernel_build_bit_exact(tmp_path, monkeypatch):
    """The benchmarks' baseline build (-DMCT_REFERENCE_KERNELS: requantization step by step, the
    general conv kernel for everything but pointwise) gives the same outputs too."""
    from tests.support.training import use_reference_kernel_build
    lib = use_reference_kernel_build(tmp_path, monkeypatch)
    rng = np.random.default_rng(5)
    for kind in ("depthwise", "pointwise", "general"):
        for _ in range(30):
            check(rng, conv_graph(rng, kind)[0], n_inputs=1)
    assert lib.exists()
