"""`host_tools deploy` for real, over a serial line: an emulated board (qemu-m3) on a host pty with
its persistent Flash at /flash; files go in with mpremote's transport or adafruit-ampy (models also
into the board's ROMFS with `mpremote romfs deploy`), the training script runs on the board, and the
model it saved comes back. The reference is the unix port running
the same script on the same files: the fetched model must be byte for byte the one it saves.
"""
import os
import subprocess
import sys

import pytest

from host_tools.boards import runners as boards
from host_tools.boards import deploy
from host_tools.model import export
from host_tools.model import mct_format
from host_tools.errors import UserError
from tests import test_board_api as api

files = api.files
SCRIPT = api.HERE / "deploy_train.py"
DATA = ["model.mct", "inputs.bin", "labels.bin"]


@pytest.fixture(scope="module")
def firmware():
    boards.build_firmware("qemu-m3")
    boards.build_firmware("unix")


@pytest.fixture(scope="module")
def unix_trained(files, firmware):
    """The model that the unix port saves after running the script: the reference."""
    res = boards.run_script("unix", SCRIPT, [files / n for n in DATA], timeout=120)
    assert res.returncode == 0, res.output
    return bytes.fromhex("".join(line.split()[1] for line in res.output.splitlines() if line.startswith("hex ")))


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "host_tools", "deploy", *map(str, args)], cwd=cwd or boards.REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("tool", deploy.TOOLS)
def test_deploy_run_fetch_export_through_the_emulated_board(tool, files, unix_trained, tmp_path):
    flash = boards.make_flash_image(tmp_path / "flash.img")
    out = tmp_path / "out"
    out.mkdir()
    lines = []
    with deploy.EmulatedBoard("qemu-m3", flash) as board:
        rc = deploy.deploy(board.port, [files / n for n in DATA] + [SCRIPT], run=SCRIPT.name,
                           get=["trained.mct"], out_dir=out, tool=tool, stream=lines.append)
    assert rc == 0, "".join(lines)
    fetched = (out / "trained.mct").read_bytes()
    assert fetched == unix_trained
    assert fetched != (files / "model.mct").read_bytes()
    # What the board printed is the file it saved, and the same training as on unix.
    printed = bytes.fromhex("".join(l.split()[1] for l in "".join(lines).splitlines() if l.startswith("hex ")))
    assert printed == fetched

    # The Flash outlives the board: a new qemu on the same image still has the files.
    again = tmp_path / "again"
    again.mkdir()
    with deploy.EmulatedBoard("qemu-m3", flash) as board:
        deploy.deploy(board.port, [], get=["trained.mct", "/flash/model.mct"], out_dir=again, tool=tool)
    assert (again / "trained.mct").read_bytes() == fetched
    assert (again / "model.mct").read_bytes() == (files / "model.mct").read_bytes()

    # And it exports: the trained tensors changed, the frozen ones did not.
    changes = export.compare(mct_format.read(again / "trained.mct"), mct_format.read(files / "model.mct"))
    assert any(c.trained and c.changed for c in changes)
    assert all(c.changed == 0 for c in changes if not c.trained)


