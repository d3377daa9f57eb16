"""`host_tools repl`: the board's interactive MicroPython REPL with files on it, where a training
script is written line by line.

On the emulated MCUs the files go into the board's ROMFS partition (models are used in place, from
Flash), the board starts with its UART on a host pty, and mpremote opens its REPL there exactly as
it opens a real board's: Ctrl-E paste mode, Ctrl-C interrupts, Ctrl-D soft-resets the board, Ctrl-]
or Ctrl-X leaves. On the unix port the files are copied into a temporary working directory and the
port's own REPL runs in the terminal (Ctrl-D at the prompt leaves).
"""
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from host_tools.boards import romfs
from host_tools.boards import runners as boards
from host_tools.errors import UserError

HELP = "open a board's interactive MicroPython REPL with files on it"
DESCRIPTION = ("Start BOARD with FILES on it and open its interactive REPL in this terminal. "
               "Emulated MCUs: the files are in ROMFS at /rom (the working directory), the REPL "
               "is mpremote's (Ctrl-] or Ctrl-X to leave; Ctrl-D soft-resets the board). unix: the "
               "files are in a temporary working directory (Ctrl-D to leave).")
EPILOG = """example:
  host_tools repl --board qemu-m3 build/demo/fashion.mct build/demo/train.bin build/demo/train_labels.bin
  >>> import mcutrain
  >>> m = mcutrain.Model(open('fashion.mct', 'rb'))     # in /rom: the weights stay in Flash
  make repl BOARD=qemu-m3 FILES="build/demo/fashion.mct"
"""


def add_arguments(p):
    p.add_argument("--board", choices=boards.BOARDS, default="unix", help="board (default: unix)")
    p.add_argument("files", metavar="FILES", nargs="*", help="files to put on the board, opened by base name")
    p.add_argument("--flash", metavar="IMAGE",
                   help="emulated MCUs: the board's Flash at /flash, a host file that outlives the session "
                        "(made blank, 1 MB, if it does not exist)")
    p.add_argument("--firmware", metavar="PATH", help="firmware to use instead of the one in build/firmware")


def command(args) -> int:
    named = boards._name_files([Path(f) for f in args.files])
    if args.board == "unix":
        if args.flash:
            raise UserError("--flash applies to the emulated MCUs; on unix the working directory is writable")
        return _unix_repl(boards.find_firmware("unix", args.firmware), named)
    return _qemu_repl(args.board, named, args.flash, args.firmware)


def _unix_repl(binary: Path, named: dict) -> int:
    with tempfile.TemporaryDirectory(prefix="mcutrain-repl-") as tmp:
        for name, path in named.items():
            shutil.copyfile(path, Path(tmp) / name)
        print(f"unix port, files in {tmp} (the working directory); Ctrl-D leaves", file=sys.stderr)
        # Ctrl-C is the port's (KeyboardInterrupt at its prompt), not a reason for this process to end
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return subprocess.call([str(binary)], cwd=tmp,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        finally:
            signal.signal(signal.SIGINT, previous)


def _qemu_repl(board: str, named: dict, flash, firmware) -> int:
    from host_tools.boards.deploy import EmulatedBoard
    elf = boards.find_firmware(board, firmware)
    size = boards.qemu_memory(board, elf)["romfs_size"]
    image = romfs.build_image({name: path.read_bytes() for name, path in named.items()})
    if len(image) > size:
        raise UserError(f"the files take {len(image)} B of ROMFS, more than the {board} board's {size} B partition")
    if flash and not Path(flash).exists():
        boards.make_flash_image(flash)
    with tempfile.TemporaryDirectory(prefix="mcutrain-repl-") as tmp:
        rom = Path(tmp) / "rom.img"
        rom.write_bytes(image if named else b"\xff" * 16)
        with EmulatedBoard(board, flash, rom, firmware=elf) as emulated:
            where = f"files in /rom (the working directory){', Flash at /flash' if flash else ''}"
            print(f"{board} on {emulated.port}, {where}; Ctrl-] or Ctrl-X leaves", file=sys.stderr)
            # `resume`: no soft reset, which would forget the working directory set here
            setup = "import os\ntry:\n os.chdir('/rom')\nexcept OSError:\n pass"
            return subprocess.call([sys.executable, "-m", "mpremote", "connect", emulated.port, "resume",
                                    "exec", setup, "repl"])
