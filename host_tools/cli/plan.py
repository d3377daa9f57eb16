"""`host_tools plan`: choose what the device trains for a memory budget (contribution analysis and
search: host_tools/scheme/contributions.py, search.py) and write the model with that scheme."""
import argparse
import os
import re
import sys
import time
from fractions import Fraction

import numpy as np

from host_tools.errors import UserError

EPILOG = """example:
  # the demo model, the board's 500 labelled images (make plan-demo writes target.npz), 64 KB
  host_tools plan build/demo/fashion.mct --data build/demo/target.npz --budget 64KB \\
      -o build/demo/fashion_plan.mct --png build/demo/frontier.png

The memory is the device's workspace, what mem_info() reports: the arena of the static memory plan
plus the trained copies (1 KB = 1024 bytes). The simulation runs the device's C core (built on
demand into build/host) on --data: the classifier and the biases of the last k convs for every k,
then each candidate conv's weights at each ratio on top of the best k. Gains are measured on a
held-out share of --data (--holdout) and assumed to add up, as in the paper.
"""

UNITS = {"": 1, "b": 1, "kb": 1024, "kib": 1024, "k": 1024, "mb": 1 << 20, "mib": 1 << 20, "m": 1 << 20}


def parse_budget(text) -> int:
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).lower() not in UNITS:
        raise UserError(f"--budget {text!r} is not a memory size: give bytes or KB/MB, e.g. 128KB")
    value = int(float(m.group(1)) * UNITS[m.group(2).lower()])
    if value <= 0:
        raise UserError(f"--budget {text!r} must be more than 0 bytes")
    return value


def _ratios(text):
    try:
        out = sorted({float(Fraction(t)) for t in text.split(",") if t})
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of ratios such as 1/8,1/4,1/2,1") from None
    if not out or any(not 0 < r <= 1 for r in out):
        raise argparse.ArgumentTypeError(f"ratios must lie in (0, 1], got {text}")
    return out


def _layers(text):
    try:
        return sorted({int(t) for t in text.split(",") if t})
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of conv indices such as 6,9,10") from None


HELP = "choose what the device trains for a memory budget (contribution analysis)"
DESCRIPTION = ("Simulate the device's int8 training on your labelled data, measure what each "
               "trainable part gains, and write the model with the best scheme that fits the budget.")


def add_arguments(p):
    p.add_argument("model", help="a .mct file (from host_tools convert)")
    p.add_argument("--data", required=True,
                   help="labelled target data: .npz (x float32 [N, C, H, W] in the model's input range, "
                        "y labels) or a folder of class subfolders of images")
    p.add_argument("--budget", required=True, help="device RAM for training, e.g. 128KB, 0.25MB, 90000")
    p.add_argument("-o", "--output", required=True, help="the .mct file to write with the chosen scheme")
    p.add_argument("--png", help="draw the memory/gain frontier into this PNG file")
    p.add_argument("--holdout", type=float, default=0.3, help="share of --data held out for scoring (0.3)")
    p.add_argument("--max-samples", type=int, default=1000, help="use at most this many samples (1000)")
    p.add_argument("--epochs", type=int, default=2, help="passes over the training share per run (2)")
    p.add_argument("--lr", type=float, default=0.05, help="SGD learning rate, batch 1, as on the device (0.05)")
    p.add_argument("--repeats", type=int, default=1,
                   help="runs per candidate, each in another sample order, averaged (1)")
    p.add_argument("--layers", type=_layers,
                   help="candidate convs for weight updates, counted from 0 in forward order (default: all)")
    p.add_argument("--ratios", type=_ratios, default=[0.125, 0.25, 0.5, 1.0],
                   help="ratios of output channels tried per layer (1/8,1/4,1/2,1)")
    p.add_argument("--max-bias", type=int, help="try the biases of the last k convs up to this k (default: all)")
    p.add_argument("--no-train-classifier", dest="classifier", action="store_false",
                   help="do not train the final fully connected layer")
    p.add_argument("--verify", type=int, default=8, metavar="N",
                   help="simulate the additive choice and the best schemes of N smaller budgets and keep "
                        "the best measured one of them and of the analysis' own runs; 0 keeps the "
                        "additive choice as the paper does (8)")
    p.add_argument("--seed", type=int, default=0, help="sample split, orders and search (0)")


def load_target(path, model):
    """int8 inputs [N, size] and labels of the user's data, quantized as the device's input (channels
    last)."""
    from host_tools.frontends.calibrate import load_data
    x, y = load_data(path, model.input_shape)
    if y is None:
        raise UserError(f"{path} has no labels: the analysis needs y (a .npz with y, or class subfolders)")
    if y.min() < 0 or y.max() >= model.n_classes:
        raise UserError(f"{path} has labels {y.min()}..{y.max()}, the model has {model.n_classes} classes")
    q = np.clip(np.round(x / model.input_scale) + model.input_zero, -128, 127).astype(np.int8)
    from host_tools.model.layout import to_device
    return to_device(q.reshape(len(q), *model.input_shape)), y.astype(np.int64)


