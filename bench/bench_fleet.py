"""make bench-fleet: a fleet learning the demo's transfer task together, against the same
trained tensors learned centrally (all data on one board) and by each client alone.

One split (Fashion-MNIST, Dirichlet alpha over classes, each client's images 80/20 into its own
training and test images, a global test set), the demo model, Flower's simulation engine; the
first clients are emulated boards, the others the C core (bit-identical to a board). Runs:
FedAvg, FedAvgM, FedAvg with 10 % of the clients crashing mid-round. Writes its section of
docs/benchmarks.md and docs/img/fleet_rounds.png.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import benchlib as B
from host_tools.fleet import data as fdata
from host_tools.fleet import sim
from host_tools.fleet.__main__ import add_run_arguments
from host_tools.fleet.apps import FleetConfig
from host_tools.fleet.blob import trained_values, write
from host_tools.fleet.client import CoreClient, local_order
from host_tools.model import mct_format

MARK = "<!-- bench-fleet -->"
IMG = B.ROOT / "docs" / "img" / "fleet_rounds.png"


def fleet_run(args, split_path, name, **kw):
    out = args.out / name
    out.mkdir(parents=True, exist_ok=True)
    cfg = FleetConfig(model=str(args.model.resolve()), data=str(split_path), result=str(out / "result.json"),
                      rounds=args.rounds, steps=args.steps, lr=args.lr, workdir=str(out / "boards"), **kw)
    t0 = time.monotonic()
    result = sim.run(cfg, out / "config.json", cpus=args.cpus)
    result["total_seconds"] = time.monotonic() - t0
    print(f"{name}: accuracy {result['accuracy']}", flush=True)
    return result


def accuracy_of(core, x, y):
    return 100.0 * float(np.mean(core.predict(x) == y))


def centralized(args, split, model_data, start):
    """All the clients' training images on one board, as many steps per round as the whole fleet
    takes in a round (clients x E)."""
    x, y = np.concatenate(split.train_x), np.concatenate(split.train_y)
    c = CoreClient(model_data, x, y)
    c.core.load_update(start)
    curve = [accuracy_of(c.core, split.global_x, split.global_y)]
    for r in range(1, args.rounds + 1):
        c.core.train(c.x, c.y, local_order(len(y), split.n_clients * args.steps, seed=r), args.lr)
        curve.append(accuracy_of(c.core, split.global_x, split.global_y))
    return curve


def local_only(args, split, model_data, start):
    """Each client alone: the fleet's rounds x E steps on its own images; mean accuracy on its own
    test images and on the global test set."""
    own, glob = [], []
    for k in range(split.n_clients):
        c = CoreClient(model_data, split.train_x[k], split.train_y[k])
        c.core.load_update(start)
        c.core.train(c.x, c.y, local_order(len(c.y), args.rounds * args.steps, seed=k), args.lr)
        own.append(accuracy_of(c.core, split.test_x[k], split.test_y[k]))
        glob.append(accuracy_of(c.core, split.global_x, split.global_y))
    return float(np.mean(own)), float(np.mean(glob))


def fleet_on_own_tests(split, model_data, result_blob):
    c = CoreClient(model_data, split.train_x[0], split.train_y[0])
    c.core.load_update(result_blob)
    return float(np.mean([accuracy_of(c.core, split.test_x[k], split.test_y[k]) for k in range(split.n_clients)]))


def plot(runs, central, local_global, title, path):
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for label, res in runs:
        acc = {int(k): v for k, v in res["accuracy"].items()}
        ax.plot(sorted(acc), [acc[r] for r in sorted(acc)], marker="o", ms=3, label=label)
    ax.plot(range(len(central)), central, marker="s", ms=3, ls="--", label="centralized (all data, one board)")
    ax.axhline(local_global, color="grey", ls=":", label="each client alone (mean, global test)")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("round (centralized: the same share of its training)")
    ax.set_ylabel("accuracy on the global test set (%)")
    ax.set_title(title, fontsize=8)
    B.save_plot(fig, ax, path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=B.ROOT / "build" / "demo" / "fashion.mct")
    p.add_argument("--boards", default="unix,qemu-m3")
    add_run_arguments(p, clients=100, rounds=10)
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--out", type=Path, default=B.ROOT / "build" / "bench" / "fleet")
    p.add_argument("--docs", type=Path, default=B.DOCS)
    p.add_argument("--img", type=Path, default=IMG)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    split_path = (args.out / "split.npz").resolve()
    fdata.save(fdata.make_split(args.clients, args.per_client, args.alpha), split_path)
    split = fdata.load(split_path)
    model_data = args.model.read_bytes()
    model = mct_format.load(model_data)
    start = write(model, trained_values(model))
    boards = {str(i): b for i, b in enumerate(b for b in args.boards.split(",") if b)}

    runs = [("FedAvg", fleet_run(args, split_path, "fedavg", boards=boards)),
            ("FedAvgM (momentum 0.9)", fleet_run(args, split_path, "fedavgm", boards=boards, rule="fedavgm")),
            ("FedAvg, 10 % of the clients crash each round",
             fleet_run(args, split_path, "crash", boards=boards, crash=0.1))]
    central = centralized(args, split, model_data, start)
    own, glob = local_only(args, split, model_data, start)
    fleet_own = fleet_on_own_tests(split, model_data, bytes.fromhex(runs[0][1]["final_blob"]))
    title = (f"demo transfer task, {args.clients} clients, Dirichlet({args.alpha}), "
             f"E = {args.steps} steps per round")
    plot(runs, central, glob, title, args.img)
    (args.out / "summary.json").write_text(json.dumps({"runs": dict(runs), "central": central, "local_own": own,
                                                       "local_global": glob, "fleet_own": fleet_own}, indent=1))
    write_section(args, runs, central, own, glob, fleet_own, split)


def write_section(args, runs, central, own, glob, fleet_own, split):
    fedavg = runs[0][1]
    def final(res):
        acc = {int(k): v for k, v in res["accuracy"].items()}
        return acc[0], acc[max(acc)]

    lines = ["## Fleet: federated sparse updates over Flower (`make bench-fleet`)", "",
             f"`python bench/bench_fleet.py {' '.join(sys.argv[1:]).replace(str(B.ROOT) + '/', '')}` (`make bench-fleet`), "
             f"{time.strftime('%Y-%m-%d')}, {B.machine_line()}. Model `{args.model.name}` (the demo's), "
             f"{args.clients} clients on a Dirichlet({args.alpha}) split of {args.clients * args.per_client} "
             f"Fashion-MNIST training images (each client: 80 % training, 20 % its own test), global test: "
             f"{len(split.global_y)} t10k images; {args.rounds} rounds, E = {args.steps} local steps, lr {args.lr}; "
             f"every client each round. Clients {', '.join(f'{k} ({v})' for k, v in fedavg['boards'].items())} "
             f"are emulated boards, the others the C core through ctypes. Picture: docs/fleet.md.", "",
             "| run | accuracy before | after | round wall time (first / mean of the rest) | failed / rejected updates |",
             "|---|---|---|---|---|"]
    for label, res in runs:
        b, a = final(res)
        secs = [r["seconds"] for r in res["rounds"]]
        failed = sum(r["failed"] for r in res["rounds"])
        rejected = sum(r["rejected"] for r in res["rounds"])
        lines.append(f"| {label} | {b:.1f} % | **{a:.1f} %** | {secs[0]:.1f} s / {np.mean(secs[1:]):.1f} s | "
                     f"{failed} / {rejected} |")
    lines.append(f"| centralized: all training images on one board, as many steps as the fleet "
                 f"({args.clients} x {args.steps} per round) | "
                 f"{central[0]:.1f} % | **{central[-1]:.1f} %** | | |")
    lines.append(f"| each client alone, {args.rounds * args.steps} steps (mean over clients) | "
                 f"{central[0]:.1f} % | **{glob:.1f} %** (on its own test images: {own:.1f} %; "
                 f"the FedAvg fleet's model there: {fleet_own:.1f} %) | | |")
    lines += ["", f"Bytes per client per round: the update blob, **{fedavg['blob_bytes']:,} B** each way "
              f"(plus Flower's array header), against {fedavg['model_bytes']:,} B for the whole model file "
              f"({100 * fedavg['blob_bytes'] / fedavg['model_bytes']:.0f} %)."]
    B.write_section(MARK, "\n".join(lines), args.docs)


if __name__ == "__main__":
    main()
