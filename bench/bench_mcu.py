"""`make bench-mcu`: instructions per inference and per training step on every emulated MCU (qemu
-icount shift=0: a count of instructions, not of the host's time), the fast kernels against their
baselines in the same run (qemu-m7 SIMD vs its MCT_PORTABLE build, qemu-m3 vs its
MCT_REFERENCE_KERNELS build), and where the instructions go, op by op; beside them the real Pico
firmware's cycles in rp2040js (bench/rp2_pico.py); written to docs/benchmarks.md. Models: the demo
model (build/demo, from make demo) and, when ../shared/models/mit is present, MbV2-w0.35 at 128x128
with its 99 KB scheme (qemu boards) and with the largest scheme that fits the Pico (rp2-pico, qemu-m0).
`--model` measures one model, `--targets` only the training steps of issue 13's target models, on the
runs `--boards` names; both print, leaving docs/benchmarks.md alone."""
import argparse
import datetime
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import benchlib  # noqa: E402  (bench/, on sys.path as the script's folder)
import rp2_pico  # noqa: E402
from host_tools.boards import runners as boards  # noqa: E402
from host_tools.model import mct_format  # noqa: E402
from host_tools.model import graph as g  # noqa: E402

DEMO = ROOT / "build" / "demo"
MIT = benchlib.MIT
SHARED = "../shared/models/mit"
OUT = ROOT / "docs" / "benchmarks.md"
MARK = "<!-- bench-mcu -->"
FIRMWARE = ROOT / "build" / "firmware"
# (label, board, firmware: None for the board's own build)
RUNS = [("qemu-m3", "qemu-m3", None),
        ("qemu-m3 reference kernels", "qemu-m3", FIRMWARE / "qemu-m3-reference" / "firmware.elf"),
        ("qemu-m7", "qemu-m7", None),
        ("qemu-m7 portable", "qemu-m7", FIRMWARE / "qemu-m7-portable" / "firmware.elf"),
        ("qemu-m0", "qemu-m0", None),
        ("rp2-pico", "rp2-pico", None)]   # the real Pico firmware in rp2040js: cycles (bench/rp2_pico.py)
# MbV2-w0.35: the 99 KB scheme on every board; on the Pico and qemu-m0 also the paper's largest scheme
# (138 KB) with the Pico's default backward, the integer one, which fits the Pico's GC heap with 11 KB to
# spare (not qemu-m0's, whose 16 KB stack leaves less). One image: rp2040js is slow.
MBV2 = dict(scheme="99kb", backward="float", boards=None, n=2)
MBV2_PICO = dict(scheme="138kb", backward="int", boards=("qemu-m0", "rp2-pico"), n=1)


def mit_model(tmp, name, scheme, n, seed, backward="float", extra=()):
    """A MIT model at its scheme, converted once into build/bench (benchlib.mit_mct), and n random inputs
    with labels in tmp (the instruction count of an int8 forward does not depend on the values, that of
    the backward barely). Returns the .mct's path."""
    mct = benchlib.mit_mct(name, scheme, backward, extra)
    m = mct_format.read(mct)
    rng = np.random.default_rng(seed)
    (tmp / "images.bin").write_bytes(rng.integers(-128, 128, size=n * int(np.prod(m.input_shape)),
                                                  dtype=np.int8).tobytes())
    (tmp / "labels.bin").write_bytes(bytes(rng.integers(0, m.n_classes, size=n, dtype=np.uint8)))
    return mct


def demo_model(tmp):
    files = [DEMO / n for n in ("fashion.mct", "train.bin", "train_labels.bin")]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        sys.exit(f"bench-mcu: missing {', '.join(missing)}: run make demo first")
    n = 10
    (tmp / "images.bin").write_bytes(files[1].read_bytes()[:n * 28 * 28])
    (tmp / "labels.bin").write_bytes(files[2].read_bytes()[:n])
    return dict(name="FashionNet (demo)", mct=files[0], n_fwd=n, n_step=n,
                what="`build/demo/fashion.mct` from `make demo`: FashionNet, 28x28, classifier + last 2 conv "
                     "biases trained; mean over 10 Fashion-MNIST images")