def test_cli_round_trip_with_emulate(files, unix_trained, tmp_path):
    flash = tmp_path / "flash.img"          # made by the command
    res = _cli("--emulate", "qemu-m3", "--flash", flash, *[files / n for n in DATA], SCRIPT,
               "--run", SCRIPT.name, "--get", "trained.mct", "--out", tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "loss" in res.stdout and "trained.mct" in res.stderr
    assert (tmp_path / "trained.mct").read_bytes() == unix_trained
    assert flash.stat().st_size == boards.FLASH_IMAGE_SIZE


def test_romfs_deploy_keeps_the_model_in_flash_across_restarts(files, unix_trained, tmp_path):
    flash, rom = tmp_path / "flash.img", tmp_path / "rom.img"
    res = _cli("--emulate", "qemu-m3", "--flash", flash, "--rom-image", rom, "--romfs",
               *[files / n for n in DATA], SCRIPT, "--run", SCRIPT.name, "--get", "trained.mct", "--out", tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "model.mct -> ROMFS :/rom" in res.stderr
    assert "weights in Flash True" in res.stdout      # the script trained from the model in place
    assert (tmp_path / "trained.mct").read_bytes() == unix_trained
    # A new qemu loads the ROMFS the board wrote: the model is still in /rom, and only there.
    with deploy.EmulatedBoard("qemu-m3", flash, rom) as board, deploy.SerialBoard(board.port) as serial:
        assert serial.eval("__import__('os').listdir('/rom')") == ["model.mct"]
        assert "model.mct" not in serial.eval("__import__('os').listdir('/flash')")
        serial.get("/rom/model.mct", tmp_path / "back.mct")
    assert (tmp_path / "back.mct").read_bytes() == (files / "model.mct").read_bytes()


def test_script_error_gives_its_traceback_and_status(files, firmware, tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import mcutrain\nprint('before')\nmcutrain.Model(b'not a model')\n")
    flash = boards.make_flash_image(tmp_path / "flash.img")
    lines = []
    with deploy.EmulatedBoard("qemu-m3", flash) as board:
        rc = deploy.deploy(board.port, [bad], run="bad.py", stream=lines.append)
    text = "".join(lines)
    assert rc == 1 and "before" in text and "ValueError" in text and "<stdin>" not in text, text


def test_missing_port_is_a_clear_error(files, tmp_path):
    res = _cli("--port", tmp_path / "ttyNONE", files / "model.mct")
    assert res.returncode == 2
    assert res.stderr.strip() == (f"host_tools deploy: error: no serial port {tmp_path / 'ttyNONE'}: "
                                  "is the board plugged in (or qemu started with -serial pty)?")
    assert "Traceback" not in res.stderr


def test_silent_port_is_a_clear_error():
    """A serial line with no MicroPython behind it (a pty nobody answers on)."""
    master, slave = os.openpty()
    try:
        with pytest.raises(UserError, match=f"no MicroPython raw REPL answers on {os.ttyname(slave)}"):
            deploy.SerialBoard(os.ttyname(slave), timeout=1)
    finally:
        os.close(master)
        os.close(slave)


def test_full_filesystem_is_a_clear_error(files, firmware, tmp_path):
    flash = boards.make_flash_image(tmp_path / "flash.img", 16 * boards.FLASH_BLOCK)   # 64 KB
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(100_000))
    with deploy.EmulatedBoard("qemu-m3", flash) as board:
        with pytest.raises(UserError, match=r"filesystem at /flash is full: \d+ B free"):
            deploy.deploy(board.port, [files / "model.mct", big])
        # Past the check (or when the estimate is wrong), the board's ENOSPC is reported the same way,
        # and the partial file is removed.
        with deploy.SerialBoard(board.port) as serial:
            free = serial.free_bytes("/flash")
            with pytest.raises(UserError, match="filesystem is full: /flash/big.bin did not fit"):
                serial.put(big.read_bytes(), "/flash/big.bin")
            assert serial.file_size("/flash/big.bin") is None
            assert serial.free_bytes("/flash") == free


def test_board_without_mcutrain_is_a_clear_error(files, tmp_path):
    stock = boards.FIRMWARE_DIR / "qemu-stock" / "firmware.elf"
    subprocess.run(["make", "firmware-qemu-stock"], cwd=boards.REPO, capture_output=True)
    if not stock.is_file():
        pytest.skip("make firmware-qemu-stock did not build ports/qemu's own firmware")
    with deploy.EmulatedBoard("qemu-m3", firmware=stock) as board:
        with pytest.raises(UserError, match=r"has no mcutrain module \(ImportError: no module named 'mcutrain'\)"):
            deploy.deploy(board.port, [files / "model.mct"])


def test_bad_requests(files, tmp_path):
    with pytest.raises(UserError, match="no file"):
        deploy.deploy("/dev/null", [tmp_path / "missing.mct"])
    with pytest.raises(UserError, match="--run x.py: the script must be one of the files deployed"):
        deploy.deploy("/dev/null", [files / "model.mct"], run="x.py")
    res = _cli("--emulate", "qemu-m3", files / "model.mct")
    assert res.returncode == 2 and "--emulate needs --flash IMAGE" in res.stderr
