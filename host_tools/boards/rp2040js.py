"""Run MicroPython scripts on the emulated Raspberry Pi Pico (board rp2-pico): the real rp2 firmware
(`make firmware BOARD=rp2-pico`, build/firmware/rp2-pico/firmware.uf2) in the rp2040js emulator.

    from host_tools.boards import rp2040js
    rc, out = rp2040js.run_script("bench.py", ["model.mct", "data.bin"])

boards/rp2-pico/emulator/run.mjs boots the firmware in rp2040js (node) and bridges the board's USB
CDC serial port to a pty; mpremote's serial transport opens that pty and drives the raw REPL, as it
would a real Pico's /dev/ttyACM0. The script and its files go into a ROMFS image that the emulator
writes into the board's ROMFS partition before boot (boards/rp2-pico/mpconfigboard.h); it is mounted
at /rom, the working directory, so `memoryview(open("data.bin", "rb"))` points into Flash.

Emulated time follows rp2040js's cycle counter (125 MHz: one cycle is 8 ns), so on this board
`time.ticks_us() * 125` counts cycles.
"""
import os
import re
import shutil
import subprocess
import tempfile
import tty
from pathlib import Path
from typing import Dict, Optional

from host_tools.boards import romfs
from host_tools.errors import UserError

BOARD = "rp2-pico"
REPO = Path(__file__).resolve().parents[2]
BOARD_DIR = REPO / "boards" / BOARD
RUNNER = BOARD_DIR / "emulator" / "run.mjs"
NODE_MODULES = REPO / "build" / "rp2040js" / "node_modules"   # tools/install_rp2040js.sh puts rp2040js there
FIRMWARE = REPO / "build" / "firmware" / BOARD / "firmware.uf2"
CYCLES_PER_US = 125          # rp2040js runs the core at 125 MHz of emulated time
BOOT_TIMEOUT = 120           # seconds of host time until the REPL answers (rp2040js boots slowly)
SRAM_BYTES = 264 * 1024      # RP2040: 256 KB striped main SRAM + two 4 KB banks
FLASH_BYTES = 2 * 1024 * 1024


def flash_layout() -> Dict[str, int]:
    """The board's Flash partitions, from boards/rp2-pico/mpconfigboard.h (the one place they are set):
    romfs_offset, romfs_size, storage_offset, storage_size, code_size (offsets from the Flash start)."""
    text = (BOARD_DIR / "mpconfigboard.h").read_text()

    def value(name: str) -> int:
        m = re.search(rf"#define\s+{name}\s+\(?\s*(\d+)\s*(?:\*\s*(\d+))?\s*\)?", text)
        if not m:
            raise UserError(f"{BOARD_DIR / 'mpconfigboard.h'} does not define {name}")
        return int(m.group(1)) * int(m.group(2) or 1)

    storage, rom = value("MICROPY_HW_FLASH_STORAGE_BYTES"), value("MICROPY_HW_ROMFS_BYTES")
    # ports/rp2/rp2_flash.c: the filesystem at the end of Flash, ROMFS just below it
    return dict(storage_offset=FLASH_BYTES - storage, storage_size=storage,
                romfs_offset=FLASH_BYTES - storage - rom, romfs_size=rom, code_size=FLASH_BYTES - storage - rom)


def emulator_missing() -> Optional[str]:
    """Why rp2040js cannot run here (None when it can)."""
    if not shutil.which("node"):
        return "node is not installed (make deps)"
    if not (NODE_MODULES / "rp2040js" / "package.json").is_file():
        return "rp2040js is not installed: run make rp2040js"
    return None


def missing(firmware: Optional[Path] = None) -> Optional[str]:
    """Why the emulated Pico cannot run here (None when it can)."""
    if emulator_missing():
        return emulator_missing()
    firmware = Path(firmware) if firmware else FIRMWARE
    if not firmware.is_file():
        return f"no firmware at {firmware}: run make firmware BOARD={BOARD}"
    return None


def emulator_command(firmware: Path, romfs_image: Optional[Path]) -> list:
    cmd = [shutil.which("node"), str(RUNNER), str(firmware)]
    if romfs_image:
        cmd += ["--flash", f"{romfs_image}@0x{flash_layout()['romfs_offset']:x}"]
    return cmd