# --model's short names of the MIT models: (name in ../shared/models/mit, title, resolution)
MIT_MODELS = {"mbv2": ("mbv2-w0.35", "MbV2-w0.35", 128), "proxyless": ("proxyless-w0.3", "Proxyless-w0.3", 128),
              "mcunet": ("mcunet-5fps", "MCUNet-5FPS", 128)}


def mbv2_model(tmp, scheme, backward, boards, n, model="mbv2"):
    """MbV2-w0.35 (the paper's model), or another of MIT_MODELS, at a scheme, n random inputs."""
    mit, title, res = MIT_MODELS[model]
    mct = mit_model(tmp, mit, scheme, n, seed=0, backward=backward)
    convert = benchlib.mit_convert_args(mit, scheme, backward)
    name = f"{title} {res}x{res}, {scheme[:-2]} KB scheme" + (", integer backward" if backward == "int" else "")
    return dict(name=name, mct=mct, n_fwd=n, n_step=n, boards=boards,
                what=f"{title} of `../shared/models/mit` at {res}x{res} (its resolution), {scheme[:-2]} KB scheme, "
                     f"update rule stochastic, {'integer' if backward == 'int' else 'float32'} backward "
                     f"(`python -m host_tools convert {' '.join(convert).replace(str(MIT), SHARED)}`); "
                     + (f"mean over {n} random images" if n > 1 else "one random image"))


# Issue 13's targets: the paper's training step (TTE ms/image on the STM32F746 at 216 MHz, the ~100 KB
# schemes; ../shared/docs/method.md) in cycles, against qemu-m7's instructions per step.
PAPER_STEP_MS = [("mbv2-w0.35", "99kb", 373), ("proxyless-w0.3", "98kb", 443), ("mcunet-5fps", "99kb", 546)]


STRETCH = 0.7          # issue 13's stretch: this fraction of the paper's cycles

# The two plans the targets are measured with: convert's default, and the faster step that keeps every
# clamp mask (a larger workspace).
TARGET_PLANS = [("default plan", ()), ("--recompute none", ("--recompute", "none"))]


def paper_targets(tmp, names=None, board="qemu-m7", firmware=None):
    """[(model, scheme, target M cycles, [per TARGET_PLANS: (M instructions per step, workspace bytes) on
    the board, or an error])], of the models named in names (None: all)."""
    rows = []
    for name, scheme, ms in PAPER_STEP_MS:
        if names and name not in names:
            continue
        measured = []
        for plan, extra in TARGET_PLANS:
            mct = mit_model(tmp, name, scheme, 2, seed=1, extra=extra)
            (tmp / "model.mct").write_bytes(mct.read_bytes())
            (tmp / "runs.txt").write_text("1 2 0 1000")
            res = boards.run_script(board, ROOT / "bench" / "mcu_cost.py",
                                    [tmp / n for n in ("model.mct", "images.bin", "labels.bin", "runs.txt")],
                                    icount=True, timeout=1800, firmware=firmware)
            result = [ln.split() for ln in res.output.splitlines() if ln.startswith("RESULT")]
            got = ((int(result[0][2]) / 1e6, int(result[0][3])) if result and not res.returncode
                   else res.output.strip()[-200:])
            measured.append(got)
            print(f"target {name} {scheme} on {board}, {plan}: {got}", flush=True)
        rows.append((name, scheme, ms * 216e-3, measured))
    return rows


