"""make bench-kernels: instructions per MAC of the int8 forward kernels on the layer shapes of
MobileNetV2-w0.35 at 128x128 (Keras' definition: 52 convs), bare-metal on qemu's Cortex-M7
(mps2-an500, DSP extension), Cortex-M3 (mps2-an385) and Cortex-M0 (microbit), counted exactly between
two marker calls by ../shared/tools/qemu-insn-count. Compares this project's channels-last kernels
(c_src/mct_*_s8_hwc.c, the engine's) and CMSIS-NN v7 (../shared/vendor, M7 and M3 only; skipped with a
message where ../shared is absent), all built with arm-none-eabi-gcc -O2. (The channel-planar kernels
that the engine ran before it went channels-last were measured beside them up to that change: their
figures are in the git history of docs/benchmarks.md.)
Writes its section of docs/benchmarks.md."""
import argparse
import datetime
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import bare_build
import benchlib

ROOT = bare_build.ROOT
SHARED = ROOT.parent / "shared"
PLUGIN_SRC = SHARED / "tools" / "qemu-insn-count" / "insn_mark.c"
PLUGIN = ROOT / "build" / "plugin" / "insn_mark.so"
CMSIS_DIR = ROOT / "build" / "cmsis"
RUN_DIR = ROOT / "build" / "bench" / "kernels"
MARK = "<!-- bench-kernels -->"
POINTWISE, DEPTHWISE, CONV = 0, 1, 2
KIND = {POINTWISE: "pointwise", DEPTHWISE: "depthwise", CONV: "first conv"}
# CMSIS-NN's sources for the four kernels and what they call (the s8 support functions)
CMSIS_CONV = ["arm_convolve_1x1_s8_fast.c", "arm_depthwise_conv_3x3_s8.c", "arm_depthwise_conv_s8_opt.c",
              "arm_convolve_s8.c", "arm_convolve_get_buffer_sizes_s8.c", "arm_depthwise_conv_get_buffer_sizes_s8.c",
              "arm_nn_mat_mult_kernel_s8_s16.c", "arm_nn_mat_mult_kernel_row_offset_s8_s16.c",
              "arm_depthwise_conv_s8.c"]


def make_divisible(v, divisor=8):
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def mbv2_layers(alpha=0.35, size=128):
    """Keras' MobileNetV2 convs as (kind, in_h, in_w, in_c, out_h, out_w, out_c, k, stride, pad_top,
    pad_left): a stride-2 conv pads 0 above/left and 1 below/right (ZeroPadding2D + 'valid')."""
    layers = []

    def conv(kind, h, c_in, c_out, k, s):
        pad = (k // 2) if s == 1 else (k // 2 - 1 + h % 2)
        oh = (h + 2 * (k // 2) - k) // s + 1 if s == 1 else (h + 1) // 2
        layers.append((kind, h, h, c_in, oh, oh, c_out, k, s, pad, pad))
        return oh

    h = conv(CONV, size, 3, make_divisible(32 * alpha), 3, 2)
    c = make_divisible(32 * alpha)
    for t, ch, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                        (6, 320, 1, 1)]:
        out = make_divisible(ch * alpha)
        for i in range(n):
            e = c * t
            if t != 1:
                conv(POINTWISE, h, c, e, 1, 1)
            h = conv(DEPTHWISE, h, e, e, 3, s if i == 0 else 1)
            conv(POINTWISE, h, e, out, 1, 1)
            c = out
    conv(POINTWISE, h, c, 1280, 1, 1)
    return layers


def macs(layer):
    kind, _, _, c_in, oh, ow, c_out, k, *_ = layer
    return oh * ow * c_out * k * k * (1 if kind == DEPTHWISE else c_in)


def cmsis_sources():
    """CMSIS-NN unpacked into build/cmsis/, or None (with a message) where ../shared is absent."""
    tars = sorted((SHARED / "vendor").glob("cmsis-nn-*.tar.gz"))
    if not tars:
        print(f"bench-kernels: no CMSIS-NN under {SHARED / 'vendor'}: measuring without it")
        return None
    root = CMSIS_DIR / "cmsis-nn"
    if not root.exists():
        CMSIS_DIR.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tars[-1]) as t:
            t.extractall(CMSIS_DIR)
    support = [p for p in sorted((root / "Source" / "NNSupportFunctions").glob("*.c"))
               if not any(s in p.name for s in ("f16", "f32", "flt", "lstm", "_s4"))]
    return [root / "Source" / "ConvolutionFunctions" / f for f in CMSIS_CONV] + support, root / "Include"


def plugin():
    if not PLUGIN.exists() or PLUGIN.stat().st_mtime < PLUGIN_SRC.stat().st_mtime:
        PLUGIN.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(PLUGIN), str(PLUGIN_SRC)], check=True)
    return PLUGIN


