"""`make bench-mcu`: instructions per inference and per training step of the demo model on every
emulated MCU (qemu -icount shift=0: a count of instructions, not of the host's time), written to
docs/benchmarks.md."""
import datetime
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from host_tools import boards  # noqa: E402

DEMO = ROOT / "build" / "demo"
OUT = ROOT / "docs" / "benchmarks.md"
MARK = "<!-- bench-mcu -->"


def main():
    files = [DEMO / n for n in ("fashion.mct", "train.bin", "train_labels.bin")]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        sys.exit(f"bench-mcu: missing {', '.join(missing)}: run make demo first")
    rows = []
    portable_m7 = ROOT / "build" / "firmware" / "qemu-m7-portable" / "firmware.elf"
    runs = [(b, b, None) for b in boards.BOARDS if b != "unix"] + [("qemu-m7", "qemu-m7 portable", portable_m7)]
    for board, label, firmware in runs:
        res = boards.run_script(board, ROOT / "bench" / "mcu_cost.py", files, icount=True, timeout=900,
                                firmware=firmware)
        line = [ln for ln in res.output.splitlines() if ln.startswith("RESULT")]
        if res.returncode or not line:
            sys.exit(f"bench-mcu: {board} failed:\n{res.output}")
        fwd, step, workspace, arena, trained = map(int, line[0].split()[1:])
        rows.append((label, boards.QEMU_BOARDS[board][0], fwd, step, workspace, arena, trained))
        print(f"{label}: forward {fwd:,} instructions, train step {step:,}")
    qemu = subprocess.run(["qemu-system-arm", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    m3 = next(r for r in rows if r[0] == "qemu-m3")
    m7, m7p = (next(r for r in rows if r[0] == name) for name in ("qemu-m7", "qemu-m7 portable"))
    table = ["| board | qemu machine | instructions / inference | instructions / training step | vs qemu-m3 (step) | model RAM (workspace) | arena | trained copies |",
             "|---|---|---|---|---|---|---|---|"]
    for b, mach, fwd, step, ws, arena, tr in rows:
        table.append(f"| {b} | {mach} | {fwd:,} | {step:,} | {step / m3[3]:.2f} | {ws:,} B | {arena:,} B | {tr:,} B |")
    table += ["", f"SIMD kernels on qemu-m7 (SMLAD pointwise convs) against its portable build: inference "
                  f"{m7p[2] / m7[2]:.2f}x fewer instructions, training step {m7p[3] / m7[3]:.2f}x."]
    section = "\n".join([
        MARK,
        "## Instructions on the emulated MCUs (`make bench-mcu`)",
        "",
        f"Command: `make bench-mcu` (demo model `build/demo/fashion.mct` from `make demo`: FashionNet, 28x28, "
        f"classifier + last 2 conv biases trained; mean over 10 images). Date: {datetime.date.today()}. "
        f"Machine: {platform.machine()} host, {qemu}, `-icount shift=0` (one instruction per emulated ns).",
        "qemu-m3 and qemu-m0 run the portable C kernels; qemu-m7 the DSP-extension (SIMD) pointwise kernel, "
        "and 'qemu-m7 portable' the same firmware built with -DMCT_PORTABLE. The float32 backward is "
        "soft-float on qemu-m3 and qemu-m0, hardware single precision on qemu-m7.",
        "",
        *table,
        MARK,
    ])
    text = OUT.read_text() if OUT.exists() else "# Benchmarks\n\nEach section says the command that reproduces it.\n\n"
    if MARK in text:
        head, _, rest = text.partition(MARK)
        _, _, tail = rest.partition(MARK)
        text = head + section + tail
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    OUT.write_text(text)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