def target_lines(rows):
    lines = ["### The paper's training step against qemu-m7", "",
             "Issue 13's targets: the paper's time per training step on the STM32F746 (Cortex-M7 at 216 MHz, "
             "TTE, ~100 KB schemes, ../shared/docs/method.md) in cycles, beside qemu-m7's instructions per step "
             "(2 random images, update rule stochastic). Instructions are not cycles: a Cortex-M7 issues up to "
             "two per cycle and waits on Flash, so the ratio is an estimate of the gap, not a measurement of it. "
             "Each model is measured as convert plans it by default, where fused blocks recompute their "
             "expansion's clamp masks wherever that lowers the memory peak, and with `--recompute none`, "
             "which keeps every mask: a faster step for a larger workspace (measured on the board).",
             "", "| model | scheme | target: paper's step (M cycles) | "
             + " | ".join(f"{plan}: M instructions / step (ratio), workspace" for plan, _ in TARGET_PLANS) + " |",
             "|---|---|---|" + "---|" * len(TARGET_PLANS)]
    for name, scheme, target, measured in rows:
        cells = [f"did not run: {got}" if isinstance(got, str) else
                 f"{got[0]:.1f} ({got[0] / target:.2f}x), {got[1] / 1024:.1f} KB" for got in measured]
        lines.append(f"| {name} | {scheme} | {target:.1f} | " + " | ".join(cells) + " |")
    lines.append("")
    for i, (plan, _) in enumerate(TARGET_PLANS):
        ok = [name for name, _, target, measured in rows
              if not isinstance(measured[i], str) and measured[i][0] <= STRETCH * target]
        lines.append(f"- Stretch target ({STRETCH}x the paper's cycles), {plan}: met on {len(ok)} of {len(rows)}"
                     + (f" ({', '.join(ok)})." if ok else "."))
    return lines + [""]


def forward_line(model, results, board="qemu-m7"):
    """Issue 13's whole-forward target: the board's instructions per inference over the model's forward
    multiply-accumulates (op_work, whole tensors)."""
    if "fwd" not in results.get(board, {}):
        return []
    m = mct_format.read(model["mct"])
    macs = sum(op_work(k, op, m)[0] for k, op in enumerate(m.ops) if op.weight is not None)
    per_mac = results[board]["fwd"] / macs
    return [f"- Whole forward on {board} (issue 13's target: 2.5 instructions per MAC or fewer): "
            f"{results[board]['fwd']:,} instructions / {macs:,} MACs = {per_mac:.2f}, "
            f"{'met' if per_mac <= 2.5 else 'missed'}.", ""]


def category(k, op, m):
    """The kernel that runs op k (as mct_forward_views dispatches it), or the patch-based stage."""
    if m.stage is not None and k < m.stage.ops:
        return f"patch-based first stage (ops 0-{m.stage.ops - 1}, {m.stage.rows}x{m.stage.cols} tiles)"
    if op.flags & (mct_format.OF_ROWS_FIRST | mct_format.OF_ROWS):
        return "row-streamed blocks (forward at the block's last op)"
    if any(j < len(m.ops) and m.ops[j].flags & mct_format.OF_FUSED for j in (k, k + 1, k + 2)):
        return "fused inverted-residual blocks (backward at the head)"
    if op.type == g.CONV2D:
        c_in = m.acts[op.in0][0]
        if op.kernel == (1, 1) and op.stride == (1, 1) and op.padding == (0, 0):
            return "pointwise conv"
        if op.groups == c_in == m.acts[op.out][0]:
            return f"depthwise conv {op.kernel[0]}x{op.kernel[1]}"
        return "other conv"
    return {g.FC: "fully connected", g.ADD: "residual add"}.get(op.type, "pooling")


def op_work(k, op, m):
    """(forward, backward) work of op k: multiply-accumulates for convs and FC (the backward: the input
    gradient where the input has one, plus the weight gradients of the trained elements), input elements
    for the element-wise ops and pools (the backward: input-gradient elements). Whole tensors: a patch
    stage's recomputed halos count as instructions, not as work."""
    c, h, w = m.acts[op.out][:3]
    has_grad = m.acts[op.in0][4] is not None
    if op.weight is None:
        n_in = int(np.prod(m.acts[op.in0][:3]))
        return n_in, n_in if has_grad else 0
    pixels = h * w if op.type == g.CONV2D else 1
    macs = pixels * m.tensors[op.weight].size
    return macs, (macs if has_grad else 0) + pixels * m.trained_count[op.weight]


