"""The channels-last kernels (c_src/mct_*_s8_hwc.c) against the numpy reference of the same ops
(host_tools.reference.conv2d_s8 on the tensors transposed to channel-planar), over random shapes,
strides, paddings, zero points, clamps and windows (the patch stage's and the row-streamed blocks'
calls): on the host through ctypes, and bare-metal on qemu's
Cortex-M7 (the DSP-extension path), Cortex-M3 and Cortex-M0 (the portable path). Bit-exact."""
import ctypes
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from host_tools.reference.kernels import conv2d_s8

sys.path.insert(0, str(ROOT / "bench"))
import bare_build  # noqa: E402

POINTWISE, DEPTHWISE, CONV = 0, 1, 2
GEOM_FIELDS = 20            # mct_hwc_geom_t: 12 of the op, 8 of its windows


class Case:
    """One kernel call: kind, geometry (HWC), quantization, data, and the reference's output."""

    def __init__(self, rng, kind, band=False, small=False, wide=False):
        """band: a depthwise 3x3 of stride 1 across (stride 1 or 2 down) over rows of 4 to 80 outputs, most
        with the full int8 output range: the DSP band tile's asm path, its segments, bands and odd ends.
        small: a depthwise 3x3 over a map of 1x1 to 8x8, stride 1 or 2, x_zero often at an end of its range,
        most with the full output range: the small-map tile and the 3x3 runs' asm (DSP) and one-channel
        (M3, M0) loops.
        wide: a depthwise 5x5 or 7x7, stride 1 or 2, over maps of 1x1 to 19x19, channel counts mostly
        multiples of 4, x_zero often at an end of its range: the DSP whole-row asm (taps4_rows)."""
        self.kind = kind
        odd = [1, 2, 3, 5, 7, 9, 17, 33]           # odd channel counts: the SIMD pairs' and blocks' tails
        if kind == POINTWISE:
            kh = kw = sh = sw = 1
            ph = pw = 0
            cin = int(rng.choice(odd + [4, 8, 16, 24, 48]))
            cout = int(rng.choice(odd + [4, 8, 16]))
        elif kind == DEPTHWISE:
            kh = kw = int(rng.choice([3, 3, 5, 7]))        # up to MCT_HWC_TAPS_MAX taps
            sh = sw = int(rng.choice([1, 2]))
            ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
            cin = cout = int(rng.choice(odd + [4, 8, 16, 20, 32]))
        else:
            kh = kw = int(rng.choice([1, 3, 3, 5, 7]))
            sh = sw = int(rng.choice([1, 2]))
            ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
            cin = int(rng.choice([c for c in (1, 2, 3, 3, 4) if kh * kw * c <= 160]))    # MCT_HWC_COL_MAX
            cout = int(rng.choice(odd + [4, 8, 16]))
        if small:
            kh = kw = 3
            sh = sw = int(rng.choice([1, 2]))
            ph, pw = int(rng.integers(0, 2)), int(rng.integers(0, 2))
        if wide:
            kh = kw = int(rng.choice([5, 7]))
            cin = cout = int(rng.choice([4, 8, 12, 16, 20, 5, 7]))
        if band:
            kh = kw = 3
            sh, sw = int(rng.choice([1, 1, 2])), 1
            ph, pw = int(rng.integers(0, 2)), int(rng.integers(0, 2))
        h = int(rng.integers(max(1, kh - 2 * ph), 24 if band else 9 if small else 20 if wide else 14))
        w = int(rng.integers(max(1, kw - 2 * pw), 9 if small else 20 if wide else 14)) if not band else \
            int(rng.integers(4 + 2 - 2 * pw, 82))
        if kind == POINTWISE and rng.random() < 0.15:
            h = w = 1                               # a fully connected layer: one pixel
        if kind == DEPTHWISE and rng.random() < 0.2:
            w = int(rng.integers(17, 41))           # rows wider than the DSP 3x3 path's segment (16 outputs)
        self.x_zero = int(rng.choice([-128, 127, int(rng.integers(-128, 128))])) if small or wide else \
            int(rng.integers(-128, 128))
        self.y_zero = int(rng.integers(-40, 41))
        lo, hi = [(-128, 127), (self.y_zero, 127), (-100, 90)][int(rng.integers(0, 3)) if not (band or small) or
                                                                 rng.random() < 0.3 else 0]
        self.act_min, self.act_max = lo, hi
        x = rng.integers(-128, 128, size=(h, w, cin), dtype=np.int8)
        wshape = (cout, kh, kw, 1) if kind == DEPTHWISE else (cout, kh, kw, cin)
        wt = rng.integers(-128, 128, size=wshape, dtype=np.int8)
        fan_in = kh * kw * (1 if kind == DEPTHWISE else cin)
        # a scale that maps the accumulators' spread onto about +-60, give or take a factor of 2
        spread = np.sqrt(fan_in) * 74.0 * 74.0
        self.mult = rng.integers(1 << 30, (1 << 31) - 1, size=cout).astype(np.int32)
        self.shift = np.clip(np.round(np.log2(60.0 / spread)) + rng.integers(-1, 2, size=cout), -31, 30).astype(np.int32)
        if rng.random() < 0.3:
            # no right shift (shift 0 or 1, a small multiplier): the kernels' other requantization path, for
            # every channel or for some (a channel pair or block with both paths)
            some = rng.random(cout) < (1.0 if rng.random() < 0.6 else 0.5)
            self.shift[some] = rng.integers(0, 2, size=int(some.sum()))
            self.mult[some] = np.maximum(1, (2.0 ** 31) * 60.0 / spread / 2.0 ** self.shift[some]).astype(np.int32)
        elif rng.random() < 0.2:
            # tiny multipliers with the right shift (the lean path): most products round to z = 0, also for
            # v < 0, where the DSP requantization takes the sign of v for that of z
            some = rng.random(cout) < 0.7
            self.mult[some] = rng.integers(1, 1 << 22, size=int(some.sum()))
        self.bias = rng.integers(-int(spread), int(spread) + 1, size=cout).astype(np.int32)
        # output windows reaching past the input below and to the right (more padding there than above
        # and to the left): the reference sees that padding as x_zero rows and columns of its input
        eh, ew = (int(rng.integers(0, kh + 3)), int(rng.integers(0, kw + 3))) \
            if kind != POINTWISE and rng.random() < 0.25 else (0, 0)
        x_ref = np.pad(x, ((0, eh), (0, ew), (0, 0)), constant_values=self.x_zero)
        ref = conv2d_s8(x_ref.transpose(2, 0, 1), wt.transpose(0, 3, 1, 2), self.bias, self.mult, self.shift,
                        self.x_zero, self.y_zero, lo, hi, (sh, sw), (ph, pw), cin if kind == DEPTHWISE else 1)
        ref = ref.transpose(1, 2, 0)
        # an output window that may stop short of the reference's (padding below/right not all used)
        crop = kind != POINTWISE and rng.random() < 0.3
        oh = int(rng.integers(1, ref.shape[0] + 1)) if crop else ref.shape[0]
        ow = int(rng.integers(1, ref.shape[1] + 1)) if crop else ref.shape[1]
        self.expected = np.ascontiguousarray(ref[:oh, :ow])
        self.geom = [h, w, cin, oh, ow, cout, kh, kw, sh, sw, ph, pw]
        self.x = x
        # the kernels' weight layouts, one row per output channel: pointwise [O][I], depthwise [C][KH][KW],
        # conv [O][I][KH][KW] (PyTorch's)
        self.w = np.ascontiguousarray(wt[:, :, :, 0] if kind == DEPTHWISE else wt.transpose(0, 3, 1, 2))
        if kind != POINTWISE and rng.random() < 0.3:
            self.window(rng, sh, sw, ph, pw)

    def window(self, rng, sh, sw, ph, pw):
        """A window, as the patch stage and the row-streamed blocks run the kernels: output pixels from
        (y0, x0) on, the input from the first pixel they read, (in_y0, in_x0), on (its rows keep the
        whole width's stride)."""
        h, w, cin = self.x.shape
        oh, ow = self.expected.shape[:2]
        y0, x0 = int(rng.integers(0, oh)), int(rng.integers(0, ow))
        wh, ww = int(rng.integers(1, oh - y0 + 1)), int(rng.integers(1, ow - x0 + 1))
        in_y0 = min(max(0, y0 * sh - ph), h - 1)
        in_x0 = min(max(0, x0 * sw - pw), w - 1)
        self.expected = np.ascontiguousarray(self.expected[y0:y0 + wh, x0:x0 + ww])
        # x points at pixel (in_y0, in_x0); the kernel may read any pixel after it up to the input's end
        self.x = np.ascontiguousarray(self.x[in_y0:]).ravel()[in_x0 * cin:].copy()
        self.geom[3:5] = [wh, ww]
        self.geom += [y0, x0, in_y0, in_x0, cin, w * cin, 0, 0]

    def record(self):
        """The case as bench/bare/kernels_test.c reads it."""
        def pad4(b):
            return b + bytes(-len(b) % 4)
        geom = self.geom + [0] * (GEOM_FIELDS - len(self.geom))
        head = np.array([self.kind] + geom + [self.x_zero, self.y_zero, self.act_min, self.act_max, self.x.nbytes],
                        dtype="<i4")
        return (head.tobytes() + self.bias.astype("<i4").tobytes() + self.mult.astype("<i4").tobytes()
                + self.shift.astype("<i4").tobytes() + pad4(self.x.tobytes()) + pad4(self.w.tobytes()))


