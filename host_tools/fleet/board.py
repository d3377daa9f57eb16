"""A board as a fleet client: one emulated board (the unix port, or qemu-m3/m7) kept running
across rounds, with its local data and its model on it, driven line by line through
fleet_agent.py. The board saves its model after each round (mcutrain_util.save_atomic, on its
/flash or in its directory), so a board that was reset rejoins from its last saved model.
"""
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np

from host_tools.boards import romfs
from host_tools.boards import runners as boards

HERE = Path(__file__).resolve().parent
AGENT = HERE / "fleet_agent.py"
UTIL = Path(__file__).resolve().parents[2] / "natmod" / "mcutrain_util.py"


PID_FILE = "board.pid"     # the running board's process: stop_leftovers() ends it


class BoardFailed(RuntimeError):
    """The board stopped answering (reset, crash, timeout) or refused a command."""


class BoardSession:
    """One board running fleet_agent.py; workdir keeps what outlives the process (its saved model)."""

    def __init__(self, board, model_path, train_x, train_y, workdir, timeout=300):
        self.board, self.workdir, self.timeout = board, Path(workdir), timeout
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.files = {"fashion.mct": Path(model_path).read_bytes(), "fleet_agent.py": AGENT.read_bytes(),
                      "mcutrain_util.py": UTIL.read_bytes(),
                      "train.bin": np.ascontiguousarray(train_x, np.int8).tobytes(),
                      "train_labels.bin": np.ascontiguousarray(train_y, np.uint8).tobytes()}
        self.proc = self.serial = None

    # --- process --------------------------------------------------------------------------
    def start(self):
        deadline = time.monotonic() + self.timeout
        if self.board == "unix":
            run = self.workdir / "run"
            run.mkdir(exist_ok=True)
            for name, data in self.files.items():
                (run / name).write_bytes(data)
            cmd = [str(boards.find_firmware("unix")), "fleet_agent.py", "../model.mct", "fashion.mct"]
            self.proc = subprocess.Popen(cmd, cwd=run, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT)
            self.serial = boards._Serial(self.proc, deadline)
        else:
            elf = boards.find_firmware(self.board)
            mem = boards.qemu_memory(self.board, elf)
            image = self.workdir / "romfs.img"
            image.write_bytes(romfs.build_image(self.files))
            flash = self.workdir / "flash.img"
            if not flash.exists():
                boards.make_flash_image(flash)
            cmd = boards.qemu_command(elf, image, mem["romfs_start"], board=self.board, flash_image=flash)
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL)
            self.serial = boards._Serial(self.proc, deadline)
            self.serial.write(b"\r\x03\x03\x01")
            self.serial.read_until(b"raw REPL; CTRL-B to exit\r\n>")
            self.serial.write(b"__import__('os').chdir('/rom')\nexecfile('fleet_agent.py')\x04")
            self.serial.read_until(b"OK")
        (self.workdir / PID_FILE).write_text(str(self.proc.pid))
        ready = self._answer()
        return int(ready.split()[1])

    def close(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            for f in (self.proc.stdin, self.proc.stdout):
                f.close()
            (self.workdir / PID_FILE).unlink(missing_ok=True)
        self.proc = self.serial = None

    def reset(self):
        """Power-cycle the board (kill its process): what it had not saved is gone."""
        self.close()

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # --- commands ---------------------------------------------------------------------------
    def _answer(self) -> str:
        try:
            self.serial.read_until(b"@fleet ")
            line = self.serial.read_until(b"\n").decode().strip()
        except (TimeoutError, boards._BoardError) as e:
            self.close()
            raise BoardFailed(f"{self.board} board stopped answering: {e or 'timed out'}") from None
        status, _, text = line.partition(" ")
        if status != "ok":
            raise BoardFailed(f"{self.board} board: {text}")
        return text

    def command(self, line: str) -> str:
        if not self.running:
            raise BoardFailed(f"{self.board} board is not running")
        self.serial.deadline = time.monotonic() + self.timeout
        try:
            self.serial.write(line.encode() + b"\n")
        except OSError as e:
            self.close()
            raise BoardFailed(f"{self.board} board is gone: {e}") from None
        return self._answer()

    def round(self, global_blob: bytes, order, lr) -> bytes:
        """Load the global tensors, train on local images `order`, save, return the update blob."""
        if not self.running:
            self.start()
        self.command("L " + global_blob.hex())
        self.command(f"T {lr!r} " + ",".join(str(int(i)) for i in order))
        self.command("S")
        return bytes.fromhex(self.command("B"))


def stop_leftovers(root):
    """End the board processes that sessions under root left running: an engine may end the
    processes that drove them (Ray's actors) without their exit handlers."""
    for pid_file in Path(root).glob(f"*/{PID_FILE}"):
        pid = int(pid_file.read_text())
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            cmdline = b""
        if b"qemu-system-arm" in cmdline or b"micropython" in cmdline:
            os.kill(pid, signal.SIGKILL)
        pid_file.unlink()


def board_available(board: str) -> bool:
    try:
        boards.find_firmware(board)
    except Exception:
        return False
    return board == "unix" or shutil.which("qemu-system-arm") is not None