def measure(core, shapes, cmsis):
    """{(shape index, impl): (instructions, bytes differing from hwc's output)} on one core."""
    srcs = [bare_build.BARE / "kernels_bench.c"] + bare_build.KERNELS_HWC
    includes, flags, name = [], [], "kernels_bench"
    if cmsis and core != "m0":
        srcs += cmsis[0]
        includes, flags, name = [cmsis[1]], ["-DBENCH_CMSIS"], "kernels_bench_cmsis"
    elf = bare_build.build(name, core, srcs, includes, flags, ldscript="bench.ld")
    nm = subprocess.run(["arm-none-eabi-nm", str(elf)], check=True, capture_output=True, text=True).stdout
    mark = next(int(ln.split()[0], 16) & ~1 for ln in nm.splitlines() if ln.endswith(" bare_mark"))
    run = RUN_DIR / core
    run.mkdir(parents=True, exist_ok=True)
    (run / "layers.bin").write_bytes(b"".join(
        b"".join(int(v).to_bytes(4, "little", signed=True) for v in s) for s in shapes))
    marks = run / "marks.txt"
    r = bare_build.run(elf, core, run, plugin=f"{plugin()},mark={mark:#x},out={marks}", timeout=3000)
    if r.returncode != 0:
        raise SystemExit(f"bench-kernels: {core} failed:\n{r.stdout}{r.stderr}")
    counts = [int(ln.split()[2]) for ln in marks.read_text().splitlines() if ln.startswith("MARK")]
    # qemu writes the semihosting console to stderr when stdout is not a terminal
    results = [ln.split()[1:] for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("R ")]
    assert len(counts) == 2 * len(results), (len(counts), len(results))
    cost = {(int(i), impl): (counts[2 * n + 1] - counts[2 * n], int(d)) for n, (i, impl, d) in enumerate(results)}
    base = cost.pop((-1, "empty"))[0]            # the mark call's own instructions
    return {k: (v - base, d) for k, (v, d) in cost.items()}