def cases(seed, n_each=40):
    rng = np.random.default_rng(seed)
    out = [Case(rng, kind) for kind in (POINTWISE, DEPTHWISE, CONV) for _ in range(n_each)]
    out += [Case(rng, DEPTHWISE, band=True) for _ in range(n_each // 2)]
    out += [Case(rng, DEPTHWISE, small=True) for _ in range(n_each // 2)]
    out += [Case(rng, DEPTHWISE, wide=True) for _ in range(n_each // 2)]
    # the tests can fail: most outputs lie inside the clamp, not all at its ends
    inside = np.concatenate([((c.expected > c.act_min) & (c.expected < c.act_max)).ravel() for c in out])
    assert inside.mean() > 0.5
    return out


# ---------------------------------------------------------------------------------------------
# Host: the kernels in a shared library

class Quant(ctypes.Structure):
    _fields_ = [("x_zero", ctypes.c_int32), ("y_zero", ctypes.c_int32), ("act_min", ctypes.c_int32),
                ("act_max", ctypes.c_int32), ("bias", ctypes.c_void_p), ("mult", ctypes.c_void_p),
                ("shift", ctypes.c_void_p)]


def host_lib(tmp_path, flags):
    so = tmp_path / "libkernels_hwc.so"
    subprocess.run([os.environ.get("CC", "cc"), "-std=c99", "-O2", "-Wall", "-Werror", "-fPIC", "-shared",
                    "-I", str(ROOT / "c_src"), *flags, "-o", str(so)] + [str(s) for s in bare_build.KERNELS_HWC],
                   check=True)
    return ctypes.CDLL(str(so))


def run_host(lib, case):
    y = np.full(case.expected.shape, 0x5A, dtype=np.int8)
    arrays = [np.ascontiguousarray(a) for a in (case.bias, case.mult, case.shift, case.x, case.w)]
    q = Quant(case.x_zero, case.y_zero, case.act_min, case.act_max, *(a.ctypes.data for a in arrays[:3]))
    x, w = arrays[3].ctypes.data, arrays[4].ctypes.data
    geom = (ctypes.c_uint32 * GEOM_FIELDS)(*case.geom)     # the window fields 0: dense whole tensors
    if case.kind == POINTWISE:
        h, wd, cin, _, _, cout = case.geom[:6]
        lib.mct_pointwise_s8_hwc(ctypes.c_void_p(x), ctypes.c_uint32(h * wd), ctypes.c_uint32(cin),
                                 ctypes.c_void_p(w), ctypes.c_uint32(cout), ctypes.byref(q), y.ctypes.data_as(ctypes.c_void_p),
                                 ctypes.c_uint32(cout))
    elif case.kind == DEPTHWISE:
        assert lib.mct_depthwise_s8_hwc(ctypes.c_void_p(x), geom, ctypes.c_void_p(w), ctypes.byref(q),
                                        y.ctypes.data_as(ctypes.c_void_p)) == 0
    else:
        assert lib.mct_conv_s8_hwc(ctypes.c_void_p(x), geom, ctypes.c_void_p(w), ctypes.byref(q),
                                   y.ctypes.data_as(ctypes.c_void_p)) == 0
    return y


@pytest.mark.parametrize("flags", [[], ["-DMCT_PORTABLE"], ["-DMCT_REFERENCE_KERNELS"]], ids=["fast", "portable", "reference-requant"])
def test_host(tmp_path, flags):
    lib = host_lib(tmp_path, flags)
    for i, case in enumerate(cases(1)):
        np.testing.assert_array_equal(run_host(lib, case), case.expected, err_msg=f"case {i}: {case.geom}")


def test_conv_refuses_a_long_column(tmp_path):
    lib = host_lib(tmp_path, [])
    geom = (ctypes.c_uint32 * GEOM_FIELDS)(8, 8, 16, 8, 8, 4, 3, 3, 1, 1, 1, 1)     # 3*3*16 = 144 <= 160: accepted
    x, w, y = np.zeros(8 * 8 * 32, np.int8), np.zeros(4 * 3 * 3 * 32, np.int8), np.zeros(8 * 8 * 4, np.int8)
    z = np.zeros(4, np.int32)
    q = Quant(0, 0, -128, 127, z.ctypes.data, z.ctypes.data, z.ctypes.data)
    assert lib.mct_conv_s8_hwc(x.ctypes.data_as(ctypes.c_void_p), geom, w.ctypes.data_as(ctypes.c_void_p),
                               ctypes.byref(q), y.ctypes.data_as(ctypes.c_void_p)) == 0
    geom[2] = 32                                                          # 288 > 160: refused
    y[:] = 7
    assert lib.mct_conv_s8_hwc(x.ctypes.data_as(ctypes.c_void_p), geom, w.ctypes.data_as(ctypes.c_void_p),
                               ctypes.byref(q), y.ctypes.data_as(ctypes.c_void_p)) == -1
    assert (y == 7).all()


def test_depthwise_refuses_a_kernel_past_7x7(tmp_path):
    lib = host_lib(tmp_path, [])
    geom = (ctypes.c_uint32 * GEOM_FIELDS)(9, 9, 4, 9, 9, 4, 7, 7, 1, 1, 3, 3)     # 49 taps: accepted
    x, w, y = np.zeros(9 * 9 * 4, np.int8), np.zeros(4 * 9 * 9, np.int8), np.full(9 * 9 * 4, 7, np.int8)
    z = np.zeros(4, np.int32)
    q = Quant(0, 0, -128, 127, z.ctypes.data, z.ctypes.data, z.ctypes.data)
    args = (x.ctypes.data_as(ctypes.c_void_p), geom, w.ctypes.data_as(ctypes.c_void_p), ctypes.byref(q),
            y.ctypes.data_as(ctypes.c_void_p))
    assert lib.mct_depthwise_s8_hwc(*args) == 0
    geom[6] = geom[7] = 9                                                       # 81 taps: refused
    y[:] = 7
    assert lib.mct_depthwise_s8_hwc(*args) == -1
    assert (y == 7).all()


# ---------------------------------------------------------------------------------------------
# Bare metal on qemu: m7 takes the DSP path, m3 and m0 the portable one

def check_on_qemu(tmp_path, core, batch, flags=()):
    """Runs the cases on a qemu core (bench/bare/kernels_test.c): every output equals the reference's."""
    missing = bare_build.missing_tools()
    if missing:
        pytest.skip(f"{missing} not installed (tools/install_deps.sh installs them)")
    name = "kernels_test" + "".join(f.replace("-", "_") for f in flags)
    elf = bare_build.build(name, core, [bare_build.BARE / "kernels_test.c"] + bare_build.KERNELS_HWC, flags=flags)
    (tmp_path / "cases.bin").write_bytes(b"".join(c.record() for c in batch))
    r = bare_build.run(elf, core, tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    out = (tmp_path / "out.bin").read_bytes()
    at = 0
    for i, case in enumerate(batch):
        n = case.expected.size
        got = np.frombuffer(out[at:at + n], dtype=np.int8).reshape(case.expected.shape)
        np.testing.assert_array_equal(got, case.expected, err_msg=f"case {i}: kind {case.kind} {case.geom}")
        at += n
    assert at == len(out)


@pytest.mark.parametrize("core", ["m7", "m3", "m0"])
def test_qemu(tmp_path, core):
    check_on_qemu(tmp_path, core, cases(2))


def test_qemu_m7_position_independent(tmp_path):
    """The kernels as the armv7emsp .mpy compiles them (-fpic, -Os): fewer free registers, so some asm
    takes its other path (taps4)."""
    check_on_qemu(tmp_path, "m7", cases(2), flags=("-fpic", "-Os"))


# ---------------------------------------------------------------------------------------------
# make bench-kernels, on qemu-m7: its report, and every implementation's output equal to the kernels'

def test_bench_kernels_m7(tmp_path):
    import bench_kernels
    missing = bare_build.missing_tools()
    if missing:
        pytest.skip(f"{missing} not installed (tools/install_deps.sh installs them)")
    if not bench_kernels.PLUGIN_SRC.exists():
        pytest.skip(f"no instruction-count plugin ({bench_kernels.PLUGIN_SRC}): a fresh clone has no ../shared")
    docs = tmp_path / "benchmarks.md"
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_kernels.py"), "--cores", "m7", "--docs", str(docs)],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    text = docs.read_text()
    assert "every implementation's output equals hwc's" in text
    rows = [ln for ln in text.splitlines() if ln.startswith(("| pointwise |", "| depthwise |", "| first conv |"))]
    assert len(rows) == 29 + 3                      # the distinct layer shapes, then the totals by kind
    for row in rows:
        cells = [float(c) for c in row.strip("|").split("|")[-2:]]     # hwc, CMSIS-NN
        assert all(0.5 < c < 50 for c in cells), row    # instructions per MAC
