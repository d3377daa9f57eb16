"""Put a model, a training script and its data onto a MicroPython board over its serial port, run
the script, and fetch the trained model back (`host_tools deploy`).

    from host_tools.boards import deploy
    with deploy.SerialBoard("/dev/ttyACM0") as board:
        board.check_mcutrain()
        board.put_files(["model.mct", "train.py", "data.bin"], "/flash")
        rc, output = board.run("train.py", "/flash")
        board.get("/flash/trained.mct", "trained.mct")

Files go through the board's raw REPL: with mpremote's transport (the default) or adafruit-ampy
(tool="ampy"). An emulated board on a serial line for the same commands: EmulatedBoard, a qemu
board (boards/runners.py) with its persistent Flash and its UART on a host pty.
"""
import ast
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence, Tuple

from host_tools import atomic
from host_tools.boards import runners as boards
from host_tools.boards import romfs, serial_copy
from host_tools.data_checks import check_board_data
from host_tools.model import mct_format
from host_tools.errors import UserError

TOOLS = ("mpremote", "ampy")
ENOSPC = 28


def _remote_join(directory: str, name: str) -> str:
    return directory.rstrip("/") + "/" + name if directory else name


class SerialBoard:
    """A MicroPython board on a serial port, in its raw REPL for as long as the object is open."""

    def __init__(self, port: str, tool: str = "mpremote", timeout: float = 10):
        if tool not in TOOLS:
            raise UserError(f"unknown tool {tool!r}; the tools are {', '.join(TOOLS)}")
        if not os.path.exists(port):
            raise UserError(f"no serial port {port}: is the board plugged in (or qemu started with -serial pty)?")
        self.port, self.tool, self.timeout = port, tool, timeout
        try:
            if tool == "mpremote":
                from mpremote.transport_serial import SerialTransport
                self.link = SerialTransport(port, baudrate=115200)
                # No soft reset: a board keeps what it runs (and a soft reset may take a while).
                self.link.enter_raw_repl(soft_reset=False, timeout_overall=timeout)
            else:
                from ampy.pyboard import Pyboard
                self.link = Pyboard(port, baudrate=115200)
                self.link.enter_raw_repl()
        except UserError:
            raise
        except Exception as e:  # serial.SerialException, mpremote's TransportError, ampy's PyboardError
            raise UserError(f"no MicroPython raw REPL answers on {port} ({type(e).__name__}: {e})") from None

    # --- raw REPL -----------------------------------------------------------------------------

    def exec(self, code: str, on_output: Optional[Callable[[bytes], None]] = None,
             timeout: Optional[float] = None) -> Tuple[bytes, bytes]:
        """Run code on the board: (its output, the traceback if it raised)."""
        try:
            self.link.exec_raw_no_follow(code)
            return self.link.follow(timeout if timeout is not None else self.timeout, on_output)
        except Exception as e:
            raise UserError(f"the board on {self.port} stopped answering ({type(e).__name__}: {e})") from None

    def eval(self, expression: str):
        out, err = self.exec(f"print(repr({expression}))")
        if err:
            raise UserError(f"the board on {self.port} failed on {expression}: {_last_line(err)}")
        return ast.literal_eval(out.decode().strip())

    def close(self) -> None:
        try:
            self.link.exit_raw_repl()
        finally:
            self.link.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- checks -------------------------------------------------------------------------------

    def check_mcutrain(self) -> str:
        """The board's mcutrain FORMAT_VERSION; a clear error when the board has no mcutrain."""
        out, err = self.exec("import mcutrain\nprint(mcutrain.FORMAT_VERSION)")
        if err:
            raise UserError(f"the board on {self.port} has no mcutrain module ({_last_line(err)}): flash a "
                            "firmware with mcutrain (make firmware) or copy dist/mpy/<arch>/mcutrain.mpy onto it")
        return out.decode().strip()

    def free_bytes(self, directory: str) -> int:
        """Free space of the filesystem that holds `directory`; a clear error when there is none."""
        out, err = self.exec(f"import os\ns=os.statvfs({directory!r})\nprint(s[0]*s[3])")
        if err:
            raise UserError(f"the board on {self.port} has no writable filesystem at {directory} "
                            f"({_last_line(err)}); choose another with --dest")
        return int(out)

    def file_size(self, path: str) -> Optional[int]:
        out, err = self.exec(f"import os\nprint(os.stat({path!r})[6])")
        return None if err else int(out)

    # --- files --------------------------------------------------------------------------------

    def put_files(self, files: Sequence[Path], directory: str,
                  progress: Optional[Callable[[str], None]] = None) -> list:
        """Copy files into `directory` on the board, after checking that they fit; their remote paths."""
        files = [Path(f) for f in files]
        free = self.free_bytes(directory)
        block = self.eval(f"__import__('os').statvfs({directory!r})[0]")
        # Each file costs its data rounded up to blocks plus a block of metadata (LittleFS, FAT);
        # files it replaces give back their blocks.
        need = sum((-(-f.stat().st_size // block) + 1) * block for f in files)
        freed = sum(-(-(self.file_size(_remote_join(directory, f.name)) or 0) // block) * block for f in files)
        if need > free + freed:
            raise UserError(f"the board's filesystem at {directory} is full: {free} B free, the files need "
                            f"about {need - freed} B; remove files there or deploy fewer")
        remote = []
        for f in files:
            path = _remote_join(directory, f.name)
            if progress:
                progress(f"{f} -> :{path} ({f.stat().st_size} B)")
            self.put(f.read_bytes(), path)
            remote.append(path)
        return remote

    def put(self, data: bytes, path: str) -> None:
        try:
            if self.tool == "ampy":
                from ampy.files import Files
                Files(self.link).put(path, data)
                self.link.enter_raw_repl()   # ampy's put leaves the raw REPL
            else:
                serial_copy.write_file(self.link, path, data)
        except Exception as e:
            text = str(e) + " " + str(getattr(e, "error_output", ""))
            # "OSError: [Errno 28] ENOSPC", or "OSError: 28" on ports without errno names
            if re.search(rf"ENOSPC|OSError: (\[Errno )?{ENOSPC}\b", text):
                # close the half-written file (mpremote's `f`; closing may fail too), then remove it
                self.exec("try:\n f.close()\nexcept Exception:\n pass")
                self.exec(f"import os\ntry:\n os.remove({path!r})\nexcept OSError:\n pass")
                raise UserError(f"the board's filesystem is full: {path} did not fit ({len(data)} B); "
                                "remove files on the board or deploy fewer") from None
            raise UserError(f"copying {path} onto the board on {self.port} failed "
                            f"({type(e).__name__}: {_last_line(text.encode())})") from None

    def get(self, path: str, local: Path) -> int:
        """Copy a file from the board; returns its size."""
        try:
            if self.tool == "ampy":
                from ampy.files import Files
                data = Files(self.link).get(path)
                self.link.enter_raw_repl()
            else:
                data = serial_copy.read_file(self.link, path)
        except Exception as e:
            text = str(e) + " " + str(getattr(e, "error_output", ""))
            if isinstance(e, FileNotFoundError) or re.search(r"ENOENT|OSError: (\[Errno )?2\b", text):
                raise UserError(f"there is no {path} on the board") from None
            raise UserError(f"reading {path} from the board on {self.port} failed ({type(e).__name__}: {e})") from None
        atomic.write_bytes(bytes(data), local)
        return len(data)

    # --- running ------------------------------------------------------------------------------

    def run(self, script: str, directory: str, timeout: Optional[float] = 600,
            stream: Optional[Callable[[str], object]] = None) -> Tuple[int, str]:
        """Run a script that is on the board, in `directory`: (exit status as on unix, output)."""
        parts = []

        def on_output(data: bytes) -> None:
            text = data.decode("utf-8", "replace").replace("\r", "")
            parts.append(text)
            if stream:
                stream(text)

        out, err = self.exec(
            f"import os\nos.chdir({directory!r})\n_host_exit=None\ntry:\n execfile({script!r})\n"
            "except SystemExit as e:\n _host_exit=e.args[0] if e.args else None\n",
            on_output, timeout)
        if err:
            text = re.sub(r'  File "<stdin>", line \d+, in <module>\n', "", err.decode("utf-8", "replace")
                          .replace("\r", ""), count=1)
            parts.append(text)
            if stream:
                stream(text)
            return 1, "".join(parts)
        value = repr(self.eval("_host_exit"))
        rc = 0 if value in ("None", "0") else (int(value) & 0xFF if re.fullmatch(r"-?\d+", value) else 1)
        return rc, "".join(parts)


def _last_line(text: bytes) -> str:
    lines = [l for l in text.decode("utf-8", "replace").replace("\r", "").split("\n") if l.strip()]
    return lines[-1].strip() if lines else "no answer"


def romfs_deploy(port: str, models: Sequence[Path], progress: Optional[Callable[[str], None]] = None) -> None:
    """Put models into the board's ROMFS partition (it then holds only them) with `mpremote romfs
    deploy`, and mount it again at /rom. Their weights stay in Flash: the board reads them in place."""
    image = romfs.build_image({m.name: m.read_bytes() for m in models})
    with SerialBoard(port) as board:
        out, err = board.exec("import vfs\nd=vfs.rom_ioctl(2,0) if hasattr(vfs,'rom_ioctl') else -1\n"
                              "print(len(d) if not isinstance(d,int) else -1)")
        size = int(out) if not err else -1
        if size < 0:
            raise UserError(f"the board on {port} has no ROMFS partition: copy the model into its filesystem "
                            "(leave out --romfs)")
        if len(image) > size:
            raise UserError(f"the models take {len(image)} B of ROMFS, more than the board's {size} B partition")
    with tempfile.TemporaryDirectory(prefix="mcutrain-romfs-") as tmp:
        path = Path(tmp) / "models.romfs"
        path.write_bytes(image)
        if progress:
            progress(f"{', '.join(m.name for m in models)} -> ROMFS :/rom ({len(image)} B, mpremote romfs deploy)")
        proc = subprocess.run([sys.executable, "-m", "mpremote", "connect", port, "romfs", "deploy", str(path)],
                              capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or "ROMFS image deployed" not in proc.stdout:
        raise UserError(f"mpremote romfs deploy failed: {(proc.stdout + proc.stderr).strip()[-500:]}")
    with SerialBoard(port) as board:
        _, err = board.exec("import vfs\ntry:\n vfs.umount('/rom')\nexcept OSError:\n pass\n"
                            "vfs.mount(vfs.VfsRom(vfs.rom_ioctl(2,0)),'/rom')")
        if err:
            raise UserError(f"the deployed ROMFS does not mount at /rom: {_last_line(err)}")


def deploy(port: str, files: Sequence[Path], directory: str = "/flash", tool: str = "mpremote",
           run: Optional[str] = None, get: Iterable[str] = (), out_dir: Path = Path("."),
           timeout: float = 600, stream: Optional[Callable[[str], object]] = None,
           progress: Optional[Callable[[str], None]] = None, to_romfs: bool = False) -> int:
    """What `host_tools deploy` does: copy, run, fetch; the script's exit status (0 without --run).

    to_romfs: the models (.mct) go into the board's ROMFS partition (/rom), the other files into
    `directory`."""
    files = [Path(f) for f in files]
    for f in files:
        if not f.is_file():
            raise UserError(f"no file {f}")
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        raise UserError("two files have the same name; the board sees them by name in one directory")
    if run is not None and run not in names:
        raise UserError(f"--run {run}: the script must be one of the files deployed")
    for m in (f for f in files if f.suffix == ".mct"):
        model = mct_format.read(m)
        c, h, w = model.input_shape
        check_board_data(files, c * h * w, model.n_classes, m.name)
    models = [f for f in files if to_romfs and f.suffix == ".mct"]
    if to_romfs and not models:
        raise UserError("--romfs: no .mct model among the files")
    if models:
        with SerialBoard(port, tool) as board:
            board.check_mcutrain()
        romfs_deploy(port, models, progress)
        files = [f for f in files if f not in models]
    rc = 0
    with SerialBoard(port, tool) as board:
        if run is not None or any(n.endswith(".mct") for n in names):
            board.check_mcutrain()
        if files:
            board.put_files(files, directory, progress)
        if run is not None:
            rc, _ = board.run(run, directory, timeout, stream)
        for name in get:
            remote = name if name.startswith("/") else _remote_join(directory, name)
            local = Path(out_dir) / Path(remote).name
            size = board.get(remote, local)
            if progress:
                progress(f":{remote} -> {local} ({size} B)")
    return rc


# ---------------------------------------------------------------------------------------------
# An emulated board on a serial line

class EmulatedBoard:
    """A qemu board (boards.QEMU_BOARDS) with its persistent Flash, its UART on a host pty.

        with EmulatedBoard("qemu-m3", "flash.img", "romfs.img") as board:
            deploy.deploy(board.port, [...])

    flash_image: the host file behind /flash (boards.make_flash_image()).
    romfs_image: the host file behind the ROMFS partition (/rom): loaded into it at start, and
    written by the board when a ROMFS is deployed (created empty if missing; qemu-m3, qemu-m7).
    """

    def __init__(self, board: str = "qemu-m3", flash_image: Optional[Path] = None,
                 romfs_image: Optional[Path] = None, firmware: Optional[Path] = None, timeout: float = 20):
        if board not in boards.QEMU_BOARDS:
            raise UserError(f"{board} is not an emulated board; they are {', '.join(boards.QEMU_BOARDS)}")
        elf = boards.find_firmware(board, firmware)
        romfs_start = 0
        if romfs_image:
            romfs_image = Path(romfs_image)
            if not romfs_image.exists() or romfs_image.stat().st_size == 0:
                romfs_image.write_bytes(b"\xff" * 16)    # no ROMFS yet (qemu's loader wants a non-empty file)
            romfs_start = boards.qemu_memory(board, elf)["romfs_start"]
        cmd = boards.qemu_command(elf, romfs_image, romfs_start, board=board, flash_image=flash_image,
                                  serial="pty", romfs_writable=romfs_image is not None)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.port = self._find_pty(timeout)
        # Keep reading qemu's own output so that it never blocks on a full pipe.
        self._drain = threading.Thread(target=self.proc.stdout.read, daemon=True)
        self._drain.start()

    def _find_pty(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        seen = b""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            seen += line
            match = re.search(rb"char device redirected to (\S+)", line)
            if match:
                return match.group(1).decode()
        self.close()
        raise UserError(f"qemu gave no serial pty: {seen.decode(errors='replace').strip()}")

    def kill(self) -> None:
        """Stop the board at once, as a power cut does (writes already done stay in the flash image)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        self.kill()
        if hasattr(self, "_drain"):
            self._drain.join(5)      # it ends at EOF, now that qemu is gone
        self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