def qemu_version():
    out = subprocess.run([bare_build.QEMU, "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "qemu"


def code_bytes(core, sources):
    """Bytes of code and constants (.text) of `sources` compiled for the core at -O2."""
    out = bare_build.OUT / f"size_{core}"
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    for src in sources:
        obj = out / (Path(src).stem + ".o")
        subprocess.run([bare_build.CC, "-std=c99", "-O2", "-mthumb", f"-mcpu={bare_build.CORES[core][0]}",
                        "-mfloat-abi=soft", "-I", str(ROOT / "c_src"), "-c", str(src), "-o", str(obj)], check=True)
        size = subprocess.run(["arm-none-eabi-size", str(obj)], check=True, capture_output=True, text=True).stdout
        total += int(size.splitlines()[-1].split()[0])
    return total


def shape_text(s):
    kind, h, w, ci, oh, ow, co, k, st, *_ = s
    if kind == DEPTHWISE:
        return f"{h}x{w}x{ci} {k}x{k}/{st}"
    return f"{h}x{w}x{ci} -> {co}" + (f" {k}x{k}/{st}" if kind == CONV else "")


def cmsis_impl(kind, impls):
    """The CMSIS-NN kernel of a layer: what its wrapper picks (3x3 on DSP cores where it applies)."""
    if kind != DEPTHWISE:
        return "cmsis"
    return "cmsis_3x3" if "cmsis_3x3" in impls else "cmsis_opt"


def report(layers, shapes, res, cores, cmsis, argv):
    count = Counter(layers)
    lines = [f"## Kernels: instructions per MAC, MobileNetV2-w0.35 at 128x128 (bare metal)", "",
             f"`{argv}` on {datetime.date.today().isoformat()}; {benchlib.machine_line()}; {qemu_version()}.", "",
             "Exact instruction counts (qemu-insn-count plugin) of one call of each kernel on each layer shape of "
             "Keras' MobileNetV2 (alpha 0.35, 128x128: "
             f"{len(layers)} convs, {sum(macs(s) for s in layers) / 1e6:.2f} M MACs), divided by the layer's MACs; "
             "arm-none-eabi-gcc 12.2 -O2, bare metal (bench/bare/), random int8 data. `hwc`: this project's "
             "channels-last kernels (c_src/mct_*_s8_hwc.c), which the engine runs; "
             "`CMSIS-NN`: v7's arm_convolve_1x1_s8_fast, arm_depthwise_conv_3x3_s8 (3x3 with padding <= 1 on the DSP "
             "core, as its wrapper picks) or arm_depthwise_conv_s8_opt, arm_convolve_s8. M7: qemu mps2-an500 (DSP "
             "extension), M3: mps2-an385, M0: microbit. tests/test_kernels_hwc.py holds ours bit-exact with the "
             "numpy reference; here CMSIS-NN's output is compared with theirs.", ""]
    if not cmsis:
        lines += ["CMSIS-NN was not measured: ../shared/vendor is absent.", ""]
    cols = [(c, i) for c in cores for i in (["hwc", "cmsis"] if cmsis and c != "m0" else ["hwc"])]
    head = {"hwc": "hwc", "cmsis": "CMSIS-NN"}
    lines.append("| op | shape | n | MACs | " + " | ".join(f"{c.upper()} {head[i]}" for c, i in cols) + " |")
    lines.append("|---|---|---|---|" + "---|" * len(cols))
    totals = {}
    for n, s in enumerate(shapes):
        kind = s[0]
        row = [KIND[kind], shape_text(s), str(count[s]), f"{macs(s) / 1e3:.0f} k"]
        for c, i in cols:
            impls = {k[1] for k in res[c] if k[0] == n}
            impl = cmsis_impl(kind, impls) if i == "cmsis" else i
            v, _ = res[c][(n, impl)]
            row.append(f"{v / macs(s):.2f}")
            for key in ((c, i, kind), (c, i, "all")):
                t = totals.setdefault(key, [0, 0])
                t[0] += v * count[s]
                t[1] += macs(s) * count[s]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Totals over the 52 convs (instructions / MACs, each shape weighted by how often it occurs):", "",
              "| op kind | MACs | " + " | ".join(f"{c.upper()} {head[i]}" for c, i in cols) + " |",
              "|---|---|" + "---|" * len(cols)]
    for kind in (POINTWISE, DEPTHWISE, CONV, "all"):
        t0 = totals[(cols[0][0], cols[0][1], kind)]
        cells = [f"{totals[(c, i, kind)][0] / totals[(c, i, kind)][1]:.2f}" for c, i in cols]
        lines.append(f"| {KIND.get(kind, 'all convs')} | {t0[1] / 1e6:.2f} M | " + " | ".join(cells) + " |")
    lines.append("")
    all_instr = {f"{c.upper()} {head[i]}": totals[(c, i, "all")][0] / 1e6 for c, i in cols}
    lines.append("Instructions over all convs (millions): " + ", ".join(f"{k} {v:.1f}" for k, v in all_instr.items())
                 + ".")
    lines += checks(shapes, res, cores, cmsis, totals, count)
    hwc = [p for p in bare_build.KERNELS_HWC if p.name.endswith("_hwc.c")]
    lines.append("- Code (.text at -O2) of the three kernels: " + ", ".join(
        f"{c.upper()} {code_bytes(c, hwc)} B" for c in cores) + ".")
    # the outputs: every implementation against hwc's, byte for byte
    diffs = {(c, impl): d for c in cores for (n, impl), (v, d) in res[c].items() if d}
    lines += ["", "Outputs: " + ("every implementation's output equals hwc's, byte for byte, on every shape and core."
                                 if not diffs else f"differ from hwc's: {diffs}"), ""]
    return "\n".join(lines)


# ../shared/docs/environment.md's measurement of CMSIS-NN (M7, M3 at -O2 on the same model): the
# harness check. And issue 13's targets for the channels-last kernels on qemu-m7.
PEER_REFERENCE = {"m7": (3.10, 8.02, 75.7), "m3": (4.00, 9.60, 94.2)}
TARGETS = {POINTWISE: 1.5, DEPTHWISE: 3.0}


def checks(shapes, res, cores, cmsis, totals, count):
    """The harness against the reference measurement, the targets, and per layer shape against CMSIS-NN."""
    out = []
    for core in [c for c in cores if c in PEER_REFERENCE and cmsis]:
        pw, dw, total = PEER_REFERENCE[core]
        # the reference's depthwise figure is arm_depthwise_conv_3x3_s8 alone, wherever it applies
        t3 = [0, 0]
        for n, s in enumerate(shapes):
            if (n, "cmsis_3x3") in res[core]:
                t3[0] += res[core][(n, "cmsis_3x3")][0] * count[s]
                t3[1] += macs(s) * count[s]
        m = totals[(core, "cmsis", POINTWISE)], totals[(core, "cmsis", "all")]
        out.append(f"Harness check, CMSIS-NN on {core.upper()}: pointwise {m[0][0] / m[0][1]:.2f} instructions/MAC "
                   f"(reference {pw:.2f}), depthwise 3x3 {t3[0] / t3[1]:.2f} ({dw:.2f}), all convs "
                   f"{m[1][0] / 1e6:.1f} M instructions ({total:.1f} M) in ../shared/docs/environment.md.")
    if "m7" in cores:
        for kind, target in TARGETS.items():
            t = totals[("m7", "hwc", kind)]
            v = t[0] / t[1]
            out.append(f"Target (issue 13), {KIND[kind]} on M7 <= {target}: {v:.2f}, "
                       + ("met." if v <= target else "missed."))
    for core in [c for c in cores if cmsis and c != "m0"]:
        worse = []
        for n, s in enumerate(shapes):
            impls = {k[1] for k in res[core] if k[0] == n}
            if res[core][(n, "hwc")][0] > res[core][(n, cmsis_impl(s[0], impls))][0]:
                worse.append(f"{KIND[s[0]]} {shape_text(s)}")
        out.append(f"At or below CMSIS-NN on {core.upper()}: {len(shapes) - len(worse)} of {len(shapes)} layer shapes"
                   + (f"; above on {', '.join(worse)}." if worse else "."))
    return [""] + [f"- {ln}" for ln in out]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", default="m7,m3,m0")
    ap.add_argument("--docs", type=Path, default=benchlib.DOCS)
    args = ap.parse_args()
    missing = bare_build.missing_tools()
    if missing:
        raise SystemExit(f"bench-kernels: {missing} not installed (tools/install_deps.sh)")
    if not PLUGIN_SRC.exists():
        print(f"bench-kernels: skipped: it counts instructions with {PLUGIN_SRC}, and ../shared is absent")
        return
    layers = mbv2_layers()
    shapes = list(dict.fromkeys(layers))
    cmsis = cmsis_sources()
    cores = args.cores.split(",")
    res = {}
    for core in cores:
        print(f"bench-kernels: {core} ...", flush=True)
        res[core] = measure(core, shapes, cmsis)
    text = report(layers, shapes, res, cores, cmsis, "make bench-kernels")
    print(text)
    benchlib.write_section(MARK, text, args.docs)


if __name__ == "__main__":
    main()
