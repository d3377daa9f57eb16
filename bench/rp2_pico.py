"""The emulated Raspberry Pi Pico in the benchmarks: what bench_mcu.py needs to add its rp2-pico
column, and `make bench-memory`'s Pico section (run as a script): the SRAM budget of the real rp2
firmware, the interpreter's share and what is left for models."""
import datetime
import platform
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import benchlib  # noqa: E402
from host_tools.boards import rp2040js  # noqa: E402
from host_tools.boards import runners as boards  # noqa: E402

CYCLES_PER_US = rp2040js.CYCLES_PER_US
MACHINE = "rp2040js 1.4.1 (cycles)"
BENCH_MCU_NOTE = (
    "rp2-pico is the real Raspberry Pi Pico firmware (MicroPython v1.25 ports/rp2 with mcutrain built in, "
    "`make firmware BOARD=rp2-pico`, gcc -Os as the port builds) in rp2040js: its figures are **cycles** "
    "of rp2040js's Cortex-M0+ model (emulated time x 125 MHz), not instructions; the float32 backward is "
    "soft-float through the RP2040 boot ROM's float routines (pico-sdk's pico_float).")
MARK = "<!-- bench-memory-pico -->"
OUT = ROOT / "docs" / "benchmarks.md"

# After boot and `import mcutrain`: what the interpreter holds and what the GC heap has left.
PROBE = textwrap.dedent("""
    import gc, micropython, mcutrain
    gc.collect()
    print('HEAP', gc.mem_alloc(), gc.mem_free())
""")

# The largest model that fits: MbV2-w0.35 at its 128x128 with the paper's largest scheme (138 KB) and the
# Pico's default backward, the integer one (bench_mcu.py measures it): loaded from ROMFS, what is left.
FIT = dict(scheme="138kb", backward="int")
FIT_PROBE = textwrap.dedent("""
    import gc, mcutrain
    m = mcutrain.Model(open('model.mct', 'rb'))
    gc.collect()
    print('FIT', m.mem_info()['workspace'], gc.mem_free())
""")

DEMO = ROOT / "build" / "demo"
# The demo model as `make demo` converts it, with an update rule that both backwards have.
DEMO_CONVERT = ["examples/fashion_net.py:FashionNet", "--weights", DEMO / "fashion_net.pt", "--calib",
                DEMO / "calib.npz", "--val", DEMO / "val.npz", "--n-bias-update", "2", "--update-rule", "stochastic"]


