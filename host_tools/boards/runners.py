"""Run MicroPython scripts on the project's boards: the unix port and the emulated qemu-m3 MCU.

    from host_tools.boards import runners as boards
    rc, out = boards.run_script("qemu-m3", "bench.py", ["model.mct", "data.bin"], icount=True)

A script finds its files by their plain name in the current directory on both boards: on unix
they are copied into a temporary working directory; on qemu-m3 they are put into a ROMFS image
that qemu loads into the board's Flash partition, mounted at /rom (the working directory), so
`memoryview(open("data.bin", "rb"))` points into Flash and costs no SRAM.

The qemu-m3 board is driven through MicroPython's raw REPL over its UART (qemu's -serial on
pipes, spoken by mpremote's transport): the script itself also goes into the ROMFS and runs with execfile(), so its source is
read from Flash rather than held in the GC heap while it runs.
"""
import codecs
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, NamedTuple, Optional, Sequence, Union

from host_tools.boards import romfs
from host_tools.errors import UserError

BOARDS = ("unix", "qemu-m3", "qemu-m7", "qemu-m0")
REPO = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = REPO / "build" / "firmware"
QEMU_MACHINE = "mps2-an385"
# The emulated MCUs: qemu machine and the options that give it the board's memory. All of them
# have the same memory scheme (boards/<board>/*.ld): 256 KB SRAM, a ROMFS partition in Flash.
QEMU_BOARDS = {
    "qemu-m3": (QEMU_MACHINE, ()),            # Cortex-M3 (ARM MPS2 AN385)
    "qemu-m7": ("mps2-an500", ()),            # Cortex-M7 with single-precision FPU (AN500)
    # Cortex-M0 (nRF51, BBC micro:bit): qemu's nRF51 has 16 KB SRAM and 256 KB Flash unless told
    "qemu-m0": ("microbit", ("-global", "nrf51-soc.sram-size=262144",
                             "-global", "nrf51-soc.flash-size=4194304")),
}
TIMEOUT_RC = 124  # like timeout(1)

PathLike = Union[str, "os.PathLike[str]"]
Stream = Union[bool, Callable[[str], object]]


class RunResult(NamedTuple):
    returncode: int  # 0 ok, 1 the script raised, 124 timed out (unix: the process's exit status)
    output: str      # stdout and stderr (tracebacks) together, "\n" line ends


# ---------------------------------------------------------------------------------------------
# Firmware

def firmware_path(board: str) -> Path:
    """Where `make firmware BOARD=<board>` puts the board's firmware."""
    _check_board(board)
    return FIRMWARE_DIR / board / ("micropython" if board == "unix" else "firmware.elf")


def find_firmware(board: str, firmware: Optional[PathLike] = None) -> Path:
    path = Path(firmware) if firmware else firmware_path(board)
    if not path.is_file():
        raise UserError(f"no firmware for board {board} at {path}: run make firmware BOARD={board}")
    return path


