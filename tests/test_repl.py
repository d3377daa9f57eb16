"""`host_tools repl`: the board's interactive REPL with files on it, typed at through a pty as a
person does. A model is loaded from the files, trained in paste mode (Ctrl-E ... Ctrl-D) and its
losses must be the numpy reference's; Ctrl-C stops a running loop; Ctrl-D soft-resets an emulated
board (and leaves the unix port); Ctrl-] leaves mpremote's REPL."""
import sys
import time

import numpy as np
import pytest

from host_tools.boards import runners as boards
from host_tools.model import mct_format
from host_tools.reference import oracle as reference
from tests import test_board_api as api
from tests.support.repl_driver import Terminal

files = api.files
PROMPT = r">>> $"
TRAIN = """\
x = open('inputs.bin', 'rb').read()
y = open('labels.bin', 'rb').read()
n = 192
for i in range(4):
    print('loss %.6f' % m.train_step(x[i * n:(i + 1) * n], y[i], 0.05))
"""


def reference_losses(files):
    ref = reference.Reference(mct_format.load((files / "model.mct").read_bytes()))
    x = np.frombuffer((files / "inputs.bin").read_bytes(), dtype=np.int8).reshape(-1, 192)
    y = (files / "labels.bin").read_bytes()
    return [ref.train_step(x[i], y[i], 0.05) for i in range(4)]


@pytest.mark.parametrize("board", ["qemu-m3", "qemu-m0", "unix"])
def test_repl_session(board, files, tmp_path):
    boards.build_firmware(board)
    term = Terminal([sys.executable, "-m", "host_tools", "repl", "--board", board,
                     *(files / n for n in ("model.mct", "inputs.bin", "labels.bin"))], cwd=boards.REPO)
    try:
        if board != "unix":
            term.expect(r"Use Ctrl-\] or Ctrl-x to exit this shell")
            term.type("\r")
        term.expect(PROMPT)
        term.type("import mcutrain\r")
        term.expect(PROMPT)
        term.type("m = mcutrain.Model(open('model.mct', 'rb')); m.n_classes\r")
        assert term.expect(r"\n6\n>>> $")

        term.type("\x05")                               # Ctrl-E: paste mode
        term.expect(r"paste mode; Ctrl-C to cancel, Ctrl-D to finish\n=== $")
        term.type(TRAIN.replace("\n", "\r"))
        term.type("\x04")                               # Ctrl-D: run what was pasted
        seen = term.expect(r"(loss [\d.]+\n){4}>>> $")
        losses = [float(line.split()[1]) for line in seen.splitlines() if line.startswith("loss ")]
        assert np.allclose(losses, reference_losses(files), rtol=1e-5, atol=1e-6), losses

        term.type("k = 0\r")
        term.expect(PROMPT)
        term.type("while True: k += 1\r")            # runs until interrupted
        term.expect(r"\.\.\. $")                        # (the unix port drops keys typed ahead of a prompt)
        term.type("\r")
        time.sleep(1)                                   # it runs: a person waits a little, then Ctrl-C
        term.type("\x03")                               # Ctrl-C
        term.expect(r"KeyboardInterrupt: ?\n>>> $", timeout=60)
        term.type("k > 0, m.mem_info()['steps']\r")
        term.expect(r"\(True, 4\)\n>>> $")

        term.type("\x04")                               # Ctrl-D at the prompt
        if board == "unix":
            assert term.wait() == 0                     # leaves the unix port's REPL
        else:
            term.expect(r"soft reboot")                 # resets the board, like a real one
            term.expect(PROMPT)
            term.type("'mcutrain' in globals()\r")
            term.expect(r"False\n>>> $")
            term.type("\x1d")                           # Ctrl-]: leave mpremote
            assert term.wait() == 0
    finally:
        term.close()