def backward_cycles(tmp, boards_=("rp2-pico", "qemu-m0"), n=10):
    """Cycles (rp2-pico) / instructions (qemu-m0) per training step of the demo model with the float32
    backward and with the integer one: {(board, backward): step}. On the Pico the float32 arithmetic
    is the boot ROM's routines, on qemu-m0 libgcc's soft float."""
    import subprocess
    steps = {}
    files = [tmp / n for n in ("model.mct", "images.bin", "labels.bin", "runs.txt")]
    (tmp / "images.bin").write_bytes((DEMO / "train.bin").read_bytes()[:n * 28 * 28])
    (tmp / "labels.bin").write_bytes((DEMO / "train_labels.bin").read_bytes()[:n])
    for backward in ("float", "int"):
        subprocess.run([sys.executable, "-m", "host_tools", "convert", *map(str, DEMO_CONVERT), "--backward", backward,
                        "-o", str(tmp / "model.mct")], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        for board in boards_:
            per_us = CYCLES_PER_US if board == "rp2-pico" else 1000
            (tmp / "runs.txt").write_text(f"1 {n} 0 {per_us}")
            res = boards.run_script(board, ROOT / "bench" / "mcu_cost.py", files, icount=board != "rp2-pico",
                                    timeout=1800)
            result = [ln for ln in res.output.splitlines() if ln.startswith("RESULT")]
            if res.returncode or not result:
                raise SystemExit(f"backward_cycles: {board} {backward}: {res.output[-500:]}")
            steps[board, backward] = int(result[0].split()[2])
            print(f"demo, {backward} backward, {board}: {steps[board, backward]:,} per training step", flush=True)
    return steps


def backward_lines(steps):
    """bench-mcu's sentences on the float32 against the integer backward (steps: backward_cycles())."""
    pico = steps["rp2-pico", "float"] / steps["rp2-pico", "int"]
    lines = [f"- The float32 against the integer backward on the demo model (update rule stochastic, "
             f"`--backward float|int`): rp2-pico {steps['rp2-pico', 'float']:,} against "
             f"{steps['rp2-pico', 'int']:,} cycles per training step ({pico:.2f}x)"]
    if ("qemu-m0", "float") in steps:
        m0 = steps["qemu-m0", "float"] / steps["qemu-m0", "int"]
        lines[0] += (f"; qemu-m0 (libgcc's soft float) {steps['qemu-m0', 'float']:,} against "
                     f"{steps['qemu-m0', 'int']:,} instructions ({m0:.2f}x)")
    return lines[0] + ".", ""


def missing():
    """Why the rp2-pico column cannot be measured here (None when it can)."""
    return rp2040js.missing()


def memory_section():
    mem = rp2040js.pico_memory()
    res = boards.run_source("rp2-pico", PROBE, timeout=300)
    line = [ln for ln in res.output.splitlines() if ln.startswith("HEAP")]
    if res.returncode or not line:
        sys.exit(f"bench-memory: the Pico probe failed:\n{res.output}")
    alloc, free = map(int, line[0].split()[1:])
    kb = lambda n: f"{n / 1024:,.1f} KB"  # noqa: E731
    fit = []
    if benchlib.MIT.is_dir():
        with tempfile.TemporaryDirectory(prefix="bench-pico-") as tmp:
            probe = Path(tmp) / "fit.py"
            probe.write_text(FIT_PROBE)
            (Path(tmp) / "model.mct").write_bytes(benchlib.mit_mct("mbv2-w0.35", **FIT).read_bytes())
            res = boards.run_script("rp2-pico", probe, [Path(tmp) / "model.mct"], timeout=300)
        line = [ln for ln in res.output.splitlines() if ln.startswith("FIT")]
        if res.returncode or not line:
            sys.exit(f"bench-memory: the Pico's model probe failed:\n{res.output}")
        workspace, left = map(int, line[0].split()[1:])
        fit = ["", f"The largest of the paper's models that fits: MbV2-w0.35 at 128x128 with its {FIT['scheme'][:-2]} KB "
                   f"scheme and the integer backward (the Pico's default; `python -m host_tools convert "
                   f"{' '.join(benchlib.mit_convert_args('mbv2-w0.35', **FIT)).replace(str(benchlib.MIT), '../shared/models/mit')}`): "
                   f"its workspace takes {workspace:,} B ({kb(workspace)}) of the heap, and {left:,} B ({kb(left)}) "
                   "stay free once it is loaded (measured on the board: `mem_info()`, `gc.mem_free()`). "
                   "Its cycles are in `make bench-mcu`'s section."]
    return "\n".join([
        "## The Raspberry Pi Pico's SRAM (`make bench-memory`)",
        "",
        f"Command: `make bench-memory` (`python bench/rp2_pico.py`). Date: {datetime.date.today()}. "
        f"Machine: {platform.machine()} host, {MACHINE}. Firmware: `make firmware BOARD=rp2-pico` (MicroPython "
        "v1.25 ports/rp2, board RPI_PICO with a ROMFS partition, mcutrain built in). Static figures from "
        "its ELF file (ports/rp2/memmap_mp_rp2040.ld); the heap in use measured on the board after boot, "
        "`import mcutrain` and `gc.collect()`.",
        "",
        "| RP2040 SRAM | bytes | |",
        "|---|---|---|",
        f"| total | {mem['sram_size']:,} | {kb(mem['sram_size'])}: 256 KB main SRAM + two 4 KB banks |",
        f"| firmware .data + .bss | {mem['data_bss']:,} | {kb(mem['data_bss'])}: the interpreter's and the SDK's "
        "static state (USB, flash, PIO, ...) |",
        f"| C stack | {mem['stack']:,} | {kb(mem['stack'])}: core 0's, both 4 KB banks (a thread on core 1 "
        "takes its stack from the GC heap) |",
        f"| GC heap | {mem['heap']:,} | {kb(mem['heap'])}: the rest of the main SRAM |",
        f"| GC heap: the collector's own tables | {mem['heap'] - alloc - free:,} | "
        f"{kb(mem['heap'] - alloc - free)}: allocation and finaliser bitmaps |",
        f"| GC heap in use after boot | {alloc:,} | {kb(alloc)}: the interpreter's objects, USB REPL, mounted "
        "filesystems |",
        f"| **left for models** | **{free:,}** | **{kb(free)}**: model object, workspace (arena + trained "
        "copies), the script's own objects |",
        "",
        f"The qemu boards give the firmware 256 KB with a 16 KB stack; the Pico's firmware keeps "
        f"{kb(mem['sram_size'] - free)} of its 264 KB for itself, so a model's workspace must fit in "
        f"{kb(free)} (less the script's objects). Models and images stay in Flash (ROMFS, read in place).",
        *fit,
    ])


def main():
    reason = missing()
    if reason:
        print(f"bench-memory: the Pico section is not measured: {reason}")
        return 0
    benchlib.write_section(MARK, memory_section(), OUT)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