def build_firmware(board: str) -> Path:
    """`make firmware BOARD=<board>` in the repository (incremental: quick when up to date)."""
    _check_board(board)
    proc = subprocess.run(["make", "firmware", f"BOARD={board}"], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(f"make firmware BOARD={board} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return firmware_path(board)


def _check_board(board: str) -> None:
    if board not in BOARDS:
        raise UserError(f"unknown board {board!r}; the boards are {', '.join(BOARDS)}")


# ---------------------------------------------------------------------------------------------
# ELF facts about the qemu-m3 firmware (its linker script is the one place they are defined)

class ElfInfo(NamedTuple):
    sections: Dict[str, tuple]   # allocated section name -> (address, size)
    symbols: Dict[str, tuple]    # symbol name -> (value, size)


def read_elf(path: PathLike) -> ElfInfo:
    """Allocated sections and symbols of a 32-bit little-endian ELF file (all we need of it)."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
        raise UserError(f"{path} is not a 32-bit little-endian ELF file")
    shoff, = struct.unpack_from("<I", data, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)
    headers = [struct.unpack_from("<10I", data, shoff + i * shentsize) for i in range(shnum)]

    def string(table_index: int, offset: int) -> str:
        start = headers[table_index][4] + offset
        return data[start:data.index(b"\0", start)].decode()

    sections, symbols = {}, {}
    for name, sh_type, flags, addr, offset, size, link, _, _, entsize in headers:
        if flags & 2:  # SHF_ALLOC
            sections[string(shstrndx, name)] = (addr, size)
        if sh_type == 2:  # SHT_SYMTAB
            for pos in range(offset, offset + size, entsize):
                st_name, st_value, st_size = struct.unpack_from("<3I", data, pos)
                if st_name:
                    symbols[string(link, st_name)] = (st_value, st_size)
    return ElfInfo(sections, symbols)


def qemu_m3_memory(elf: Optional[PathLike] = None) -> Dict[str, int]:
    """qemu_memory() of the qemu-m3 board."""
    return qemu_memory("qemu-m3", elf)


def qemu_memory(board: str, elf: Optional[PathLike] = None) -> Dict[str, int]:
    """Memory budget of an emulated board's firmware (qemu-m3, qemu-m7, ...), in bytes, from its ELF file.

    Keys: sram_size (the SRAM region), sram_used (the end of everything placed in SRAM: .data,
    .bss with the GC heap, the stack), data_bss (.data + .bss without the heap), heap, stack,
    flash_used (code and constants plus the .data image), romfs_start, romfs_size.
    """
    info = read_elf(find_firmware(board, elf))
    sym = {name: value for name, (value, _) in info.symbols.items()}
    sram_start, sram_size = sym["_sram_start"], sym["_sram_size"]
    in_sram = [a + s for a, s in info.sections.values() if sram_start <= a < sram_start + sram_size]
    heap = info.symbols["gc_heap"][1]
    return {
        "sram_size": sram_size,
        "sram_used": max(in_sram) - sram_start,
        "data_bss": sym["_ebss"] - sym["_sdata"] - heap,
        "heap": heap,
        "stack": sym["_estack"] - sym["_sstack"],
        "flash_used": sym["_flash_end"],
        "romfs_start": sym["_romfs_start"],
        "romfs_size": sym["_romfs_size"],
    }


def memory_summary(mem: Dict[str, int], board: str = "qemu-m3") -> str:
    """One line, as the build prints it."""
    return (f"{board} SRAM: data+bss {mem['data_bss']} B, GC heap {mem['heap']} B, "
            f"stack {mem['stack']} B, total {mem['sram_used']} of {mem['sram_size']} B; "
            f"Flash: text+data {mem['flash_used']} B; "
            f"ROMFS: {mem['romfs_size']} B at 0x{mem['romfs_start']:08x}")


# ---------------------------------------------------------------------------------------------
# Running scripts

def run_script(board: str, script: PathLike, files: Iterable[PathLike] = (), timeout: Optional[float] = 300,
               icount: bool = False, heapsize: Optional[str] = None, stream: Optional[Stream] = None,
               firmware: Optional[PathLike] = None, flash_image: Optional[PathLike] = None) -> RunResult:
    """Run `script` on `board` with `files` readable by their base names; returns (returncode, output).

    timeout: seconds (None: no limit); on expiry the run is stopped and returncode is 124.
    icount: qemu boards only, run qemu with `-icount shift=0` (emulated time = instruction count).
    heapsize: unix only, the `-X heapsize=` value (e.g. "4M"); default: the port's default.
    stream: called with each piece of output as it arrives; True: print it to stdout.
    firmware: another firmware file than the one `make firmware` builds.
    flash_image: qemu boards only, the board's persistent Flash (see make_flash_image()): a file on
    the host that the board mounts at /flash and writes back to, so it outlives the run.
    """
    _check_board(board)
    script = Path(script)
    if not script.is_file():
        raise UserError(f"no script {script}")
    named = _name_files([script, *map(Path, files)])
    if board == "unix":
        if icount:
            raise UserError("--icount applies to the qemu boards only")
        if flash_image:
            raise UserError("a flash image applies to the qemu boards only")
        return _run_unix(find_firmware(board, firmware), named, script.name, timeout, heapsize, stream)
    if heapsize:
        raise UserError(f"the {board} board's heap size is fixed by its firmware (boards/{board})")
    return _run_qemu(board, find_firmware(board, firmware), named, script.name, timeout, icount, stream,
                     flash_image)


def run_source(board: str, source: str, files: Iterable[PathLike] = (), **kwargs) -> RunResult:
    """run_script() for Python source given as a string (it runs as `main.py`)."""
    with tempfile.TemporaryDirectory(prefix="mcutrain-src-") as tmp:
        script = Path(tmp) / "main.py"
        script.write_text(source)
        return run_script(board, script, files, **kwargs)


def _name_files(paths: Sequence[Path]) -> Dict[str, Path]:
    named: Dict[str, Path] = {}
    for path in paths:
        if not path.is_file():
            raise UserError(f"no file {path}")
        if path.name in named:
            raise UserError(f"two files are named {path.name}; the board sees files by base name only")
        named[path.name] = path
    return named


class _Output:
    """Collects output, normalises line ends to "\\n" and passes it on as it arrives."""

    def __init__(self, stream: Optional[Stream]):
        self.stream = _print_to_stdout if stream is True else stream or None
        self.parts = []
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")  # chunks may split characters
        self._cr = False  # a "\r" ended the last piece: it may be half of "\r\n"

    def add(self, data: bytes) -> None:
        text = ("\r" if self._cr else "") + self._decoder.decode(data)
        self._cr = text.endswith("\r")
        if self._cr:
            text = text[:-1]
        self.emit(text.replace("\r\n", "\n"))

    def emit(self, text: str) -> None:
        if text:
            self.parts.append(text)
            if self.stream:
                self.stream(text)

    def finish(self) -> str:
        if self._cr:
            self.emit("\r")
            self._cr = False
        return "".join(self.parts)


def _print_to_stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _deadline(timeout: Optional[float]) -> float:
    return time.monotonic() + timeout if timeout else float("inf")


# --- unix ------------------------------------------------------------------------------------

def _run_unix(binary: Path, named: Dict[str, Path], script_name: str, timeout: Optional[float],
              heapsize: Optional[str], stream: Optional[Stream]) -> RunResult:
    out = _Output(stream)
    with tempfile.TemporaryDirectory(prefix="mcutrain-unix-") as tmp:
        for name, path in named.items():
            shutil.copyfile(path, Path(tmp) / name)
        cmd = [str(binary)] + (["-X", f"heapsize={heapsize}"] if heapsize else []) + [script_name]
        proc = subprocess.Popen(cmd, cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        deadline = _deadline(timeout)
        try:
            while True:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    out.emit(f"\nhost_tools: timed out after {timeout} s\n")
                    return RunResult(TIMEOUT_RC, out.finish())
                ready, _, _ = select.select([proc.stdout], [], [], min(wait, 1.0))
                if ready:
                    data = os.read(proc.stdout.fileno(), 65536)
                    if not data:
                        break
                    out.add(data)
            return RunResult(proc.wait(), out.finish())
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()


# --- qemu-m3 ---------------------------------------------------------------------------------

class _BoardError(Exception):
    """The board did not answer as the raw REPL protocol says (crashed, hung, or timed out)."""


class _Serial:
    """The emulated board's UART (qemu's stdio on pipes) as the serial port mpremote's transport
    reads and writes (write, read, inWaiting), with the run's deadline and the board's CPU fault
    turned into exceptions that end the run."""

    # What ports/qemu's fault handler prints before it stops the CPU for good.
    FAULT_MARKER = b" exception caught:"

    def __init__(self, proc: subprocess.Popen, deadline: float):
        self.proc = proc
        self.deadline = deadline
        self.pending = b""
        self.recent = b""     # the last bytes read, to spot FAULT_MARKER split across reads
        self.faulted = False
        self._transport = None

    @property
    def transport(self):
        """mpremote's raw-REPL transport over this port (its serial-port setup skipped: the port is
        already open)."""
        if self._transport is None:
            from mpremote.transport_serial import SerialTransport
            t = SerialTransport.__new__(SerialTransport)
            t.serial, t.device_name = self, "qemu"
            t.in_raw_repl, t.use_raw_paste, t.mounted = True, True, False
            self._transport = t
        return self._transport

    def write(self, data: bytes) -> int:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()
        return len(data)

    def _receive(self, wait: float) -> bool:
        """Reads what qemu has written within `wait` seconds into pending; False if nothing came."""
        if time.monotonic() >= self.deadline:
            if self.faulted:
                raise _BoardError("the board stopped on a CPU fault")
            raise TimeoutError
        ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, min(wait, self.deadline - time.monotonic())))
        if not ready:
            return False
        data = os.read(self.proc.stdout.fileno(), 65536)
        if not data:
            raise _BoardError(f"qemu exited (status {self.proc.wait()})")
        seen, self.recent = self.recent + data, (self.recent + data)[-len(self.FAULT_MARKER):]
        if not self.faulted and self.FAULT_MARKER in seen:
            # The register dump follows at once; after it the board never answers again.
            self.faulted = True
            self.deadline = min(self.deadline, time.monotonic() + 0.5)
        self.pending += data
        return True

    def inWaiting(self) -> int:  # noqa: N802  (pyserial's name, which mpremote calls)
        if not self.pending:
            self._receive(0)
        return len(self.pending)

    def read(self, n: int = 1) -> bytes:
        while len(self.pending) < n:
            self._receive(1.0)
        data, self.pending = self.pending[:n], self.pending[n:]
        return data

    def read_until(self, marker: bytes) -> bytes:
        """Everything up to `marker` (which is consumed)."""
        while marker not in self.pending:
            self._receive(1.0)
        before, _, self.pending = self.pending.partition(marker)
        return before


FLASH_BLOCK = 4096                # the erase block of the qemu boards' Flash (boards/qemu-m3/qemu_flash.c)
FLASH_IMAGE_SIZE = 1 << 20        # default size of a new flash image


def make_flash_image(path: PathLike, size: int = FLASH_IMAGE_SIZE) -> Path:
    """A blank (erased: all 0xff) Flash for a qemu board; the board formats it with LittleFS at boot."""
    if size % FLASH_BLOCK or size < 2 * FLASH_BLOCK:
        raise UserError(f"a flash image is a multiple of {FLASH_BLOCK} B, at least {2 * FLASH_BLOCK} B")
    path = Path(path)
    path.write_bytes(b"\xff" * size)
    return path


def qemu_command(elf: PathLike, romfs_image: Optional[PathLike], romfs_start: int,
                 icount: bool = False, board: str = "qemu-m3", flash_image: Optional[PathLike] = None,
                 serial: str = "stdio", romfs_writable: bool = False) -> list:
    """The qemu-system-arm command line that runs a qemu board's firmware, its UART on stdio.

    flash_image: the host file behind the board's /flash. The firmware finds its name on the
    semihosting command line and reads and writes it with semihosting file calls.
    serial: qemu's -serial backend ("stdio", or "pty" for a serial line that mpremote/ampy open).
    romfs_writable: the board writes a ROMFS it is given (`mpremote romfs deploy`) back into
    romfs_image too, so that the next run starts with it (qemu-m3, qemu-m7).
    """
    qemu = shutil.which("qemu-system-arm")
    if not qemu:
        raise UserError("qemu-system-arm is not installed: run make deps")
    machine, extra = QEMU_BOARDS[board]
    host_files = [("flash", flash_image)] + ([("romfs", romfs_image)] if romfs_writable else [])
    semihosting = "enable=on,target=native,arg=mcutrain"
    for key, name in host_files:
        if not name:
            continue
        path = Path(name).resolve()
        if not path.is_file():
            raise UserError(f"no {key} image {name}" + (": make one with boards.make_flash_image()"
                                                        if key == "flash" else ""))
        if "," in str(path) or " " in str(path) or len(str(path)) > 200:
            raise UserError(f"the {key} image's path {path} must have no comma or space and be short")
        semihosting += f",arg={key}={path}"
    cmd = [qemu, "-machine", machine, *extra, "-nographic", "-monitor", "null",
           "-semihosting-config", semihosting, "-serial", serial, "-kernel", str(elf)]
    if romfs_image:
        cmd += ["-device", f"loader,file={romfs_image},addr=0x{romfs_start:x},force-raw=on"]
    if icount:
        cmd += ["-icount", "shift=0"]
    return cmd


def _run_qemu(board: str, elf: Path, named: Dict[str, Path], script_name: str, timeout: Optional[float],
              icount: bool, stream: Optional[Stream], flash_image: Optional[PathLike] = None) -> RunResult:
    mem = qemu_memory(board, elf)
    image = romfs.build_image({name: path.read_bytes() for name, path in named.items()})
    if len(image) > mem["romfs_size"]:
        raise UserError(f"the files take {len(image)} B of ROMFS, more than the board's "
                        f"{mem['romfs_size']} B partition")
    out = _Output(stream)
    with tempfile.TemporaryDirectory(prefix="mcutrain-qemu-") as tmp:
        image_path = Path(tmp) / "romfs.img"
        image_path.write_bytes(image)
        proc = subprocess.Popen(qemu_command(elf, image_path, mem["romfs_start"], icount, board, flash_image),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        serial = _Serial(proc, _deadline(timeout))
        try:
            rc = _raw_repl_run(serial, script_name, out)
        except TimeoutError:
            out.emit(f"\nhost_tools: timed out after {timeout} s\n")
            rc = TIMEOUT_RC
        except _BoardError as e:
            out.emit(f"\nhost_tools: {e}\n")
            rc = 1
        finally:
            proc.kill()
            _, err = proc.communicate()
        if rc == 1 and err.strip():
            out.emit(err.decode("utf-8", "replace"))
    return RunResult(rc, out.finish())


def _enter_raw_repl(serial: _Serial) -> None:
    """Interrupt whatever runs, then enter the raw REPL (the UART buffers input until read); the
    prompt '>' after it is left for the first command (mpremote's exec waits for it)."""
    serial.write(b"\r\x03\x03\x01")
    serial.read_until(b"raw REPL; CTRL-B to exit\r\n")


def _raw_repl_run(serial: _Serial, script_name: str, out: _Output) -> int:
    """Run script_name from /rom through the raw REPL; returns the exit status, unix-like."""
    _enter_raw_repl(serial)
    # The script's source stays in Flash: execfile() reads it from /rom. The raw REPL drops
    # SystemExit's value, so it is kept in a variable and asked for afterwards.
    _, error = _raw_exec(serial, (
        "__import__('os').chdir('/rom')\n"
        "_host_exit = None\n"
        "try:\n"
        f"    execfile({script_name!r})\n"
        "except SystemExit as e:\n"
        "    _host_exit = e.args[0] if e.args else None\n"), out.add)
    if error:
        # The traceback without the frame of the command above: as the unix port prints it.
        out.add(re.sub(rb'  File "<stdin>", line \d+, in <module>\r?\n', b"", error, count=1))
        return 1
    value, _ = _raw_exec(serial, "print(repr(_host_exit))")
    value = value.decode().strip()
    if value in ("None", "0"):
        return 0
    # sys.exit(n) gives status n; sys.exit("message") 1, as on the unix port.
    return int(value) & 0xFF if re.fullmatch(r"-?\d+", value) else 1


def _raw_exec(serial: _Serial, code: str, on_output: Optional[Callable[[bytes], None]] = None) -> tuple:
    """Execute code in the raw REPL with mpremote's transport: (its output, the traceback it printed
    if it raised). The output is also passed to on_output as it arrives (a line at a time); the
    traceback is only returned."""
    from mpremote.transport import TransportError
    line = bytearray()

    def consume(byte: bytes) -> None:      # mpremote passes the output byte by byte, its end (0x04) too
        if byte != b"\x04":
            line.extend(byte)
        if line and (byte in (b"\n", b"\x04") or len(line) >= 256):
            on_output(bytes(line))
            line.clear()

    try:
        serial.transport.exec_raw_no_follow(code)
        return serial.transport.follow(None, consume if on_output else None)
    except TransportError as e:
        raise _BoardError(f"the board did not accept the script ({e})") from None
    finally:
        if line:                            # what came before a timeout or a fault
            on_output(bytes(line))