def _kb(n):
    return f"{n / 1024:.1f} KB"


def _check_args(args, schemes):
    if not 0 < args.holdout < 1:
        raise UserError(f"--holdout {args.holdout:g} must lie between 0 and 1")
    if args.verify < 0:
        raise UserError("--verify must be 0 or more")
    for opt in ("epochs", "repeats", "max_samples"):
        if getattr(args, opt) < 1:
            raise UserError(f"--{opt.replace('_', '-')} must be at least 1")
    if not np.isfinite(args.lr) or args.lr <= 0:
        raise UserError(f"--lr {args.lr:g} must be a positive number")
    n = schemes.n_convs
    bad = [i for i in (args.layers or []) if not 0 <= i < n]
    if bad:
        raise UserError(f"--layers {bad[0]} is not a conv of the model (it has convs 0..{n - 1})")
    if args.max_bias is not None and not 0 <= args.max_bias <= n:
        raise UserError(f"--max-bias {args.max_bias} must lie in 0..{n} (the model has {n} convs)")
    if args.classifier and schemes.graph.classifier() is None:
        raise UserError("the model does not end in a fully connected layer: give --no-train-classifier")


def command(args):
    from tqdm import tqdm
    from host_tools.model import mct_format
    from host_tools.scheme import contributions, search as ss
    from host_tools.ccore.core import CoreModel
    from host_tools.scheme.schemes import ModelSchemes

    budget = parse_budget(args.budget)
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        raise UserError(f"the output folder {out_dir} does not exist")
    model = mct_format.read(args.model)
    schemes = ModelSchemes(model)
    _check_args(args, schemes)
    ss.check_fits(schemes, budget, args.classifier)          # before minutes of simulation
    x, y = load_target(args.data, model)
    xtr, ytr, xte, yte = contributions.split(x, y, args.holdout, args.max_samples, args.seed)
    layers = args.layers if args.layers is not None else list(range(schemes.n_convs))
    max_bias = schemes.n_convs if args.max_bias is None else args.max_bias
    sim = contributions.Simulator(schemes, xtr, ytr, xte, yte, args.epochs, args.lr, args.repeats, args.seed)
    print(f"{args.model}: {schemes.n_convs} convs; {len(xtr)} training and {len(xte)} held-out samples of "
          f"{args.data}; {args.epochs} epochs at lr {args.lr:g}, {args.repeats} order(s) per candidate")
    t0 = time.time()
    contrib = contributions.analyse(sim, layers, args.ratios, max_bias, args.classifier,
                         progress=lambda n: tqdm(total=n, desc="contribution analysis", unit="run",
                                                 file=sys.stderr))
    t_analysis = time.time() - t0
    print(contribution_table(contrib, schemes, args.classifier))
    t0 = time.time()
    best = additive = ss.search(contrib, schemes, budget, args.seed)
    t_search = time.time() - t0
    measured = sim.accuracy(best.scheme)
    scored = []
    if args.verify:
        best, measured, scored = ss.verify(sim, contrib, schemes, budget, args.verify, args.seed)
        print(f"verified by simulation ({len(scored)} schemes that fit; the additive choice predicted "
              f"{100 * additive.gain:+.1f} points); the frontier's schemes:")
        for r, acc in sorted(scored, key=lambda ra: ra[0].memory["workspace"]):
            if r.method == "analysis" and r.scheme != best.scheme:
                continue                                  # already in the contribution table
            mark = "  <- kept" if r.scheme == best.scheme else ""
            print(f"  {_kb(r.memory['workspace']):>10} predicted {100 * r.gain:+6.1f}, measured "
                  f"{100 * (acc - contrib.bias_acc[0]):+6.1f}: {r.scheme.describe()}{mark}")
    print(chosen_table(best, contrib, schemes, budget, measured))
    note = {"plan": f"budget {budget} bytes; {best.scheme.describe()}; predicted gain {100 * best.gain:+.1f} "
                    f"points, measured held-out accuracy {100 * measured:.1f} % on {args.data}"}
    data = schemes.rewrite(best.scheme, note)
    got = CoreModel(data).mem()["workspace"]
    if got != best.memory["workspace"] or got > budget:     # the device's own loader, not the planner
        raise UserError(f"internal error: the written file needs {got} bytes on the device, the plan said "
                        f"{best.memory['workspace']}")
    mct_format.write_bytes(data, args.output)
    print(f"wrote {args.output}: the device trains {best.scheme.describe()} in {_kb(got)} of RAM "
          f"(budget {_kb(budget)}); analysis {t_analysis:.0f} s ({len(sim.simulated)} simulated schemes), "
          f"{additive.method} search {t_search:.1f} s over {additive.evaluated} schemes")
    if args.png:
        draw_frontier(args.png, contrib, schemes, best, budget, args.seed,
                      [(r.memory["workspace"], 100 * (acc - contrib.bias_acc[0])) for r, acc in scored])
        print(f"wrote {args.png}")
    return 0