class Emulator:
    """The emulated Pico, running, its USB serial port on a pty: `with Emulator(fw) as e: e.device`."""

    def __init__(self, firmware: Path, romfs_image: Optional[Path] = None):
        reason = missing(firmware)
        if reason:
            raise UserError(f"cannot run the {BOARD} board: {reason}")
        self.firmware, self.romfs_image = Path(firmware), romfs_image
        self.proc: Optional[subprocess.Popen] = None

    def __enter__(self) -> "Emulator":
        master, slave = os.openpty()
        tty.setraw(slave)    # no echo, no line editing: the bytes pass as they are
        self.device = os.ttyname(slave)
        env = dict(os.environ, RP2040JS_DIR=str(NODE_MODULES / "rp2040js"))
        self.proc = subprocess.Popen(emulator_command(self.firmware, self.romfs_image), stdin=master,
                                     stdout=master, stderr=subprocess.PIPE, env=env)
        os.close(master)
        self._slave = slave   # held open so that the pty stays up until the transport opens it
        return self

    def errors(self) -> str:
        """What the emulator printed on stderr (after it stopped)."""
        if self.proc.poll() is None:
            return ""
        return self.proc.stderr.read().decode("utf-8", "replace")

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stderr.close()
        os.close(self._slave)


def connect(emulator: Emulator, timeout: float = BOOT_TIMEOUT):
    """mpremote's serial transport on the emulated board, once its REPL answers."""
    from mpremote.transport_serial import SerialTransport
    transport = SerialTransport(emulator.device, baudrate=115200)
    # A newline waits in the emulator until the board's USB is up; the REPL answers it with a prompt.
    transport.serial.write(b"\r\n")
    if not transport.read_until(1, b">>> ", timeout=None, timeout_overall=timeout).endswith(b">>> "):
        transport.close()
        raise UserError(f"the {BOARD} board did not start its REPL within {timeout} s"
                        + (f": {emulator.errors().strip()}" if emulator.errors() else ""))
    return transport


def run_script(script: Path, named: Dict[str, Path], timeout: Optional[float], out,
               firmware: Optional[Path] = None) -> int:
    """Run `script` (a name in `named`) from /rom with the files of `named`; returns the exit status.

    out: a host_tools.boards.runners._Output, which gets the output as it arrives."""
    from mpremote.transport import TransportError
    from host_tools.boards.runners import TIMEOUT_RC, exit_status
    layout = flash_layout()
    image = romfs.build_image({name: path.read_bytes() for name, path in named.items()})
    if len(image) > layout["romfs_size"]:
        raise UserError(f"the files take {len(image)} B of ROMFS, more than the {BOARD} board's "
                        f"{layout['romfs_size']} B partition")
    with tempfile.TemporaryDirectory(prefix="mcutrain-rp2-") as tmp:
        image_path = Path(tmp) / "romfs.img"
        image_path.write_bytes(image)
        with Emulator(Path(firmware) if firmware else FIRMWARE, image_path) as emu:
            transport = connect(emu)
            try:
                transport.enter_raw_repl(soft_reset=False)
                transport.exec("import os\nos.chdir('/rom')")   # the firmware mounts its ROMFS there at boot
                transport.exec_raw_no_follow(
                    "_host_exit = None\n"
                    "try:\n"
                    f"    execfile({script.name!r})\n"
                    "except SystemExit as e:\n"
                    "    _host_exit = e.args[0] if e.args else None\n")
                # mpremote passes the end marker on too (its own console drops it the same way)
                _, error = transport.follow(timeout, lambda data: out.add(data.replace(b"\x04", b"")))
                if error:
                    out.add(re.sub(rb'  File "<stdin>", line \d+, in <module>\r?\n', b"", error, count=1))
                    return 1
                return exit_status(transport.eval("repr(_host_exit)", parse=False).decode())
            except TransportError as e:
                if "timeout" in str(e):
                    out.emit(f"\nhost_tools: timed out after {timeout} s\n")
                    return TIMEOUT_RC
                out.emit(f"\nhost_tools: {e}\n")
                return 1
            finally:
                transport.close()


def pico_memory(elf: Optional[Path] = None) -> Dict[str, int]:
    """The Pico firmware's SRAM budget in bytes, from its ELF file (ports/rp2/memmap_mp_rp2040.ld):
    sram_size (264 KB), data_bss (.data + .bss, in the 256 KB main SRAM), heap (the GC heap: the rest
    of the main SRAM), stack (core 0's C stack: the two 4 KB banks)."""
    from host_tools.boards.runners import read_elf
    path = Path(elf) if elf else FIRMWARE.with_suffix(".elf")
    if not path.is_file():
        raise UserError(f"no firmware at {path}: run make firmware BOARD={BOARD}")
    sym = {name: value for name, (value, _) in read_elf(path).symbols.items()}
    return dict(sram_size=SRAM_BYTES, data_bss=sym["__bss_end__"] - 0x20000000,
                heap=sym["__GcHeapEnd"] - sym["__GcHeapStart"], stack=sym["__StackTop"] - sym["__StackBottom"])
