"""`make bench-convert`: how long `host_tools convert` spends per 1,000 validation images (the int8
simulation of the report and of the top-1; the rest of a conversion does not depend on --val), at
three revisions in one run: the float64 original, main, and this checkout.

For each model, one process per revision builds the int8 graph, then times, in CPU seconds (one
torch thread: the machine may be shared), what `convert --val` runs on N validation images: the
per-layer SQNR and the top-1 against the float model (PyTorch models), or the int8 top-1 (MIT
models). The other revisions run from `git archive REV` in a temporary folder, with this checkout's
Python. Each timing is the least of --repeat runs, the revisions interleaved. Writes its section of
docs/benchmarks.md.

    python bench/bench_convert.py [--before REV] [--main REV] [--models demo,shift,mbv2-w0.35] [--repeat 3]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as B  # noqa: E402
import shift_net  # noqa: E402

ROOT = B.ROOT
MARK = "<!-- bench-convert -->"
BEFORE = "eb20a1d"          # the last commit with the float64 simulation
MAIN = "main"               # the revision this checkout's simulation replaces
MIT_DIR = Path(os.environ.get("MCT_MIT_MODELS", ROOT.parent / "shared" / "models" / "mit"))
WORK = ROOT / "build" / "bench" / "convert"


def val_npz(n, size, channels):
    """Fashion-MNIST test images as the converter's --val (x float [N, C, size, size] in [0, 1], y)."""
    path = WORK / f"val-{n}-{size}-{channels}.npz"
    if not path.exists():
        x, y = B.fashion_int8("test", np.arange(n), size, channels)
        WORK.mkdir(parents=True, exist_ok=True)
        np.savez(path, x=(x.astype(np.float32) + 128) / 255, y=y)
    return path


def models():
    demo, shift = ROOT / "build" / "demo", shift_net.OUT
    return {
        "demo": dict(kind="torch", model=f"{ROOT / 'examples' / 'fashion_net.py'}:FashionNet",
                     weights=demo / "fashion_net.pt", calib=demo / "calib.npz", shape=(28, 1), n=2000,
                     title="FashionNet (the demo: 11 convs, 2 adds, FC)"),
        "shift": dict(kind="torch", model=f"{ROOT / 'bench' / 'shift_net.py'}:ShiftNet",
                      weights=shift / "shift_net.pt", calib=shift / "calib.npz", shape=(28, 1), n=9800,
                      title="ShiftNet (issue 14's 4 layers: conv, max pool, 2 FC)"),
        "mbv2-w0.35": dict(kind="mit", model=MIT_DIR / "mbv2-w0.35", weights=MIT_DIR / "mbv2-w0.35", calib="",
                           shape=(128, 3), n=300, title="MbV2-w0.35 (MIT int8, 128x128)"),
    }


# Runs in the revision's folder: the modules moved (host_tools/ subpackages), so both places are tried.
DRIVER = """
import json, sys, time
import torch
torch.set_num_threads(1)
try:
    from host_tools.frontends import torch_fx as ct
    from host_tools.frontends.calibrate import load_data
    from host_tools.frontends.mit import load_mit
    from host_tools.cli.convert import load_torch_model
except ImportError:
    import host_tools.convert_torch as ct
    from host_tools.calibrate import load_data
    from host_tools.convert_mit import load_mit
    from host_tools.cmd_convert import load_torch_model
kind, model, weights, calib, val = sys.argv[1:6]
if kind == "torch":
    net = load_torch_model(model, weights)
    graph = ct.convert_torch(net, load_data(calib)[0])
    x, y = load_data(val, graph.shapes[graph.input])
    t0 = time.process_time()
    if hasattr(ct, "evaluate"):
        ct.evaluate(net, graph, x, y)
    else:
        ct.quantization_report(net, graph, x)
        ct.top1_agreement(net, graph, x, y)
else:
    graph = load_mit(model, num_classes=10)
    x, y = load_data(val, graph.shapes[graph.input], scale=255 / 127.5, offset=-128 / 127.5)
    t0 = time.process_time()
    try:        # what convert's int8 top-1 runs at this revision
        from host_tools.frontends.int8_sim import Int8Simulation
        Int8Simulation(graph).run(ct.quantize_input(graph, x)).argmax(1)
    except ImportError:
        ct.run_graph(graph, ct.quantize_input(graph, x))
print(json.dumps(dict(cpu=time.process_time() - t0, n=len(x))))
"""