def contribution_table(c, schemes, classifier):
    from host_tools.scheme.schemes import Scheme
    names = [op.name for op in schemes.graph.conv_layers()]
    base = "classifier + " if classifier else ""
    lines = [f"held-out accuracy with nothing trained: {100 * c.base_acc:.1f} %",
             f"{'trained':<44} {'memory':>10} {'accuracy':>9} {'gain':>7}"]
    for k, acc in enumerate(c.bias_acc):
        mem = schemes.memory(Scheme.make(k, classifier=classifier))["workspace"]
        mark = "  <- best k" if k == c.best_k else ""
        lines.append(f"{base + f'biases of last {k} convs':<44} {_kb(mem):>10} {100 * acc:>8.1f}% "
                     f"{100 * c.bias_gain(k):>+6.1f}{mark}")
    lines.append(f"weights, on top of the best k = {c.best_k} (gain over it):")
    for (i, r), acc in sorted(c.weight_acc.items()):
        mem = schemes.memory(Scheme.make(c.best_k, {i: r}, classifier))["workspace"]
        lines.append(f"{f'  conv {i} ({names[i]}) x{r:g}':<44} {_kb(mem):>10} {100 * acc:>8.1f}% "
                     f"{100 * c.weight_gain(i, r):>+6.1f}")
    return "\n".join(lines)


def chosen_table(best, c, schemes, budget, measured):
    """Each trained part of the chosen scheme: its trained copies (bytes) and its gain."""
    from host_tools.model.graph import CONV2D
    s = best.scheme
    g = schemes.graph
    convs = [k for k, op in enumerate(g.ops) if op.kind == CONV2D]
    rows = []
    if s.classifier:
        fc = g.ops[-1]
        n = fc.weight.size
        rows.append((f"{fc.name} (classifier)", "weights + biases", (n + 3) // 4 * 4 + 4 * n + 8 * fc.bias.size,
                     None))
    for j, k in enumerate(convs[len(convs) - s.n_bias:] if s.n_bias else []):
        rows.append((f"conv {convs.index(k)} ({g.ops[k].name})", "bias", 8 * g.ops[k].bias.size,
                     c.bias_gain(s.n_bias) if j == 0 else None))
    for i, r in s.weights:
        op = g.ops[convs[i]]
        n = max(1, int(op.weight.shape[0] * r)) * (op.weight.size // op.weight.shape[0])
        rows.append((f"conv {i} ({op.name})", f"weights, first {r:g} of channels",
                     (n + 3) // 4 * 4 + 4 * n, c.weight_gain(i, r)))
    lines = [f"chosen scheme for {_kb(budget)}:",
             f"{'layer':<34} {'trained':<32} {'copies':>9} {'gain':>7}"]
    for name, what, mem, gain in rows:
        gtxt = f"{100 * gain:+6.1f}" if gain is not None else ""
        lines.append(f"{name:<34} {what:<32} {mem:>9} {gtxt:>7}")
    if s.n_bias:
        lines.append(f"  (the bias gain {100 * c.bias_gain(s.n_bias):+.1f} is for the last {s.n_bias} biases together)")
    m = best.memory
    lines.append(f"memory: arena {m['arena']} + trained copies {m['trained']} (with the index) = "
                 f"workspace {m['workspace']} bytes of {budget}")
    lines.append(f"predicted gain over the classifier alone {100 * best.gain:+.1f} points; simulated held-out "
                 f"accuracy {100 * measured:.1f} % (classifier alone {100 * c.bias_acc[0]:.1f} %)")
    return "\n".join(lines)


def draw_frontier(path, contrib, schemes, best, budget, seed, measured=()):
    from host_tools.scheme import search as ss
    from host_tools.scheme.frontier_plot import draw
    from host_tools.scheme.schemes import Scheme
    lo = schemes.memory(Scheme.make(0, classifier=contrib.classifier))["workspace"]
    top = ss.search(contrib, schemes, 1 << 40, seed).memory["workspace"]
    points = [(r.memory["workspace"], 100 * r.gain)
              for r in ss.frontier(contrib, schemes, np.linspace(lo, max(top, budget), 16), seed)]
    draw(path, points, (best.memory["workspace"], 100 * best.gain), budget,
         title=f"best scheme per budget; chosen: {best.scheme.describe()}"[:110], measured=measured)
