"""The kernels' requantization (mct_rq_t in c_src/mct_requant.h: constants prepared per channel,
one long multiply per output) against the reference mct_requant_s8 / mct_requant, bit for bit:
every shift, edge multipliers and biases, dense and random accumulators, and the Cortex-M0 long
multiply (mct_mul64_16) against the compiler's (tests/host/requant_check.c). Built for the host; the
same C code runs on every Cortex-M build (tests/test_boards_kernels.py runs the kernels there)."""
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def checker(tmp_path_factory):
    exe = tmp_path_factory.mktemp("requant") / "requant_check"
    subprocess.run([os.environ.get("CC", "cc"), "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror",
                    "-fsanitize=undefined", "-fno-sanitize-recover=undefined",
                    "-I", str(ROOT / "c_src"), "-o", str(exe), str(ROOT / "tests/host/requant_check.c"),
                    str(ROOT / "c_src/mct_requant.c")], check=True)
    return exe


def test_fast_requant_is_bit_exact_with_the_reference(checker):
    res = subprocess.run([str(checker), "3000000"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    cases, fast, bad = map(int, re.search(r"cases (\d+) fast (\d+) mismatches (\d+)", res.stdout).groups())
    assert bad == 0, res.stdout
    assert cases > 10_000_000
    # both paths are exercised: the fast one on most cases, the reference on the saturating ones
    assert 0.3 * cases < fast < cases


def test_checker_detects_a_wrong_rounding(tmp_path):
    """The checker is able to fail: the fast path with the sign correction of the second rounding
    left out (ties of negative values rounded up instead of away from zero)."""
    src = (ROOT / "c_src" / "mct_requant.h").read_text()
    wrong = src.replace("(v < 0 ? q->round_neg : q->round_pos)", "q->round_pos")
    assert wrong != src
    (tmp_path / "mct_requant.h").write_text(wrong)
    exe = tmp_path / "requant_check"
    # the mutated header first; the rest of c_src/ (mct_config.h) after it
    subprocess.run([os.environ.get("CC", "cc"), "-std=c99", "-O2", "-I", str(tmp_path), "-I", str(ROOT / "c_src"), "-o", str(exe),
                    str(ROOT / "tests/host/requant_check.c"), str(ROOT / "c_src/mct_requant.c")], check=True)
    res = subprocess.run([str(exe), "100000"], capture_output=True, text=True)
    assert res.returncode == 1 and "MISMATCH" in res.stdout
