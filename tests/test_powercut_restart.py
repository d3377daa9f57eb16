"""Power cuts across restarts of the emulated board: qemu-m3 saves a model again and again onto its
persistent Flash (/flash, LittleFS on a host file) with mcutrain_util.save_atomic(); the power goes;
a new qemu starts on the same flash image, and the board must load the model: whole (mcutrain.Model
checks its CRC32), and either the last one whose save completed or the one being saved when the
power went. 20 cuts, each way:

- SIGKILL: the host kills the qemu process at a random moment (seeded delays; where they fall in
  the board's work depends on the host's speed, the property checked holds for every moment).
- At a chosen Flash write: the board's Flash driver stops qemu instead of doing the n-th write
  (`qemu_flash.cut(n)`, n drawn from a seeded generator), so the cut points are the same on every
  run: deterministic.

The board announces each save with the CRC32 of the bytes it is about to write ("saving C") and
confirms it when save_atomic() has returned ("saved C"). qemu's UART goes to a pipe, so everything
the board printed before the cut is read afterwards.
"""
import random
import subprocess
import time

import pytest

from host_tools.boards import runners as boards
from host_tools.boards import romfs
from tests import test_board_api as api

files = api.files
BOARD = "qemu-m3"
CUTS = 20
UTIL = boards.REPO / "natmod" / "mcutrain_util.py"
FLASH_SIZE = 64 * boards.FLASH_BLOCK


def _boot(elf, image, romfs_start, flash, cut):
    proc = subprocess.Popen(boards.qemu_command(elf, image, romfs_start, board=BOARD, flash_image=flash),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    serial = boards._Serial(proc, time.monotonic() + 30)
    serial.write(b"\r\x03\x03\x01")
    serial.read_until(b"raw REPL; CTRL-B to exit\r\n>")
    serial.write(f"_cut = {cut}\nexecfile('/rom/powercut_restart.py')\x04".encode())
    assert serial.read_until(b"OK") == b""
    return proc, serial


def _line(serial, seen):
    line = serial.read_until(b"\r\n").decode()
    seen.append(line)
    return line


def _cut_many_times(files, tmp_path, util_source, mode):
    """CUTS power cuts (mode "kill" or "writes"); returns (what was wrong after each cut, how many
    cuts fell inside a save, seconds)."""
    boards.build_firmware(BOARD)
    elf = boards.firmware_path(BOARD)
    mem = boards.qemu_memory(BOARD, elf)
    image = tmp_path / "romfs.img"
    image.write_bytes(romfs.build_image({
        "powercut_restart.py": (api.HERE / "powercut_restart.py").read_bytes(),
        "mcutrain_util.py": util_source.encode(),
        "model.mct": (files / "model.mct").read_bytes(),
        "inputs.bin": (files / "inputs.bin").read_bytes()}))
    flash = boards.make_flash_image(tmp_path / "flash.img", FLASH_SIZE)
    rng = random.Random(2026)
    start = time.monotonic()
    confirmed = in_flight = None      # CRCs of the model on the Flash and of the save under way
    cut_in_a_save, wrong = 0, []
    for run in range(CUTS + 1):
        # "writes": a save of the test's model takes about 20 Flash writes; cut within the first 3 saves
        cut = rng.randint(1, 60) if mode == "writes" and run < CUTS else 0
        proc, serial = _boot(elf, image, mem["romfs_start"], flash, cut)
        seen = []
        try:
            first = _line(serial, seen)
            if first.startswith("fresh"):
                # Only before any save completed: the old model is then the original one in /rom.
                if confirmed is not None:
                    wrong.append(f"run {run}, cut {cut}: the model is gone: {first}")
                confirmed = None
            elif not first.startswith("loaded ") or int(first.split()[1]) not in (confirmed, in_flight):
                wrong.append(f"run {run}, cut {cut}: {first}, not {confirmed} or {in_flight}")
            else:
                confirmed = int(first.split()[1])   # what the Flash holds now
            in_flight = confirmed
            if run == CUTS:
                break
            if mode == "kill":
                # Let it save a few times, then cut the power at a random moment.
                saves = rng.randint(1, 3)
                while saves:
                    saves -= _line(serial, seen).startswith("saved ")
                time.sleep(rng.uniform(0.0, 0.08))
            else:
                proc.wait(timeout=30)       # the board's Flash driver stops qemu at the cut
        finally:
            proc.kill()
            proc.wait()
            # Everything the board printed before the cut is still in the pipe.
            rest = (serial.pending + proc.stdout.read()).decode()
            proc.stdin.close()
            proc.stdout.close()
        saving = False
        for line in seen + rest.replace("\r", "").split("\n")[:-1]:   # the last line may be cut short
            if line.startswith(("saving ", "saved ")):
                word, value = line.split()[:2]
                saving = word == "saving"
                if saving:
                    in_flight = int(value)
                else:
                    assert int(value) == in_flight
                    confirmed = in_flight
        cut_in_a_save += saving
    return wrong, cut_in_a_save, time.monotonic() - start


@pytest.mark.parametrize("mode", ["kill", "writes"])
def test_power_cut_across_restarts(files, tmp_path, mode):
    wrong, cut_in_a_save, seconds = _cut_many_times(files, tmp_path, UTIL.read_text(), mode)
    assert wrong == []
    # The cuts must not all have missed the saves.
    assert cut_in_a_save >= CUTS // 4, cut_in_a_save
    assert seconds < 60, seconds


@pytest.mark.parametrize("mode", ["kill", "writes"])
def test_power_cut_test_catches_an_unsafe_save(files, tmp_path, mode):
    """The same cuts with a save that deletes the old model and then writes the new one: the test must
    see models lost. (A plain overwrite in place is safe on LittleFS, which commits a file's new
    contents only when it is closed; tests/test_persistence.py shows it failing on FAT.)"""
    naive = UTIL.read_text().replace("    with open(tmp, 'wb') as f:\n",
                                     "    os.remove(path) if _exists(path) else None\n"
                                     "    with open(path, 'wb') as f:\n        return model.save(f)\n"
                                     "    with open(tmp, 'wb') as f:\n")
    assert naive != UTIL.read_text()
    wrong, cut_in_a_save, _ = _cut_many_times(files, tmp_path, naive, mode)
    assert cut_in_a_save >= CUTS // 4 and wrong, (cut_in_a_save, wrong)
