"""Copy speed onto the emulated board over its serial line: `host_tools deploy --port PTY FILE`
against mpremote's own `mpremote connect PTY cp FILE :/flash/`, on the same board (qemu-m3 with its
UART on a host pty, as `deploy --emulate` starts it), alternating, each copy a fresh file of int8
image bytes. Both in this process, from opening the port to the file closed (mpremote cp's own
start-up and its hash comparison left out). Writes its section of
docs/benchmarks.md.

    make bench-deploy                      # or: .venv/bin/python bench/bench_deploy_copy.py --kb 100
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import benchlib  # noqa: E402
from host_tools.boards import deploy  # noqa: E402
from host_tools.boards import runners as boards  # noqa: E402

MARK = "<!-- bench_deploy_copy -->"


def copy_ours(port, f):
    """What `host_tools deploy --port PORT FILE` does: connect, check the room, copy."""
    t = time.monotonic()
    with deploy.SerialBoard(port) as board:
        board.put_files([f], "/flash")
    return time.monotonic() - t


def copy_mpremote(port, f):
    """What `mpremote connect PORT resume cp FILE :/flash/` does once it has decided to copy: its
    transport's fs_writefile with its default chunks (in-process, like ours: no start-up)."""
    from mpremote.transport_serial import SerialTransport
    t = time.monotonic()
    link = SerialTransport(port, baudrate=115200)
    link.enter_raw_repl(soft_reset=False)
    link.fs_writefile("/flash/" + f.name, f.read_bytes())
    link.exit_raw_repl()
    link.close()
    return time.monotonic() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kb", type=int, default=100, help="size of each copied file in KB (default 100)")
    ap.add_argument("--rounds", type=int, default=3, help="copies per tool (default 3)")
    ap.add_argument("--board", default="qemu-m3", choices=list(boards.QEMU_BOARDS))
    ap.add_argument("--docs", type=Path, default=benchlib.DOCS)
    args = ap.parse_args()
    size = args.kb * 1024
    times = {"host_tools deploy": [], "mpremote cp": []}
    with tempfile.TemporaryDirectory(prefix="mcutrain-bench-copy-") as tmp:
        tmp = Path(tmp)
        flash = boards.make_flash_image(tmp / "flash.img", 4 * size + (64 << 10) + (-(4 * size) % 4096))
        with deploy.EmulatedBoard(args.board, flash) as board:
            for r in range(args.rounds):
                for tool, copy in (("host_tools deploy", copy_ours), ("mpremote cp", copy_mpremote)):
                    f = tmp / ("ours.bin" if copy is copy_ours else "theirs.bin")
                    f.write_bytes(os.urandom(size))      # like int8 images: every byte value
                    times[tool].append(copy(board.port, f))
                    print(f"round {r + 1}: {tool}: {times[tool][-1]:.1f} s", flush=True)
    load = os.getloadavg()[0]
    rows = [f"| {tool} | {statistics.median(t):.1f} | {args.kb / statistics.median(t):.1f} |"
            for tool, t in times.items()]
    ours, theirs = (statistics.median(t) for t in times.values())
    body = f"""## Copying files onto the emulated board over its serial line

`{' '.join(['make bench-deploy'] if (args.kb, args.rounds) == (100, 3) else ['bench/bench_deploy_copy.py', '--kb', str(args.kb), '--rounds', str(args.rounds)])}`, {date.today()}, {benchlib.machine_line()}, load average {load:.1f}.
{args.board} with its UART on a host pty (as `host_tools deploy --emulate` starts it), Flash at /flash;
a fresh {args.kb} KB file of random bytes (int8 images use every byte value) per copy, the two
two alternating, {args.rounds} copies each, median time from opening the serial port to the file
closed on the board, in one process (Python's start-up left out of both; ours includes its
free-space check). The emulated UART takes one byte at a time, so the bytes on the
wire set the speed: mpremote sends 256-byte chunks as Python bytes literals (about 3 bytes per
binary byte), `host_tools deploy` 2 KB chunks in base64 (4 bytes per 3; host_tools/boards/serial_copy.py).

| command | s | KB/s |
|---|---|---|
{chr(10).join(rows)}

host_tools deploy / mpremote cp time: {ours / theirs:.2f}.
"""
    benchlib.write_section(MARK, body, args.docs)
    print(body)


if __name__ == "__main__":
    main()
