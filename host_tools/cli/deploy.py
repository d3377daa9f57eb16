"""`host_tools deploy`: copy a model, a training script and its data onto a board, run it, fetch results."""
import sys
from pathlib import Path

from host_tools.boards import runners as boards
from host_tools.boards import deploy
from host_tools.cli import write_now
from host_tools.errors import UserError

EPILOG = """example:
  host_tools deploy --port /dev/ttyACM0 model.mct train.py data.bin --run train.py --get trained.mct
  host_tools deploy --port /dev/ttyACM0 --romfs model.mct train.py data.bin   # model -> /rom
  host_tools deploy --emulate qemu-m3 --flash flash.img --rom-image rom.img --romfs \\
      model.mct train.py data.bin --run train.py --get trained.mct
  host_tools export trained.mct --original model.mct -o trained_state.pt
"""


HELP = "copy a model, a script and data onto a board over its serial port, run it, fetch files"
DESCRIPTION = ("Copy FILES (a .mct model, a training script, its data) into a directory of the board's "
               "filesystem (--dest, default /flash) through the board's raw REPL, with mpremote or "
               "adafruit-ampy; then optionally run a script there (--run) with its output streamed, and "
               "copy files back (--get), e.g. the model the script saved. Checks first that the board "
               "answers, has the mcutrain module and room for the files. --emulate starts an emulated "
               "board on a serial pty with its persistent Flash (--flash), which outlives the run.")


def add_arguments(p):
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="the board's serial port (/dev/ttyACM0, /dev/ttyUSB0, a qemu pty)")
    where.add_argument("--emulate", choices=[b for b in boards.BOARDS if b in boards.QEMU_BOARDS],
                       help="start this emulated board on a serial pty for the deploy, and stop it after")
    p.add_argument("files", metavar="FILES", nargs="*", help="files to copy: MODEL.mct SCRIPT.py [DATA...]")
    p.add_argument("--dest", default="/flash", help="directory on the board (default: /flash)")
    p.add_argument("--tool", choices=deploy.TOOLS, default="mpremote",
                   help="what talks to the board: mpremote's transport (default) or adafruit-ampy")
    p.add_argument("--run", metavar="SCRIPT.py", help="run this script (one of FILES) in --dest after copying")
    p.add_argument("--get", metavar="NAME", action="append", default=[],
                   help="copy this file from --dest on the board (or an absolute path) to --out; repeatable")
    p.add_argument("--out", metavar="DIR", default=".", help="where --get puts files (default: .)")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="--run: give up when the board is silent this many seconds (default: 600)")
    p.add_argument("--romfs", action="store_true",
                   help="put the models (.mct) into the board's ROMFS partition at /rom with mpremote romfs "
                        "deploy (replacing what it held), so their weights stay in Flash; the rest goes to --dest")
    p.add_argument("--flash", metavar="IMAGE",
                   help="--emulate: the board's Flash, a host file (made blank, 1 MB, if it does not exist)")
    p.add_argument("--rom-image", metavar="IMAGE",
                   help="--emulate: the board's ROMFS partition, a host file that --romfs writes and the next "
                        "--emulate loads (default: none, a deployed ROMFS lasts for this run only)")


def _note(text: str) -> None:
    print(text, file=sys.stderr)


def command(args) -> int:
    if not args.files and not args.get:
        raise UserError("nothing to do: give FILES to copy or --get NAME to fetch")
    out = Path(args.out)
    if args.get and not out.is_dir():
        raise UserError(f"--out {out} is not a directory")
    kwargs = dict(directory=args.dest, tool=args.tool, run=args.run, get=args.get, out_dir=out,
                  timeout=args.timeout, stream=write_now, progress=_note, to_romfs=args.romfs)
    if args.port:
        if args.flash or args.rom_image:
            raise UserError("--flash and --rom-image go with --emulate (a real board has its own Flash)")
        return deploy.deploy(args.port, args.files, **kwargs)
    if not args.flash:
        raise UserError("--emulate needs --flash IMAGE: the host file that holds the board's Flash")
    flash = Path(args.flash)
    if not flash.exists():
        boards.make_flash_image(flash)
    with deploy.EmulatedBoard(args.emulate, flash, args.rom_image) as board:
        _note(f"{args.emulate} started on {board.port}, its Flash in {flash}")
        return deploy.deploy(board.port, args.files, **kwargs)
