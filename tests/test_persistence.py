"""Saving a trained model on the board survives power cuts (natmod/mcutrain_util.py).

- On the boards, LittleFS (and FAT on unix) on a RAM block device: the power goes at every block
  write of a save in turn (tests/board/persist_cut.py); after each cut the old or the new model
  loads, whole. A plain overwrite fails this test on FAT (the test can tell).
- On the unix port, the process is killed (SIGKILL) at random moments of a train-and-save loop on
  the host's filesystem, many times; the model always loads afterwards.
"""
import os
import random
import shutil
import signal
import subprocess
import time

import pytest

from host_tools.boards import runners as boards
from tests import test_board_api as api

UTIL = boards.REPO / "natmod" / "mcutrain_util.py"
files = api.files


def _sweep(board, util, files):
    res = boards.run_script(board, api.HERE / "persist_cut.py", [util, files / "model.mct", files / "inputs.bin"],
                            timeout=300)
    assert res.returncode == 0, res.output
    # (lines "OSError: [Errno 5] EIO" come from files that the GC closes on a dead device)
    return {line.split()[0]: line.split() for line in res.output.splitlines() if line.startswith("Vfs")}


@pytest.mark.parametrize("board", ["unix", "qemu-m7", "qemu-m0"])
def test_power_cut_at_every_block_write(board, files):
    boards.build_firmware(board)
    results = _sweep(board, UTIL, files)
    assert "VfsLfs2" in results and (board != "unix" or "VfsFat" in results), results
    for fs, words in results.items():
        # VfsLfs2 cuts N old True new True bad 0
        assert int(words[2]) >= 10 and words[4] == "True" and words[6] == "True" and words[8] == "0", words


def test_power_cut_test_catches_a_plain_overwrite(files, tmp_path):
    naive = tmp_path / "mcutrain_util.py"
    naive.write_text(UTIL.read_text().replace("    with open(tmp, 'wb') as f:\n",
                                              "    with open(path, 'wb') as f:\n        return model.save(f)\n"
                                              "    with open(tmp, 'wb') as f:\n"))
    assert naive.read_text() != UTIL.read_text()
    results = _sweep("unix", naive, files)
    assert int(results["VfsFat"][8]) > 0, results


def test_sigkill_during_saves(files, tmp_path):
    """The unix port killed at random moments of save_atomic() loops: the model always loads."""
    binary = boards.find_firmware("unix")
    for name in ("model.mct", "inputs.bin"):
        shutil.copyfile(files / name, tmp_path / name)
    shutil.copyfile(UTIL, tmp_path / "mcutrain_util.py")
    shutil.copyfile(api.HERE / "persist_loop.py", tmp_path / "persist_loop.py")
    check = tmp_path / "check.py"
    check.write_text("import mcutrain_util\nm = mcutrain_util.load('model.mct')\nprint(m.mem_info()['steps'] == 0)\n")
    rng = random.Random(7)
    for _ in range(25):
        proc = subprocess.Popen([str(binary), "persist_loop.py"], cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.0, 0.05))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        out = subprocess.run([str(binary), "check.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and out.stdout == "True\n", out.stdout + out.stderr


def test_a_cut_first_save_is_not_promoted(files, tmp_path):
    """The very first save cut while writing leaves a short '.tmp' and no model. The next save
    must not rename that fragment into place: cut again, it would leave a model that never loads."""
    src = """
import os, mcutrain_util
good = open('model.mct', 'rb').read()
with open('m.mct.tmp', 'wb') as f:
    f.write(good[:len(good) // 2])          # what a cut first save leaves
class Cut:
    def save(self, f):
        raise OSError(5)                    # the power goes during the next save's writing
try:
    mcutrain_util.save_atomic(Cut(), 'm.mct')
except OSError:
    pass
print('m.mct' in os.listdir())
"""
    shutil.copyfile(files / "model.mct", tmp_path / "model.mct")
    shutil.copyfile(UTIL, tmp_path / "mcutrain_util.py")
    (tmp_path / "main.py").write_text(src)
    res = subprocess.run([str(boards.find_firmware("unix")), "main.py"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert res.stdout.split("\n")[0] == "False", res.stdout + res.stderr      # no fragment named m.mct
