"""`make bench-speed`: training speed and memory of the mcutrain engine against PyTorch, in one run.

For each model: training steps per second (batch 1) of the unix-port engine (build/firmware/unix)
and of PyTorch on the CPU (float32 model of the same `.mct`, the same sparse scheme and a full
fine-tune, `torch.set_num_threads(1)`), each in its own process, whose peak resident memory is read
read by each process itself (VmHWM); and the instructions per inference and per training step on
the emulated Cortex-M boards (qemu -icount shift=0) where the model fits. Writes its section of
docs/benchmarks.md.

    python bench/bench_speed.py [--quick]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as B  # noqa: E402
import bench_accuracy as A  # noqa: E402

ROOT = B.ROOT
MARK = "<!-- bench-speed -->"


def run(cmd, **kw):
    """(returncode, output) of cmd. Each measured process reports its own peak RSS (VmHWM of
    /proc/self/status): the rusage of a child forked from this big process would count this one's."""
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    return proc.returncode, proc.stdout


def peak_rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return -1


def result_line(out, what):
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT")]
    if not line:
        raise RuntimeError(f"{what} printed no RESULT:\n{out[-3000:]}")
    return [float(v) for v in line[0].split()[1:]]


def unix_port(mct, x, y):
    """(steps/s, inferences/s, peak RSS KiB, workspace bytes) of the unix-port engine."""
    from host_tools.boards import runners as boards
    binary = boards.find_firmware("unix")
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as tmp:
        tmp = Path(tmp)
        shutil.copyfile(ROOT / "bench" / "speed_step.py", tmp / "speed_step.py")
        shutil.copyfile(ROOT / "boards" / "lib" / "romfile.py", tmp / "romfile.py")
        shutil.copyfile(mct, tmp / "model.mct")
        (tmp / "data.bin").write_bytes(B.device_rows(x).tobytes())
        (tmp / "labels.bin").write_bytes(y.astype(np.uint8).tobytes())
        rc, out = run([str(binary), "-X", "heapsize=16M", "speed_step.py"], cwd=tmp)
    if rc:
        raise RuntimeError(f"unix port failed:\n{out[-3000:]}")
    fwd_us, step_us, workspace, rss = result_line(out, "unix port")
    return 1e6 / step_us, 1e6 / fwd_us, rss, int(workspace)


def core_o2(mct, x, y):
    """Steps/s of the same C core built with -O2 (the ctypes library of host_tools/ccore) in this process:
    what the unix port (whose MicroPython build uses -Os) leaves on the table."""
    model = B.core_model(B.mct_format.read(mct).data)
    x = B.device_rows(x)
    model.train_step(x[0], int(y[0]), 0.001)
    t = time.perf_counter()
    for i in range(len(y)):
        model.train_step(x[i], int(y[i]), 0.001)
    return len(y) / (time.perf_counter() - t)