def timed(root, m, val):
    """CPU seconds of the validation step on val, in the revision at root."""
    cmd = [B.PYTHON, "-c", DRIVER, m["kind"], str(m["model"]), str(m["weights"]), str(m["calib"]), str(val)]
    r = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"the timing in {root} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return json.loads(r.stdout.splitlines()[-1])["cpu"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", default=BEFORE, help=f"the float64 original (default {BEFORE})")
    p.add_argument("--main", default=MAIN, help=f"the revision replaced (default {MAIN})")
    p.add_argument("--models", help="comma-separated (default: every available one)")
    p.add_argument("--repeat", type=int, default=3, help="runs per revision and model; the least counts")
    p.add_argument("--docs", type=Path, default=B.DOCS)
    args = p.parse_args(argv)
    shift_net.pretrain()
    revs = {"before": args.before, "main": args.main}
    rows, left_out = [], []
    with tempfile.TemporaryDirectory(prefix="bench-convert-") as tmp:
        roots = {}
        for name, rev in revs.items():
            roots[name] = Path(tmp) / name
            roots[name].mkdir()
            subprocess.run(f"git archive {rev} | tar -x -C {roots[name]}", shell=True, cwd=ROOT, check=True)
        roots["now"] = ROOT
        for key, m in models().items():
            if args.models and key not in args.models.split(","):
                continue
            if not Path(m["weights"]).exists():
                left_out.append((key, f"{m['weights']} is absent"))
                print(f"skipping {key}: {m['weights']} is absent")
                continue
            val = val_npz(m["n"], *m["shape"])
            res = {name: float("inf") for name in roots}
            for _ in range(args.repeat):
                for name, root in roots.items():
                    res[name] = min(res[name], timed(root, m, val))
            print(f"{key}: {m['n']} images: " + ", ".join(f"{k} {v:.2f} s" for k, v in res.items()), flush=True)
            rows.append((m["title"], m["n"], res))
    lines = ["## Conversion speed (`make bench-convert`)", "",
             f"Command: `python bench/bench_convert.py --before {args.before} --main {args.main} --repeat {args.repeat}` "
             f"(main at {_short(args.main)}). Date: {time.strftime('%Y-%m-%d', time.gmtime())}. Machine: "
             f"{B.machine_line()}; one torch thread, CPU seconds, the least of {args.repeat} runs per revision, "
             "the revisions interleaved (the machine was shared with other jobs).", "",
             "What `host_tools convert ... --val VAL` spends on the validation images (Fashion-MNIST test images, "
             "resized for the MIT model), in CPU seconds per 1,000 images: for the PyTorch models the per-layer "
             "SQNR and the top-1 against the float model (the float model's pass included), for the MIT model "
             "the int8 top-1. *float64*: the original simulation (float64 `torch.conv2d`, all images at once; "
             "the report ran it twice). *main*: exact float32 sums below 2^24, float64 requantization passes, "
             "batches of 64. *now*: the device's own fixed-point arithmetic, bit for bit the numpy reference's "
             "(tests/test_int8_sim.py): float32 sums, activations kept centered on their zero points, "
             "1x1 convs and FCs as matrix products on cache-sized chunks of pixel rows, depthwise convs and convs on up to 4 input channels (an image's first) in C, a row at a time, "
             "the requantization in one pass of the C core through ctypes, vectorized for the host's widest "
             "SIMD (host_tools/ccore/requant.c, conv_rows.c; PyTorch's where no C compiler is found); "
             "for the top-1 alone, conv outputs in a few buffers shared by shape; the input quantized in "
             "cache-sized chunks; one float pass (its pools channels last) for the SQNR and the float top-1.", "",
             "| model | images | float64 | main | now | speed-up vs float64 | vs main |", "|---|---|---|---|---|---|---|"]
    for title, n, res in rows:
        b, mn, a = res["before"], res["main"], res["now"]
        lines.append(f"| {title} | {n} | {b / n * 1000:.2f} | {mn / n * 1000:.2f} | {a / n * 1000:.2f} | "
                     f"**{b / a:.1f}x** | {mn / a:.1f}x |")
    lines += [""] + [f"- Not run: {k}: {why}." for k, why in left_out]
    B.write_section(MARK, "\n".join(lines), args.docs)
    print(f"wrote {args.docs}")
    return 0


def _short(rev):
    r = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True)
    return r.stdout.strip() or rev


if __name__ == "__main__":
    sys.exit(main())
