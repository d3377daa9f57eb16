"""The pointwise kernel's own paths (c_src/mct_pointwise_s8_hwc.c) against the numpy reference, on the
host and bare-metal on qemu-m7/m3/m0 (tests/test_kernels_hwc.py's harness): 8 to 64 input channels
with the full output range (the DSP cores' table kernel, one pass or several), output counts that are
odd or span several of its chunks, a chunk with a channel off the lean requantization; the channel
pairs' odd and even counts of 4-channel groups, more than 256 input channels (the DSP loop's tail
past the unpacked weights) and more than 512 (past one SWAR sum of the weights), odd pixel counts,
and extreme multipliers, shifts and zero points. Bit-exact."""
import numpy as np
import pytest

from host_tools.reference.kernels import conv2d_s8
from test_kernels_hwc import POINTWISE, Case, check_on_qemu, host_lib, run_host


def pointwise_case(rng, cin, cout, pixels, full_range=True, off_lean=False, extreme=False):
    """A Case (test_kernels_hwc's) of one pointwise call over `pixels` pixels."""
    c = Case.__new__(Case)
    c.kind = POINTWISE
    c.x_zero = int(rng.choice([-128, 127])) if extreme else int(rng.integers(-128, 128))
    c.y_zero = int(rng.choice([-128, 127, 0])) if extreme else int(rng.integers(-40, 41))
    c.act_min, c.act_max = (-128, 127) if full_range else (max(-128, c.y_zero), 127)
    x = rng.integers(-128, 128, size=(1, pixels, cin), dtype=np.int8)
    wt = rng.integers(-128, 128, size=(cout, 1, 1, cin), dtype=np.int8)
    spread = np.sqrt(cin) * 74.0 * 74.0
    c.mult = rng.integers(1 << 30, (1 << 31) - 1, size=cout).astype(np.int32)
    c.shift = np.clip(np.round(np.log2(60.0 / spread)) + rng.integers(-1, 2, size=cout), -31, 30).astype(np.int32)
    if extreme:
        # the largest and smallest multipliers, and shifts at the lean path's edge (-21 on it, -22 off)
        c.mult[rng.random(cout) < 0.3] = (1 << 31) - 1
        c.mult[rng.random(cout) < 0.2] = 1
        edge = rng.random(cout) < 0.3
        c.shift[edge] = rng.choice([-21, -22], size=int(edge.sum()))
    if off_lean:
        # one channel with no right shift (the reference requantization) somewhere in the outputs
        k = int(rng.integers(0, cout))
        c.shift[k] = 0
        c.mult[k] = max(1, int((2.0 ** 31) * 60.0 / spread))
    c.bias = rng.integers(-int(spread), int(spread) + 1, size=cout).astype(np.int32)
    ref = conv2d_s8(x.transpose(2, 0, 1), wt.transpose(0, 3, 1, 2), c.bias, c.mult, c.shift, c.x_zero, c.y_zero,
                    c.act_min, c.act_max, (1, 1), (0, 0), 1)
    c.expected = np.ascontiguousarray(ref.transpose(1, 2, 0))
    c.geom = [1, pixels, cin, 1, pixels, cout, 1, 1, 1, 1, 0, 0]
    c.x = x
    c.w = np.ascontiguousarray(wt.transpose(0, 3, 1, 2))
    return c


def cases():
    rng = np.random.default_rng(13)
    out = []
    # the table kernel, one pass (8, 16 inputs) or several (24 to 64): chunks of 38 to 6 output channels
    for cin in (8, 16, 24, 32, 40, 48, 56, 64):
        for cout in (1, 2, 3, 7, 14, 16, 26, 29, 38, 45, 70):
            # past 32 inputs the table kernel takes 32 pixels or more
            out.append(pointwise_case(rng, cin, cout, int(rng.choice([1, 2, 3, 17] if cin <= 32 else [33, 40]))))
        out.append(pointwise_case(rng, cin, 48, 5 if cin <= 32 else 32, off_lean=True))
        out.append(pointwise_case(rng, cin, 40, 4 if cin <= 32 else 35, extreme=True))
        out.append(pointwise_case(rng, cin, 24, 3, full_range=False))
    # the channel pairs: odd and even counts of 4-channel groups (the DSP loop's two entries), up to the
    # unpacked weights' 256 and past them, past one SWAR weight sum (512), odd counts
    for cin, cout, pixels in ((4, 3, 5), (68, 5, 6), (72, 4, 3), (100, 4, 3), (252, 3, 4), (256, 2, 5), (260, 6, 5),
                              (336, 8, 4), (337, 5, 3), (516, 3, 3), (1030, 2, 2)):
        out.append(pointwise_case(rng, cin, cout, pixels))
    out.append(pointwise_case(rng, 96, 9, 7, extreme=True))
    out.append(pointwise_case(rng, 24, 11, 9, extreme=True))
    return out


@pytest.mark.parametrize("flags", [[], ["-DMCT_PORTABLE"], ["-DMCT_REFERENCE_KERNELS"]],
                         ids=["fast", "portable", "reference-requant"])
def test_host(tmp_path, flags):
    lib = host_lib(tmp_path, flags)
    for i, case in enumerate(cases()):
        np.testing.assert_array_equal(run_host(lib, case), case.expected, err_msg=f"case {i}: {case.geom}")


@pytest.mark.parametrize("core", ["m7", "m3", "m0"])
def test_qemu(tmp_path, core):
    check_on_qemu(tmp_path, core, cases())