def torch_child(mct, train, n, size, channels):
    """Runs in its own process: steps/s of PyTorch SGD on the float model of mct (1 thread)."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(1)
    net = B.float_net(B.mct_format.read(mct), train)
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=(n + 1, channels, size, size)).astype(np.int8)
    y = rng.integers(0, 10, size=n + 1)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-4)

    def step(i):
        loss = F.cross_entropy(net(x[i:i + 1]), torch.tensor([int(y[i])]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    step(n)                                     # warm-up
    t = time.perf_counter()
    for i in range(n):
        step(i)
    dt = (time.perf_counter() - t) / n
    with torch.no_grad():
        t = time.perf_counter()
        for i in range(n):
            net(x[i:i + 1])
        fwd = (time.perf_counter() - t) / n
    print(f"RESULT {1 / dt} {1 / fwd} {torch.get_num_threads()} {peak_rss_kib()}")


def torch_run(mct, train, n, size, channels):
    rc, out = run([B.PYTHON, __file__, "--torch-child", str(mct), train, str(n), str(size), str(channels)], cwd=ROOT)
    if rc:
        raise RuntimeError(f"PyTorch child failed:\n{out[-3000:]}")
    steps, fwd, threads, rss = result_line(out, "PyTorch")
    return steps, fwd, rss, int(threads)


def python_torch_rss():
    """Peak RSS of a Python process that only imports torch (the floor of every PyTorch row)."""
    code = "import torch; print(next(ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')).split()[1])"
    return int(run([B.PYTHON, "-c", code])[1].split()[-1])


def mcu_instructions(board, mct, x, y):
    """(instructions per inference, per training step) on an emulated board, or None if it does not fit."""
    from host_tools.boards import runners as boards
    with tempfile.TemporaryDirectory(prefix="bench-mcu-") as tmp:
        tmp = Path(tmp)
        shutil.copyfile(mct, tmp / "model.mct")
        (tmp / "data.bin").write_bytes(B.device_rows(x).tobytes())
        (tmp / "labels.bin").write_bytes(y.astype(np.uint8).tobytes())
        res = boards.run_script(board, ROOT / "bench" / "speed_step.py",
                                [tmp / "model.mct", tmp / "data.bin", tmp / "labels.bin",
                                 ROOT / "boards" / "lib" / "romfile.py"], icount=True, timeout=1200)
    if res.returncode:
        return None, res.output.strip().splitlines()[-1] if res.output.strip() else "failed"
    fwd_us, step_us = result_line(res.output, board)[:2]
    return (int(fwd_us * 1000), int(step_us * 1000)), None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="few steps, the small models only (smoke test)")
    p.add_argument("--docs", type=Path, default=B.DOCS)
    p.add_argument("--boards", default="qemu-m3,qemu-m7", help="emulated boards for the instruction counts")
    p.add_argument("--demo-dir", type=Path, default=A.DEMO_DIR, help="examples/pretrain_fashion.py's output")
    p.add_argument("--torch-child", nargs=5, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.torch_child:
        mct, train, n, size, channels = args.torch_child
        torch_child(mct, train, int(n), int(size), int(channels))
        return 0
    t_start = time.time()
    work = Path(tempfile.mkdtemp(prefix="bench-speed-", dir=A.WORK if A.WORK.exists() else None))
    rows, notes = [], []
    tasks = {t.key: t for t in A.make_tasks(False, args.demo_dir)}
    # (task, steps measured on the host, images for the MCU count)
    plan = [("demo", 50 if args.quick else 300, 5), ("small-mbv2-64", 5 if args.quick else 50, 2)]
    if not args.quick:
        plan.append(("mit-mbv2-w0.35", 30, 0))
    boards_to_run = [b for b in args.boards.split(",") if b]
    from host_tools.boards import runners as hb
    torch_floor = python_torch_rss()
    try:
        for key, n, n_mcu in plan:
            t = tasks[key]
            why = A.available(t)
            if why:
                notes.append(f"{key} not measured: {why}")
                print(notes[-1])
                continue
            if t.prepare:
                t.prepare(t)
            mct = A.convert_setting(t, A.Setting("", "", "core"), work)
            x, y = B.fashion_int8("train", np.arange(n), t.size, t.channels)
            u_steps, u_fwd, u_rss, workspace = unix_port(mct, x, y)
            print(f"{key}: unix port {u_steps:.1f} steps/s, {u_fwd:.1f} inferences/s, peak RSS {u_rss} KiB", flush=True)
            row = dict(task=key, title=t.title, n=n, unix=(u_steps, u_fwd, u_rss), workspace=workspace,
                       o2=core_o2(mct, x, y))
            print(f"{key}: C core -O2 (ctypes) {row['o2']:.1f} steps/s", flush=True)
            for train in ("scheme", "all"):
                s, f, rss, threads = torch_run(mct, train, n, t.size, t.channels)
                row[f"torch-{train}"] = (s, f, rss)
                print(f"{key}: PyTorch ({train}, {threads} thread) {s:.1f} steps/s, {f:.1f} inferences/s, "
                      f"peak RSS {rss} KiB", flush=True)
            row["mcu"] = {}
            if not n_mcu:
                notes.append(f"{key} is not run on the emulated boards: its workspace ({workspace / 1024:.0f} KiB) "
                             f"is larger than their 256 KB of SRAM")
            for board in boards_to_run if n_mcu else []:
                if not hb.firmware_path(board).exists():
                    note = f"no firmware for {board} (make firmware BOARD={board})"
                    notes += [note] if note not in notes else []
                    continue
                counts, err = mcu_instructions(board, mct, x[:n_mcu], y[:n_mcu])
                row["mcu"][board] = counts or err
                print(f"{key}: {board} {counts or err}", flush=True)
            rows.append(row)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    wall = time.time() - t_start
    write(rows, notes, torch_floor, wall, args)
    return 0


def write(rows, notes, torch_floor, wall, args):
    import torch
    qemu = subprocess.run(["qemu-system-arm", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    lines = ["## Speed and memory against PyTorch (`make bench-speed`)", "",
             f"Command: `make bench-speed`{' (--quick)' if args.quick else ''}. Date: "
             f"{time.strftime('%Y-%m-%d', time.gmtime())}. Machine: {B.machine_line()}; PyTorch "
             f"{torch.__version__} with `torch.set_num_threads(1)`; run time {wall / 60:.1f} min. All rows of a "
             "model were measured in the same run, one process each (peak RSS = VmHWM of that process, "
             "read by itself at its end). Batch 1, SGD. The engine is the unix-port MicroPython "
             "(build/firmware/unix, `-X heapsize=16M`, the model file read into its heap); PyTorch trains the "
             "float32 model of the same `.mct` (bench/benchlib.py `float_net`) on the same scheme "
             "(gradient masks) or every layer. A process that only imports torch peaks at "
             f"{torch_floor / 1024:.0f} MiB. The machine is shared, so absolute rates move between runs; "
             "the ratios are from one run. 'C core -O2' is the same C code as a shared library built with -O2 "
             "(host_tools/ccore), timed through ctypes in the benchmark's process; the unix port compiles the "
             "mcutrain module at -O2 too (per-file flags) and the rest of MicroPython at -Os. On x86-64 the int8 "
             "convs run their SSE2 path (c_src/mct_gemm_s8_sse2.h, the baseline of every x86-64 CPU), the float32 "
             "backward of pointwise convs the register-blocked C loops of c_src/mct_backward_pw_f32.c, whose "
             "weight gradient and two-column input gradient run as SSE2 (c_src/mct_backward_pw_sse2.h, the same "
             "operations in the same order).", "",
             "| model | steps timed | mcutrain unix port steps/s | PyTorch sparse steps/s | PyTorch full steps/s | "
             "mcutrain vs PyTorch sparse | C core -O2 steps/s | mcutrain RSS | PyTorch sparse RSS | "
             "PyTorch full RSS | RSS ratio (PyTorch sparse / mcutrain) | model workspace (arena + trained copies) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        u, s, f = r["unix"], r["torch-scheme"], r["torch-all"]
        lines.append(f"| {r['title']} | {r['n']} | {u[0]:.1f} | {s[0]:.1f} | {f[0]:.1f} | {u[0] / s[0]:.2f}x | "
                     f"{r['o2']:.1f} | {u[2] / 1024:.1f} MiB | {s[2] / 1024:.0f} MiB | {f[2] / 1024:.0f} MiB | "
                     f"{s[2] / u[2]:.0f}x | {r['workspace'] / 1024:.1f} KiB |")
    ratios = [r["unix"][0] / r["torch-scheme"][0] for r in rows]
    lines += ["", f"Target (issue 13): the unix port at 1.0x PyTorch's sparse-scheme steps/s or more on every task, "
              f"{'met' if ratios and min(ratios) >= 1.0 else 'missed'}; stretch 2x: met on "
              f"{sum(x >= 2.0 for x in ratios)} of {len(ratios)}."]
    lines += ["", "Inference (batch 1) in the same processes: " + "; ".join(
        f"{r['task']}: mcutrain {r['unix'][1]:.0f}/s, PyTorch {r['torch-scheme'][1]:.0f}/s" for r in rows) + ".", ""]
    mcu = [(r, b, c) for r in rows for b, c in r["mcu"].items()]
    if mcu:
        lines += [f"Instructions on the emulated Cortex-M ({qemu}, `-icount shift=0`, mean over a few images; "
                  "instructions, not cycles):", "",
                  "| model | board | instructions / inference | instructions / training step |", "|---|---|---|---|"]
        for r, b, c in mcu:
            if isinstance(c, tuple):
                lines.append(f"| {r['task']} | {b} | {c[0]:,} | {c[1]:,} |")
            else:
                lines.append(f"| {r['task']} | {b} | does not run: {c} | |")
        lines.append("")
    lines += [f"- {n}" for n in notes]
    B.write_section(MARK, "\n".join(lines), args.docs)
    print(f"wrote {args.docs}")


if __name__ == "__main__":
    sys.exit(main())