def demo_int_model(tmp):
    """The demo model converted with the integer backward (as rp2_pico.backward_cycles converts it)."""
    model = demo_model(tmp)
    mct = tmp / "demo-int.mct"
    subprocess.run([sys.executable, "-m", "host_tools", "convert", *map(str, rp2_pico.DEMO_CONVERT), "--backward",
                    "int", "-o", str(mct)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return dict(model, name="FashionNet (demo), integer backward", mct=mct)


def quick_model(tmp, spec):
    """--model: 'demo', 'demo-int' or 'MODEL:SCHEME:BACKWARD', MODEL one of MIT_MODELS (e.g. mbv2:99kb:int,
    proxyless:98kb:float)."""
    if spec in ("demo", "demo-int"):
        return demo_model(tmp) if spec == "demo" else demo_int_model(tmp)
    model, scheme, backward = spec.split(":")
    return mbv2_model(tmp, scheme, backward, None, 2 if scheme in ("98kb", "99kb") else 1, model)


def run(model, tmp, runs=RUNS):
    (tmp / "model.mct").write_bytes(model["mct"].read_bytes())
    files = [tmp / n for n in ("model.mct", "images.bin", "labels.bin", "runs.txt")]
    m = mct_format.read(model["mct"])
    work = {}
    for k, op in enumerate(m.ops):
        cat = category(k, op, m)
        work[cat] = tuple(a + v for a, v in zip(work.get(cat, (0, 0)), op_work(k, op, m)))
    results = {"work": work}
    for label, board, firmware in runs:
        if model.get("boards") and board not in model["boards"]:
            continue
        if board == "rp2-pico" and rp2_pico.missing():
            results[label] = dict(error=rp2_pico.missing())
            continue
        per_us = rp2_pico.CYCLES_PER_US if board == "rp2-pico" else 1000
        (tmp / "runs.txt").write_text(f"{model['n_fwd']} {model['n_step']} 1 {per_us}")
        res = boards.run_script(board, ROOT / "bench" / "mcu_cost.py", files, icount=board != "rp2-pico",
                                timeout=1800, firmware=firmware)
        lines = res.output.splitlines()
        result = [ln for ln in lines if ln.startswith("RESULT")]
        if res.returncode or not result:
            err = [ln for ln in lines if "Error" in ln]
            results[label] = dict(error=(err[-1] if err else res.output[-200:]).strip())
            print(f"{model['name']}, {label}: did not run: {results[label]['error']}", flush=True)
            continue
        fwd, step, workspace, arena, trained = map(int, result[0].split()[1:])
        ops = {}
        for ln in lines:
            if ln.startswith("LAYER"):
                _, k, _kind, f, b = ln.split()
                cat = category(int(k), m.ops[int(k)], m)
                ops[cat] = tuple(a + int(v) for a, v in zip(ops.get(cat, (0, 0)), (f, b)))
        results[label] = dict(machine=rp2_pico.MACHINE if board == "rp2-pico" else boards.QEMU_BOARDS[board][0], fwd=fwd, step=step, workspace=workspace,
                              arena=arena, trained=trained, ops=ops)
        print(f"{model['name']}, {label}: forward {fwd:,} instructions, train step {step:,}", flush=True)
    return results


def ratio(results, a, b, key):
    if "error" in results.get(a, {"error": 1}) or "error" in results.get(b, {"error": 1}):
        return "n/a"
    return f"{results[b][key] / results[a][key]:.2f}x"


def per_work_lines(ok, work, cats):
    """Instructions (rp2-pico: cycles) per unit of work of each op kind, forward and backward."""
    cols = list(ok)
    lines = ["Instructions per MAC (convs, fully connected) or per input element (add, pools), forward / "
             "backward, by op kind (rp2-pico: cycles). The work comes from the model's shapes (bench/bench_mcu.py "
             "op_work): the backward's MACs are the input gradient where one is needed plus the weight gradients "
             "of the trained elements; a patch stage's recomputed halos count as instructions, not work; '-' where "
             "the op kind does no such work. Each op's figure includes its `Layer.forward()`/`backward()` call from "
             "Python, which weighs on small ops (the demo's FC and pools).", "",
             "| op | work (forward / backward) | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for c in cats:
        wf, wb = work.get(c, (0, 0))
        cells = []
        for col in cols:
            f, b = ok[col]["ops"].get(c, (0, 0))
            cells.append(f"{f / wf:.2f}" if wf else "-")
            cells[-1] += f" / {b / wb:.2f}" if wb else " / -"
        lines.append(f"| {c} | {wf / 1e3:,.0f} k / {wb / 1e3:,.0f} k | " + " | ".join(cells) + " |")
    return lines + [""]


def section_for(model, results):
    work = results.pop("work", {})
    ok = {k: r for k, r in results.items() if "error" not in r}
    base = ok.get("qemu-m3")
    table = ["| board | machine | instructions / inference (rp2-pico: cycles) | instructions / training step | "
             "vs qemu-m3 (step) | model RAM (workspace) | arena | trained copies |",
             "|---|---|---|---|---|---|---|---|"]
    for label, r in results.items():
        if "error" in r:
            table.append(f"| {label} | | did not run: {r['error']} | | | | | |")
            continue
        vs = f"{r['step'] / base['step']:.2f}" if base else ""
        table.append(f"| {label} | {r['machine']} | {r['fwd']:,} | {r['step']:,} | {vs} | {r['workspace']:,} B | "
                     f"{r['arena']:,} B | {r['trained']:,} B |")
    lines = [f"### {model['name']}", "", f"Model: {model['what']}.", "", *table, ""]
    if "qemu-m3" in results:
        lines += [f"- Fast kernels on qemu-m3 against its reference-kernel build: inference "
                  f"{ratio(results, 'qemu-m3', 'qemu-m3 reference kernels', 'fwd')} fewer instructions, training "
                  f"step {ratio(results, 'qemu-m3', 'qemu-m3 reference kernels', 'step')}.",
                  f"- SIMD kernels on qemu-m7 against its portable build: inference "
                  f"{ratio(results, 'qemu-m7', 'qemu-m7 portable', 'fwd')} fewer instructions, training step "
                  f"{ratio(results, 'qemu-m7', 'qemu-m7 portable', 'step')}.", ""]
    cols = [c for c in ok]
    if cols:
        cats = sorted({c for r in ok.values() for c in r["ops"]},
                      key=lambda c: -ok[cols[0]]["ops"].get(c, (0, 0))[0])
        lines += ["Where the instructions of a training step go (millions; forward / backward, op by op through "
                  "`Layer.forward()` and `Layer.backward()`):", "",
                  "| op | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for c in cats:
            cells = []
            for col in cols:
                f, b = ok[col]["ops"].get(c, (0, 0))
                cells.append(f"{f / 1e6:,.2f} / {b / 1e6:,.2f}")
            lines.append(f"| {c} | " + " | ".join(cells) + " |")
        lines.append("")
        lines += per_work_lines(ok, work, cats)
    return lines


def targets_only(names, board):
    """The paper-target models' training steps (those named, or all) on one qemu board, printed."""
    known = [n for n, _, _ in PAPER_STEP_MS]
    unknown = [n for n in names if n not in known]
    if unknown:
        sys.exit(f"bench-mcu: unknown model {', '.join(unknown)} (known: {', '.join(known)})")
    if board not in boards.QEMU_BOARDS:
        sys.exit(f"bench-mcu: --targets runs on one qemu board ({', '.join(sorted(boards.QEMU_BOARDS))}), not {board}")
    if not MIT.is_dir():
        sys.exit(f"bench-mcu: {MIT} is absent")
    with tempfile.TemporaryDirectory(prefix="bench-mcu-") as tmp:
        rows = paper_targets(Path(tmp), names, board)
    if board == "qemu-m7":
        print("\n".join(target_lines(rows)))


def quick(spec, labels):
    """One model on some of the runs, its section printed, docs/benchmarks.md left alone."""
    runs = [r for r in RUNS if r[0] in labels]
    if len(runs) != len(labels):
        sys.exit(f"bench-mcu: --boards takes some of {', '.join(r[0] for r in RUNS)}")
    with tempfile.TemporaryDirectory(prefix="bench-mcu-") as tmp:
        model = quick_model(Path(tmp), spec)
        model.pop("boards", None)
        print("\n".join(section_for(model, run(model, Path(tmp), runs))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="measure one model only and print its section (docs untouched): demo, "
                    "demo-int or MODEL:SCHEME:BACKWARD with MODEL mbv2, proxyless or mcunet, e.g. mbv2:99kb:int, "
                    "proxyless:98kb:float")
    ap.add_argument("--targets", nargs="*", metavar="MODEL", help="measure only the training steps of issue 13's "
                    "target models (those named, or all) on one qemu board, --boards (docs untouched)")
    ap.add_argument("--boards", default="qemu-m7", help="with --model: comma-separated runs (default qemu-m7); "
                    "with --targets: one qemu board")
    args = ap.parse_args()
    if args.targets is not None:
        targets_only(args.targets, args.boards)
        return
    if args.model:
        quick(args.model, args.boards.split(","))
        return
    models = []
    with tempfile.TemporaryDirectory(prefix="bench-mcu-") as tmp:
        tmp = Path(tmp)
        builders = [demo_model] + ([lambda t: dict(mbv2_model(t, **MBV2), forward_target=True),
                                    lambda t: mbv2_model(t, **MBV2_PICO)]
                                   if MIT.is_dir() else [])
        for build in builders:
            model = build(tmp)
            models.append((model, run(model, tmp)))
        backward = None if rp2_pico.missing() else rp2_pico.backward_cycles(tmp)
        targets = paper_targets(tmp) if MIT.is_dir() else None
    qemu = subprocess.run(["qemu-system-arm", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    body = [
        "## Instructions on the emulated MCUs (`make bench-mcu`)",
        "",
        f"Command: `make bench-mcu`. Date: {datetime.date.today()}. Machine: {platform.machine()} host, {qemu}, "
        f"`-icount shift=0` (one instruction per emulated ns; instructions, not cycles).",
        "The engine is channels-last (docs/format.md, Layouts): convs run c_src/mct_*_s8_hwc.c (pointwise as an "
        "int8 GEMM two output channels x two pixels at a time, or on DSP cores with at most 64 input channels "
        "the pixel's channels in registers against a table of the output channels' unpacked weights, depthwise a "
        "block of channels over the taps, the "
        "first conv through a two-pixel im2col; per-op instructions per MAC beside CMSIS-NN: make bench-kernels). "
        "qemu-m3 and qemu-m0 run their portable paths; qemu-m7 their DSP-extension paths (SXTB16/SMLAD, two "
        "MACs per instruction), and 'qemu-m7 portable' is the same firmware built with -DMCT_PORTABLE. "
        "'qemu-m3 reference kernels' is qemu-m3 built with -DMCT_REFERENCE_KERNELS: every conv through the "
        "generic kernel (c_src/mct_conv2d_s8.c, zero point subtracted per tap) and requantization step by step. "
        "The float32 backward is soft-float on qemu-m3 and qemu-m0, hardware single precision on qemu-m7, "
        "where its multiply-adds are VMLA.F32 (one instruction, the product rounded before the add: the same "
        "result as VMUL then VADD; c_src/mct_mla_f32.h, set for Cortex-M7 boards only, since a Cortex-M4 "
        "takes longer for it than for the pair); gradients are channel-planar (one output channel at a time), "
        "the pointwise and depthwise backward register-blocked (c_src/mct_backward_pw_f32.c, mct_backward_dw_f32.c), "
        "the pointwise row loops on qemu-m7 in assembly that moves a row's floats with one VLDM/VSTM "
        "(c_src/mct_backward_vldm_f32.h).",
        "The integer backward (the sections marked so) runs register-blocked int32 kernels (c_src/mct_backward_pw_int.c, "
        "mct_backward_dw_int.c: sums in int32 over runs the bound on T allows, no 64-bit multiply per product); on "
        "qemu-m7 SMLAD takes two products an instruction where |T| <= 2^14 (convs of 130 or more output channels).",
        rp2_pico.BENCH_MCU_NOTE,
        "",
    ]
    if targets:
        body += target_lines(targets)
    for model, results in models:
        body += section_for(model, results)
        if model.get("forward_target"):
            body += forward_line(model, results)
    if backward:
        body += rp2_pico.backward_lines(backward)
    if not MIT.is_dir():
        body += [f"(MbV2-w0.35 not measured: {MIT} is absent.)", ""]
    section = "\n".join(body)
    benchlib.write_section(MARK, section, OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
