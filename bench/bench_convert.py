"""`make bench-convert`: how long `host_tools convert` spends per 1,000 validation images (the int8
simulation of the report and of the top-1), now and at an earlier revision, in one run.

Each model is converted with --val of N1 and of N2 images; the time per 1,000 images is the slope
(t(N2) - t(N1)) / (N2 - N1), so the fixed costs (tracing, calibration, the memory plan) drop out.
The earlier revision runs from `git archive REV` in a temporary folder, with this checkout's
Python. Writes its section of docs/benchmarks.md.

    python bench/bench_convert.py [--before REV] [--models demo,shift,mbv2-w0.35]
"""
import argparse
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
        "demo": dict(args=["examples/fashion_net.py:FashionNet", "--weights", demo / "fashion_net.pt",
                           "--calib", demo / "calib.npz", "--n-bias-update", "2"], shape=(28, 1), n=(100, 1000),
                     needs=demo / "fashion_net.pt", title="FashionNet (the demo, 12 convs + FC)"),
        "shift": dict(args=["bench/shift_net.py:ShiftNet", "--weights", shift / "shift_net.pt",
                            "--calib", shift / "calib.npz"], shape=(28, 1), n=(100, 1000),
                      needs=shift / "shift_net.pt", title="ShiftNet (issue 14's 4 layers: conv, max pool, 2 FC)"),
        "mbv2-w0.35": dict(args=["--from", "mit-int8", MIT_DIR / "mbv2-w0.35", "--num-classes", "10"],
                           shape=(128, 3), n=(10, 100), needs=MIT_DIR / "mbv2-w0.35",
                           title="MbV2-w0.35 (MIT int8, 128x128)"),
    }


def timed_convert(root, args, val, out):
    cmd = [B.PYTHON, "-m", "host_tools", "convert", *map(str, args), "--val", str(val), "-o", str(out)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} in {root} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", default=BEFORE, help=f"the earlier revision (default {BEFORE})")
    p.add_argument("--models", help="comma-separated (default: every available one)")
    p.add_argument("--docs", type=Path, default=B.DOCS)
    args = p.parse_args(argv)
    shift_net.pretrain()
    rows, left_out = [], []
    with tempfile.TemporaryDirectory(prefix="bench-convert-") as tmp:
        old = Path(tmp) / "before"
        old.mkdir()
        subprocess.run(f"git archive {args.before} | tar -x -C {old}", shell=True, cwd=ROOT, check=True)
        # the earlier revision's report cannot name a max pool (fixed since): ShiftNet needs the fix
        (old / "host_tools" / "convert_torch.py").write_text(
            (old / "host_tools" / "convert_torch.py").read_text().replace(
                'GlobalAvgPool: "avgpool"}', 'GlobalAvgPool: "avgpool", MaxPool2d: "maxpool", AvgPool2d: "avgpool"}'))
        for key, m in models().items():
            if args.models and key not in args.models.split(","):
                continue
            if not Path(m["needs"]).exists():
                left_out.append((key, f"{m['needs']} is absent"))
                print(f"skipping {key}: {m['needs']} is absent")
                continue
            size, channels = m["shape"]
            n1, n2 = m["n"]
            vals = [val_npz(n, size, channels) for n in (n1, n2)]
            res = {}
            for name, root in (("before", old), ("now", ROOT)):
                t = [timed_convert(root, m["args"], v, Path(tmp) / f"{key}-{name}.mct") for v in vals]
                res[name] = (t, (t[1] - t[0]) / (n2 - n1) * 1000)
                print(f"{key} {name}: {t[0]:.1f} s ({n1} images), {t[1]:.1f} s ({n2}); "
                      f"{res[name][1]:.2f} s per 1,000 images", flush=True)
            rows.append((key, m["title"], n1, n2, res))
    lines = ["## Conversion speed (`make bench-convert`)", "",
             f"Command: `python bench/bench_convert.py --before {args.before}`. Date: "
             f"{time.strftime('%Y-%m-%d', time.gmtime())}. Machine: {B.machine_line()}.", "",
             "`host_tools convert ... --val VAL` with N1 and N2 validation images (Fashion-MNIST test images, "
             "resized for the MIT model); seconds per 1,000 images = (t(N2) − t(N1)) / (N2 − N1), which leaves "
             "out the fixed costs. *before*: the float64 simulation (`git archive` of the revision above); *now*: "
             "exact float32 sums where they stay below 2^24 (float64 otherwise), batches of 256 images, one pass "
             "for the per-layer SQNR and the top-1. The int8 results are bit-identical "
             "(tests/test_convert.py `test_fast_simulation_is_bit_identical_to_float64`).", "",
             "| model | N1, N2 | before: t(N1), t(N2) | now: t(N1), t(N2) | before s / 1,000 images | "
             "now s / 1,000 images | speed-up |", "|---|---|---|---|---|---|---|"]
    for key, title, n1, n2, res in rows:
        (tb, sb), (tn, sn) = res["before"], res["now"]
        lines.append(f"| {title} | {n1}, {n2} | {tb[0]:.1f} s, {tb[1]:.1f} s | {tn[0]:.1f} s, {tn[1]:.1f} s | "
                     f"{sb:.2f} | {sn:.2f} | {sb / sn:.1f}x |")
    lines += [""] + [f"- Not run: {k}: {why}." for k, why in left_out]
    B.write_section(MARK, "\n".join(lines), args.docs)
    print(f"wrote {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
