"""The integer backward kernels of pointwise and depthwise convs (c_src/mct_backward_pw_int.c,
mct_backward_dw_int.c) against the numpy reference's sums (host_tools/reference/int_backward.py
conv_input_grad, conv_weight_sums), bit for bit, over random shapes: odd channel counts, widths that
are not multiples of the blocking, more output channels than a chunk of weight columns, strides,
paddings, zero points, weight rows split between SRAM and Flash, and contributions T at the bound the
core keeps them within (|T| <= 2^(29 - bitlen(127 n_terms))), with the input gradient they add to
near 2^29: the int32 accumulators' worst case. One driver (bench/bare/backward_int_test.c) on the
host and bare-metal on qemu's Cortex-M7 (its DSP path, SMLAD, and its -DMCT_PORTABLE build), M3 and M0."""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from host_tools.reference.int_backward import bitlen, conv_input_grad, conv_weight_sums

sys.path.insert(0, str(ROOT / "bench"))
import bare_build  # noqa: E402

POINTWISE, DEPTHWISE = 0, 1
SOURCES = [ROOT / "c_src" / f for f in ("mct_backward_pw_int.c", "mct_backward_dw_int.c")]
DRIVER = bare_build.BARE / "backward_int_test.c"


def _case(rng, kind, extreme):
    """(record bytes, expected output bytes)."""
    odd = [1, 2, 3, 5, 7, 9, 17, 33]
    if kind == POINTWISE:
        c_in = int(rng.choice(odd + [4, 16, 40]))
        # past the 64 weight columns on the stack; from 130 on, |T| <= 2^14: the DSP path's halfword pairs
        c_out = int(rng.choice(odd + [4, 16, 65, 70, 130, 131, 144, 300]))
        kh = kw = sh = sw = 1
        ph = pw = 0
        h, w = int(rng.integers(1, 7)), int(rng.integers(1, 8))
        n_terms = c_out
    else:
        c_in = c_out = int(rng.choice(odd + [4, 8]))
        kh = kw = int(rng.choice([1, 3, 3, 5, 7]))
        sh = sw = int(rng.choice([1, 1, 2]))
        ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
        h = int(rng.integers(max(1, kh - 2 * ph), 12))
        w = int(rng.integers(max(1, kw - 2 * pw), 24 if rng.random() < 0.3 else 12))
        n_terms = kh * kw
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    t_bits = 29 - int(bitlen(127 * n_terms))
    zero = int(rng.integers(-128, 128))
    row_len = (c_in if kind == POINTWISE else 1) * kh * kw
    top = 1 << t_bits
    if extreme:
        # every product at its largest with one sign: the sums reach 127 n_terms 2^t_bits < 2^29 on top
        # of an input gradient just below 2^29, the weight sums 255 * 2^t_bits per position
        sign = int(rng.choice([-1, 1]))
        wt = np.full((c_out, row_len), 127 * sign, np.int8)
        t = np.full((c_out, oh * ow), top, np.int64)
        zero = 127 if sign > 0 else -128
        x = np.full((h, w, c_in), -128 if sign > 0 else 127, np.int8)
        gin = np.full((c_in, h * w), sign * ((1 << 29) - 1), np.int64)
    else:
        wt = rng.integers(-128, 128, size=(c_out, row_len)).astype(np.int8)
        t = rng.integers(-top, top + 1, size=(c_out, oh * ow))
        t[rng.random(t.shape) < 0.2] = top * rng.choice([-1, 1])
        x = rng.integers(-128, 128, size=(h, w, c_in)).astype(np.int8)
        gin = rng.integers(-(1 << 29) + 1, 1 << 29, size=(c_in, h * w))
    n_sram = int(rng.integers(0, c_out + 1))
    groups = 1 if kind == POINTWISE else c_in
    kernel, stride, pad = (kh, kw), (sh, sw), (ph, pw)
    want_gin = gin.reshape(-1) + conv_input_grad(t, wt, (c_in, h, w), (oh, ow), kernel, stride, pad, groups)
    want_sums = conv_weight_sums(t, x.transpose(2, 0, 1), zero, (oh, ow), kernel, stride, pad, groups, c_out)
    assert np.abs(want_gin).max() < 2 ** 31
    head = np.array([kind, c_in, h, w, c_out, oh, ow, kh, kw, sh, sw, ph, pw, zero, t_bits, n_sram], "<i4")

    def pad4(b):
        return b + bytes(-len(b) % 4)
    rec = (head.tobytes() + pad4(wt.tobytes()) + pad4(x.tobytes()) + t.astype("<i4").tobytes()
           + gin.astype("<i4").tobytes())
    return rec, want_gin.astype("<i4").tobytes() + want_sums.astype("<i8").tobytes()


def _cases(seed):
    rng = np.random.default_rng(seed)
    return [_case(rng, kind, extreme=i % 8 == 7) for kind in (POINTWISE, DEPTHWISE) for i in range(40)]


def _check(out, cases):
    at = 0
    for i, (rec, want) in enumerate(cases):
        head = np.frombuffer(rec[:64], "<i4")
        assert out[at:at + len(want)] == want, f"case {i}: {head.tolist()}"
        at += len(want)
    assert at == len(out)


def test_host(tmp_path):
    exe = tmp_path / "backward_int_test"
    subprocess.run([os.environ.get("CC", "cc"), "-std=c99", "-O2", "-Wall", "-Werror", "-I", str(ROOT / "c_src"),
                    "-I", str(bare_build.BARE), "-o", str(exe), str(DRIVER), str(bare_build.BARE / "bare_stdio.c"),
                    *map(str, SOURCES)], check=True)
    cases = _cases(1)
    (tmp_path / "cases.bin").write_bytes(b"".join(rec for rec, _ in cases))
    r = subprocess.run([str(exe)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    _check((tmp_path / "out.bin").read_bytes(), cases)


@pytest.mark.parametrize("core,portable", [("m7", False), ("m7", True), ("m3", False), ("m0", False)],
                         ids=["m7", "m7-portable", "m3", "m0"])
def test_qemu(tmp_path, core, portable):
    missing = bare_build.missing_tools()
    if missing:
        pytest.skip(f"{missing} not installed (tools/install_deps.sh installs them)")
    elf = bare_build.build("backward_int_test" + ("_portable" if portable else ""), core, [DRIVER] + SOURCES,
                           flags=["-DMCT_PORTABLE"] if portable else [])
    cases = _cases(2)
    (tmp_path / "cases.bin").write_bytes(b"".join(rec for rec, _ in cases))
    r = bare_build.run(elf, core, tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    _check((tmp_path / "out.bin").read_bytes(), cases)
