"""`host_tools run`: run a MicroPython script on a board, with data files it opens by name."""
import os

from host_tools.boards import runners as boards
from host_tools.cli import write_now


HELP = "run a MicroPython script on a board"
DESCRIPTION = ("Run SCRIPT on the board with FILES in its working directory (by base name). "
               "On qemu-m3 the files are in a ROMFS partition in Flash, mounted at /rom: "
               "memoryview(open(name, 'rb')) reads them in place. Output streams as it comes; "
               "the exit status is the script's (1 if it raised, 124 on timeout).")


def add_arguments(p):
    p.add_argument("--board", choices=boards.BOARDS, default="unix", help="board to run on (default: unix)")
    p.add_argument("script", metavar="SCRIPT.py", help="MicroPython script to run")
    p.add_argument("files", metavar="FILES", nargs="*", help="files the script may open by base name")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="stop the run after this many seconds, 0 for no limit (default: 300)")
    p.add_argument("--icount", action="store_true",
                   help="qemu-m3: run with -icount shift=0, emulated time follows the instruction count "
                        "(deterministic timings)")
    p.add_argument("--heapsize", metavar="SIZE", help="the unix ports: heap size, e.g. 4M (default: the port's)")
    p.add_argument("--firmware", metavar="PATH", help="firmware to use instead of the one in build/firmware")
    p.add_argument("--flash", metavar="IMAGE",
                   help="qemu boards: the board's Flash, a host file mounted at /flash that outlives the run "
                        "(made blank, 1 MB, if it does not exist); the script can save there")


def command(args) -> int:
    if args.flash and not os.path.exists(args.flash):
        boards.make_flash_image(args.flash)
    result = boards.run_script(args.board, args.script, args.files, timeout=args.timeout or None,
                               icount=args.icount, heapsize=args.heapsize, stream=write_now,
                               firmware=args.firmware, flash_image=args.flash)
    return result.returncode
