"""`make bench-update-rules`: held-out accuracy of each update rule (header byte 50) on the demo task
(examples/fashion_new_classes.py: learn 5 unseen Fashion-MNIST classes from 500 images, 2 epochs),
trained by the C core built for the host (host_tools/ccore, bit-exact with the device), over 3 sample
orders, for the demo scheme (classifier + biases of the last 2 convs) and with the weights of conv 10
trained too. Writes the table into docs/numerics.md."""
import datetime
import os
import platform
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from host_tools.model import mct_format  # noqa: E402
from host_tools.model import numerics  # noqa: E402
from host_tools.ccore.core import CoreModel  # noqa: E402

DEMO = Path(os.environ.get("DEMO_DIR", ROOT / "build" / "demo"))
OUT = ROOT / "docs" / "numerics.md"
BEGIN, END = "<!-- bench-update-rules:begin -->", "<!-- bench-update-rules:end -->"
# `--backward`: the integer backward against the float32 one, for the integer update rules
INT_BEGIN, INT_END = "<!-- bench-backward-int:begin -->", "<!-- bench-backward-int:end -->"
INT_RULES = ("frac8", "stochastic", "nearest")
INT_LRS = (0.02, 0.01)
SCHEMES = {"bias+classifier": {}, "+ conv 10 weights (10:1)": {10: 1.0}}
SEEDS = (0, 1, 2)
LRS = (0.05, 0.02, 0.01, 0.005)
EPOCHS = 2
SIZE = 28 * 28


def load_demo():
    need = ["fashion_net.pt", "calib.npz", "train.bin", "train_labels.bin", "test.bin", "test_labels.bin"]
    missing = [n for n in need if not (DEMO / n).exists()]
    if missing:
        sys.exit(f"bench-update-rules: missing {', '.join(missing)} in {DEMO}: run make demo first")

    def images(name):
        return np.frombuffer((DEMO / name).read_bytes(), dtype=np.int8).reshape(-1, SIZE)

    def labels(name):
        return np.frombuffer((DEMO / name).read_bytes(), dtype=np.uint8).astype(int)

    return images("train.bin"), labels("train_labels.bin"), images("test.bin"), labels("test_labels.bin")


def convert():
    """The demo's conversion (Makefile: --n-bias-update 2), once; the schemes and rules only change
    what the writer puts in the file."""
    from host_tools.frontends.calibrate import load_data
    from host_tools.cli.convert import load_torch_model
    from host_tools.frontends.torch_fx import convert_torch
    model = load_torch_model(str(ROOT / "examples" / "fashion_net.py") + ":FashionNet", str(DEMO / "fashion_net.pt"))
    x_cal, _ = load_data(str(DEMO / "calib.npz"))
    return convert_torch(model, x_cal, n_bias_update=2)


def accuracy(core, x, y, n_classes):
    return 100.0 * np.mean([int(np.argmax(core.forward(xi, n_classes))) == yi for xi, yi in zip(x, y)])


def run(data, x_tr, y_tr, x_te, y_te, seed, lr):
    m = mct_format.load(data)
    core = CoreModel(data)
    core.seed(seed)
    order = np.random.default_rng(seed)
    for _ in range(EPOCHS):
        for i in order.permutation(len(y_tr)):
            core.train_step(x_tr[i], int(y_tr[i]), lr)
    return accuracy(core, x_te, y_te, m.n_classes), numerics.model_trained_bytes(m)


def compare_backwards(graph, x_tr, y_tr, x_te, y_te):
    rows = []
    for scheme, weights in SCHEMES.items():
        graph.weight_update = dict(weights)
        for lr in INT_LRS:
            for rule in INT_RULES:
                graph.update_rule = rule
                accs = {}
                for backward in ("float", "int"):
                    graph.backward = backward
                    data = mct_format.to_bytes(graph)
                    accs[backward] = [run(data, x_tr, y_tr, x_te, y_te, seed, lr)[0] for seed in SEEDS]
                graph.backward = "float"
                rows.append((scheme, lr, rule, accs))
                print(f"{scheme:26s} lr {lr:<5} {rule:10s} float {np.mean(accs['float']):.1f} %  "
                      f"int {np.mean(accs['int']):.1f} % ({', '.join(f'{a:.1f}' for a in accs['int'])})", flush=True)
    table = ["| scheme | lr | update rule | float32 backward, mean (seeds 0, 1, 2) | integer backward, mean (seeds 0, 1, 2) |",
             "|---|---|---|---|---|"]
    for scheme, lr, rule, accs in rows:
        cells = [f"{np.mean(a):.1f} % ({', '.join(f'{v:.1f}' for v in a)})" for a in (accs["float"], accs["int"])]
        table.append(f"| {scheme} | {lr} | {rule} | {cells[0]} | {cells[1]} |")
    return table


def write_block(begin, end, stamp, table):
    block = "\n".join([begin, stamp, "", *table, end])
    text = OUT.read_text()
    text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    OUT.write_text(text)
    print(f"wrote {OUT}")


def main():
    x_tr, y_tr, x_te, y_te = load_demo()
    graph = convert()
    if "--backward" in sys.argv[1:]:
        stamp = (f"`python bench/update_rules.py --backward`, {datetime.date.today()}, {platform.machine()} host, "
                 f"C core via host_tools/ccore; the demo task as above.")
        write_block(INT_BEGIN, INT_END, stamp, compare_backwards(graph, x_tr, y_tr, x_te, y_te))
        return
    rows = []
    for scheme, weights in SCHEMES.items():
        graph.weight_update = dict(weights)
        before = None
        for lr in LRS:
            for rule in numerics.UPDATE_RULES:
                graph.update_rule = rule
                data = mct_format.to_bytes(graph)
                if before is None:
                    m = mct_format.load(data)
                    before = accuracy(CoreModel(data), x_te, y_te, m.n_classes)
                accs, trained = [], 0
                for seed in SEEDS:
                    acc, trained = run(data, x_tr, y_tr, x_te, y_te, seed, lr)
                    accs.append(acc)
                n = sum(mct_format.load(data).trained_count)
                rows.append((scheme, lr, rule, n, trained, accs, before))
                print(f"{scheme:26s} lr {lr:<5} {rule:10s} trained {trained:6d} B  "
                      f"accuracy {np.mean(accs):.1f} % ({', '.join(f'{a:.1f}' for a in accs)})", flush=True)
    table = ["| scheme | lr | update rule | trained values | trained copies (B) | accuracy after, mean (seeds 0, 1, 2) | before |",
             "|---|---|---|---|---|---|---|"]
    for scheme, lr, rule, n, trained, accs, before in rows:
        table.append(f"| {scheme} | {lr} | {rule} | {n} | {trained} | {np.mean(accs):.1f} % "
                     f"({', '.join(f'{a:.1f}' for a in accs)}) | {before:.1f} % |")
    stamp = (f"`make bench-update-rules` (bench/update_rules.py), {datetime.date.today()}, "
             f"{platform.machine()} host, C core via host_tools/ccore; {EPOCHS} epochs of the 500 training images "
             f"in a random order per seed, held-out accuracy on the 500 test images (all 10 classes).")
    write_block(BEGIN, END, stamp, table)


if __name__ == "__main__":
    main()
