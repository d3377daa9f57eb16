"""The rp2-pico board: the real Raspberry Pi Pico firmware (MicroPython ports/rp2 with mcutrain built
in) in the rp2040js emulator, through the CLI as users run it. The board scripts of tests/board run on
it in tests/test_boards.py and tests/test_board_api.py (the `board` parameter); here: the firmware's
files and Flash layout, and `host_tools run` / `check` on it.

Skips, saying why, without Node, rp2040js (make rp2040js) or the firmware (make firmware BOARD=rp2-pico)."""
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from host_tools.boards import rp2040js
from host_tools.boards import runners as boards
from host_tools.model import mct_format

ROOT = Path(__file__).resolve().parents[1]
UF2_MAGIC = (0x0A324655, 0x9E5D5157, 0x0AB16F30)
RP2040_FAMILY = 0xE48BFF56


@pytest.fixture(scope="module")
def pico():
    """The firmware, (re)built through the Makefile (incremental), and a reason to skip if it cannot run."""
    if rp2040js.emulator_missing():
        pytest.skip(f"the emulated Pico cannot run: {rp2040js.emulator_missing()}")
    boards.build_firmware("rp2-pico")
    return rp2040js.FIRMWARE


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "host_tools", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_uf2_holds_the_firmware_binary(pico):
    """The .uf2 (written by MicroPython's tools/uf2conv.py) is the .bin at the Flash start, for the RP2040."""
    data = pico.read_bytes()
    binary = (pico.parent / "firmware.bin").read_bytes()
    assert len(data) % 512 == 0
    image = bytearray()
    blocks = len(data) // 512
    for n in range(blocks):
        block = data[n * 512:(n + 1) * 512]
        magic0, magic1, flags, addr, size, seq, total, family = struct.unpack_from("<8I", block)
        assert (magic0, magic1, struct.unpack_from("<I", block, 508)[0]) == UF2_MAGIC
        assert (flags & 0x2000, family) == (0x2000, RP2040_FAMILY)
        assert (seq, total, addr) == (n, blocks, 0x10000000 + len(image))
        image += block[32:32 + size]
    assert bytes(image[:len(binary)]) == binary and not any(image[len(binary):])


def test_firmware_fits_below_its_romfs(pico):
    """The code ends below the ROMFS partition, and the board sees the partition where the host writes it."""
    layout = rp2040js.flash_layout()
    assert len((pico.parent / "firmware.bin").read_bytes()) <= layout["romfs_offset"]
    out = cli("run", "--board", "rp2-pico", ROOT / "tests" / "board" / "rp2_romfs.py")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.split() == [str(0x10000000 + layout["romfs_offset"]), str(layout["romfs_size"])]


def test_run_cli_streams_output_and_status(pico, tmp_path):
    script = tmp_path / "hello.py"
    script.write_text(textwrap.dedent("""
        import sys, mcutrain
        print(sys.platform, sys.implementation._machine)
        print(open('data.txt').read().strip())
        sys.exit(5)
    """))
    (tmp_path / "data.txt").write_text("from ROMFS\n")
    out = cli("run", "--board", "rp2-pico", script, tmp_path / "data.txt")
    assert out.returncode == 5, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("rp2 Raspberry Pi Pico with RP2040")
    assert lines[1] == "from ROMFS"


def test_check_cli_trains_bit_identical_to_the_host(pico, tmp_path):
    """`host_tools check --board rp2-pico`: forward and training steps against the numpy reference."""
    from tests.support.board_models import fixed_graph
    gr = fixed_graph(np.random.default_rng(77), width=6)
    mct_format.write(gr, tmp_path / "model.mct")
    out = cli("check", tmp_path / "model.mct", "--board", "rp2-pico", "--steps", "4")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "trained tensors identical" in out.stdout, out.stdout


def test_denormal_scales_are_zero_on_the_pico(pico, tmp_path):
    """The RP2040 boot ROM's float routines (pico-sdk's pico_float) flush denormals to zero: a model whose
    classifier scales are denormal (positive on the host) is rejected at load with a clear ValueError,
    where a sound model loads and trains."""
    from tests.support.board_models import numeric_models
    numeric_models(tmp_path)
    script = tmp_path / "load.py"
    script.write_text(textwrap.dedent("""
        import mcutrain
        print(1e-45 > 0, 1e-38 > 0, 2e-38 > 0)  # FLT_MIN = 1.18e-38
        mcutrain.Model(open('model.mct', 'rb').read())
        try:
            mcutrain.Model(open('tiny_scale.mct', 'rb').read())
        except ValueError as e:
            print('ValueError:', e)
    """))
    out = cli("run", "--board", "rp2-pico", script, tmp_path / "model.mct", tmp_path / "tiny_scale.mct")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines() == ["False False True", "ValueError: model op 4: scale not finite and positive"]


def test_convert_for_the_pico_gives_the_integer_backward_trained_bit_identical(pico, tmp_path):
    """`host_tools convert --board rp2-pico` gives a model the integer backward (the Pico has no FPU;
    host_tools/boards/backward.py), without --board the float32 one; on the emulated Pico that model trains
    bit-identically to the numpy reference (whose integer backward is the independent twin of the C one)."""
    from tests.test_cli import MODELS, data_file
    from host_tools.model import numerics
    data = data_file(tmp_path / "data.npz", (3, 16, 16), 4)
    flags = {}
    for board in ("rp2-pico", None):
        out = tmp_path / f"{board}.mct"
        res = cli("convert", f"{MODELS}:MobileNetV2Tiny", "--calib", data, "--n-bias-update", "2", "-o", out,
                  *(["--board", board] if board else []))
        assert res.returncode == 0, res.stdout + res.stderr
        flags[board] = mct_format.read(out).train_flags
    assert flags["rp2-pico"] & numerics.INT_BACKWARD and not flags[None] & numerics.INT_BACKWARD
    assert flags["rp2-pico"] & numerics.RULE_MASK == flags[None] & numerics.RULE_MASK   # the same update rule
    out = cli("check", tmp_path / "rp2-pico.mct", "--board", "rp2-pico", "--steps", "4")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "trained tensors identical" in out.stdout, out.stdout
    # The master rule has no integer backward: told so, no file.
    res = cli("convert", f"{MODELS}:MobileNetV2Tiny", "--calib", data, "--board", "rp2-pico", "--update-rule",
              "master", "-o", tmp_path / "master.mct")
    assert res.returncode == 2 and "--board rp2-pico takes the integer backward" in res.stderr, res.stderr
    assert not (tmp_path / "master.mct").exists()
