#!/usr/bin/env python3
"""Print the qemu-m3 firmware's memory budget (SRAM use against its 256 KB, Flash, ROMFS).

Run by `make firmware BOARD=qemu-m3` after linking; needs only the standard library. The
linker script already refuses firmware that overflows its SRAM; this makes the numbers visible.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from host_tools.boards.runners import memory_summary, qemu_m3_memory  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: memory_report.py FIRMWARE.elf")
    print(memory_summary(qemu_m3_memory(sys.argv[1])))
