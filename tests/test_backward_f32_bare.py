"""The pointwise float backward kernels (c_src/mct_backward_pw_f32.c) bare-metal on qemu's Cortex-M7
with its FPU, built as the qemu-m7 and STM32F7 firmware builds them (MCT_FPU_VMLA: multiply-adds as
VMLA.F32), and on the Cortex-M3 (soft float, the portable C), against numpy's float32 arithmetic in
the kernels' order, every product and sum rounded separately: bit for bit. The boards' checks cannot
tell a one-ulp difference (the int8 updates round it away), so the floats are compared here."""
import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import bare_build  # noqa: E402

INPUT_GRAD4, WEIGHT_GRAD4, INPUT_GRAD, WEIGHT_GRAD, COL2_SCALED, COL2 = range(6)
BUILDS = {"m7": ["-mfpu=fpv5-sp-d16", "-mfloat-abi=softfp", "-DMCT_FPU_VMLA"], "m3": []}


def _pad4(b):
    return b + bytes(-len(b) % 4)


def _case(rng, kind):
    """(record bytes for bench/bare/backward_f32_test.c, expected float32 output)."""
    hw = int(rng.choice([1, 3, 4, 7, 8, 9, 16, 17, 25, 36]))
    n = int(rng.choice([1, 2, 3, 5, 8, 15, 16, 17, 31, 33, 40]))      # past the 16 and 32 chunks
    zero = int(rng.integers(-128, 128))
    w = rng.integers(-128, 128, size=(4, n)).astype(np.int8)
    x = rng.integers(-128, 128, size=(hw, n)).astype(np.int8)
    # magnitudes over several binades, so sums round at different positions
    g = (rng.standard_normal((4, hw)) * 2.0 ** rng.integers(-12, 4, size=(4, hw))).astype(np.float32)
    ws = (rng.uniform(0.001, 0.05, size=4)).astype(np.float32)
    gin = rng.standard_normal((n, hw)).astype(np.float32)
    wf, xf = w.astype(np.float32), (x.astype(np.int32) - zero).astype(np.float32)
    if kind == INPUT_GRAD4:
        exp = gin.copy()
        s = g * ws[:, None]
        for k in range(4):
            exp = exp + wf[k][:, None] * s[k][None, :]
    elif kind in (COL2_SCALED, COL2):
        # weights read as [n][4] (columns 1 and 2), gin as the output channels' gradients, into g[0], g[1]
        wr = w.reshape(-1).reshape(n, 4).astype(np.float32)
        exp = g[:2].copy()
        for j in range(n):
            t = gin[j] * ws[j % 4] if kind == COL2_SCALED else gin[j]
            exp[0] = exp[0] + wr[j, 1] * t
            exp[1] = exp[1] + wr[j, 2] * t
    elif kind == INPUT_GRAD:
        exp = gin + wf[0][:, None] * (g[0] * ws[0])[None, :]
    else:
        rows = 4 if kind == WEIGHT_GRAD4 else 1
        exp = np.zeros((rows, n), np.float32)
        for p in range(hw):
            exp = exp + g[:rows, p][:, None] * xf[p][None, :]
    rec = (np.array([hw, n, zero, kind], np.int32).tobytes() + _pad4(w.tobytes()) + _pad4(x.tobytes())
           + g.tobytes() + ws.tobytes() + gin.tobytes())
    return rec, exp.astype(np.float32)


@pytest.mark.parametrize("core", sorted(BUILDS))
def test_pointwise_backward_bit_exact_on_qemu(tmp_path, core):
    missing = bare_build.missing_tools()
    if missing:
        pytest.skip(f"{missing} not installed (tools/install_deps.sh installs them)")
    elf = bare_build.build(f"backward_f32_test_{'vmla' if BUILDS[core] else 'c'}", core,
                           [bare_build.BARE / "backward_f32_test.c", ROOT / "c_src" / "mct_backward_pw_f32.c"],
                           flags=["-ffp-contract=off"] + BUILDS[core])
    rng = np.random.default_rng(13)
    cases = [_case(rng, kind) for _ in range(12) for kind in range(6)]
    (tmp_path / "cases.bin").write_bytes(b"".join(rec for rec, _ in cases))
    r = bare_build.run(elf, core, tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    out = (tmp_path / "out.bin").read_bytes()
    at = 0
    for i, (_, exp) in enumerate(cases):
        got = np.frombuffer(out[at:at + exp.nbytes], np.float32).reshape(exp.shape)
        np.testing.assert_array_equal(got.view(np.uint32), exp.view(np.uint32), err_msg=f"case {i}")
        at += exp.nbytes
    assert at == len(out)
