"""Which output channels to train when a conv's weights are trained at a ratio < 1: the format
trains the first ones; here the same scheme is simulated (the C core, host_tools.ccore.core) with the
first channels and with the largest-magnitude channels (the conv's channels reordered, which leaves
the model's outputs unchanged), on the demo task: learn Fashion-MNIST classes 5-9 from train.bin,
score on test.bin. Prints a markdown table.

    .venv/bin/python bench/plan_channels.py [--n-bias 2] [--repeats 3] [--epochs 2] [--lr 0.05]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import DEMO, demo_images as images  # noqa: E402  (bench/, the script's folder)
from host_tools.model import channel_order  # noqa: E402
from host_tools.model import mct_format  # noqa: E402
from host_tools.scheme.schemes import ModelSchemes, Scheme  # noqa: E402
from host_tools.scheme.contributions import Simulator  # noqa: E402



def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-bias", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--ratios", default="0.125,0.25,0.5")
    args = ap.parse_args()
    if not (DEMO / "fashion.mct").exists():
        sys.exit("plan_channels: build/demo/fashion.mct is missing: run make demo first")
    data = (DEMO / "fashion.mct").read_bytes()
    model = mct_format.load(data)
    (xtr, ytr), (xte, yte) = images("train"), images("test")
    convs = [k for k, op in enumerate(model.ops) if op.type == 1]
    ratios = [float(r) for r in args.ratios.split(",")]

    def sim(d):
        return Simulator(ModelSchemes(mct_format.load(d)), xtr, ytr, xte, yte, args.epochs, args.lr, 1, 0)

    def accs(d, scheme):
        out = []
        for r in range(args.repeats):          # one order per repeat, each its own simulator seed
            s = sim(d)
            s.seed = r
            out.append(100 * s.accuracy(scheme))
        return np.array(out)

    t0 = time.time()
    base = accs(data, Scheme.make(args.n_bias))
    print(f"classifier + last {args.n_bias} biases: {base.mean():.1f} % (held-out test.bin, mean of "
          f"{args.repeats} orders, {args.epochs} epochs at lr {args.lr:g})\n")
    print("| conv | ratio | first channels | largest-magnitude channels | difference |")
    print("|---|---|---|---|---|")
    diffs = []
    for i, k in enumerate(convs):
        perm = channel_order.magnitude_order(model, k)
        reordered = channel_order.reorder(data, k, perm)
        if reordered is None:
            continue
        for r in ratios:
            s = Scheme.make(args.n_bias, {i: r})
            a, b = accs(data, s), accs(reordered, s)
            diffs.append(b.mean() - a.mean())
            print(f"| {i} ({model.meta['ops'][k]}) | {r:g} | {a.mean():.1f} ± {a.std():.1f} | "
                  f"{b.mean():.1f} ± {b.std():.1f} | {b.mean() - a.mean():+.1f} |", flush=True)
    print(f"\nmean difference (largest - first): {np.mean(diffs):+.2f} points over {len(diffs)} settings; "
          f"{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
