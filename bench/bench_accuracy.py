"""`make bench-accuracy`: does int8 training with QAS and a sparse update learn as well as fp32?

Same data, same sample order, batch 1 SGD (no momentum, no weight decay), the same cosine learning
rate schedule with warm-up, for every setting of SETTINGS, on every task of TASKS, over several seeds
(a seed draws the training images and their order; the test images are fixed). The mcutrain
settings run the device's own C core on the host (ctypes, host_tools/ccore/core.py; bit-exact with the
boards); a subset also runs on the unix port and the emulated qemu-m3 board, and must give the same
losses and predictions bit for bit. Writes its section of docs/benchmarks.md and docs/img/*.png.

    python bench/bench_accuracy.py [--quick] [--tasks demo,mit-mbv2-w0.35,...] [--seeds 3]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as B  # noqa: E402
import shift_net  # noqa: E402
from host_tools.datasets import FASHION_MNIST_DIR  # noqa: E402

ROOT = B.ROOT
MIT_DIR = Path(os.environ.get("MCT_MIT_MODELS", ROOT.parent / "shared" / "models" / "mit"))
DEMO_DIR = ROOT / "build" / "demo"
SHIFT_DIR = ROOT / "build" / "bench" / "shift"
WORK = ROOT / "build" / "bench"
MARK = "<!-- bench-accuracy -->"


@dataclass
class Setting:
    key: str
    label: str
    engine: str                     # "torch" (float32 PyTorch) or "core" (the device's C core)
    train: str = "scheme"           # torch: "all" (full fine-tune) or "scheme" (the device's scheme)
    scheme: bool = True             # False: the task's scheme flags are left out (classifier only)
    flags: Tuple[str, ...] = ()     # more `host_tools convert` flags
    qas: bool = True                # Model(buf, qas=...) on the device
    needs: Optional[str] = None     # the convert option this row needs; left out when absent
    lr_scale: float = 1.0           # a multiple of the task's learning rate (1: the same schedule)
    extra: bool = False             # runs only on the tasks that name it (Task.settings)


# One row per setting: a new engine variant is one more line with its convert flags.
MASTER = ("--update-rule", "master")
SETTINGS = [
    Setting("fp32-full", "PyTorch fp32, full fine-tune", "torch", train="all"),
    Setting("fp32-full-lr3", "PyTorch fp32, full fine-tune, lr ÷ 3", "torch", train="all", lr_scale=1 / 3),
    Setting("fp32-sparse", "PyTorch fp32, same sparse scheme", "torch", train="scheme"),
    Setting("int8-qas", "mcutrain int8 + QAS, sparse scheme (float32 master)", "core", flags=MASTER),
    Setting("int8-qas-stoch", "mcutrain int8 + QAS, sparse scheme (stochastic rounding, no master)", "core",
            flags=("--update-rule", "stochastic"), needs="--update-rule"),
    Setting("int8-noqas", "mcutrain int8 without QAS, sparse scheme (float32 master)", "core", qas=False,
            flags=MASTER),
    Setting("int8-cls", "mcutrain int8 + QAS, classifier only (float32 master)", "core", scheme=False, flags=MASTER),
    Setting("int8-intbwd", "mcutrain integer-only backward + QAS, sparse scheme (stochastic rounding)", "core",
            flags=("--backward", "int", "--update-rule", "stochastic"), needs="--backward"),
    # task (d): the classifier-only scheme beside its own fp32 run
    Setting("fp32-cls", "PyTorch fp32, classifier only", "torch", scheme=False, extra=True),
    Setting("int8-cls-stoch", "mcutrain int8 + QAS, classifier only (stochastic rounding, no master)", "core",
            scheme=False, flags=("--update-rule", "stochastic"), extra=True),
]


@dataclass
class Task:
    key: str
    title: str
    source: List[str]               # convert arguments naming the model
    scheme: List[str]               # convert arguments of the sparse scheme
    size: int                       # input resolution (square)
    channels: int
    lr: float
    train_per_class: int
    test_per_class: int
    classes: Tuple[int, ...] = tuple(range(10))
    note: str = ""
    board_ok: bool = False          # small enough for the emulated board check
    prepare: Optional[object] = None  # callable run once before converting (e.g. writes a model folder)
    domain: Optional[object] = None   # int8 images -> the shifted domain the device trains and tests on
    settings: Optional[Tuple[str, ...]] = None  # the settings it runs (None: every one but the extra ones)
    section: str = ""                 # its own section of docs/benchmarks.md ("": the main one)


def mit_at_resolution(name, res):
    """A copy of a MIT model folder whose shapes are for res x res inputs (the convs do not depend
    on the resolution; model.json records each conv's in/out size)."""
    src = MIT_DIR / name
    dst = WORK / f"mit{res}" / name
    if not (dst / "model.json").exists():
        model = json.loads((src / "model.json").read_text())
        factor = model["first_conv"]["in_shape"] // res

        def scale(obj):
            if isinstance(obj, dict):
                return {k: (v // factor if k in ("in_shape", "out_shape") and isinstance(v, int) else scale(v))
                        for k, v in obj.items()}
            return [scale(v) for v in obj] if isinstance(obj, list) else obj
        dst.mkdir(parents=True, exist_ok=True)
        (dst / "model.json").write_text(json.dumps(scale(model)))
        shutil.copyfile(src / "weights.npz", dst / "weights.npz")
    return dst


def make_tasks(quick, demo_dir=None):
    demo = Path(demo_dir or DEMO_DIR)
    tr, te = (4, 4) if quick else (30, 30)
    tasks = []
    schemes = {"mbv2-w0.35": "99kb", "proxyless-w0.3": "98kb", "mcunet-5fps": "99kb"}
    for name, budget in schemes.items():
        if quick:
            continue                # (c) is the same family at a quarter of the cost
        tasks.append(Task(
            f"mit-{name}", f"(a) {name} (ImageNet int8, MIT) -> Fashion-MNIST 128x128x3, scheme {budget}",
            ["--from", "mit-int8", MIT_DIR / name, "--num-classes", "10"],
            ["--scheme", f"{MIT_DIR / 'schemes.json'}:{name}:{budget}"], 128, 3, 0.003, tr, te,
            note="fresh 10-way classifier"))
    tasks.append(Task(
        "demo", "(b) FashionNet pretrained on Fashion-MNIST classes 0-4 (host) -> all 10 classes, 28x28",
        ["examples/fashion_net.py:FashionNet", "--weights", demo / "fashion_net.pt", "--calib", demo / "calib.npz"],
        ["--n-bias-update", "2", "--weight-update", "10:1"], 28, 1, 0.05,
        10 if quick else 100, 10 if quick else 100, note="classifier pretrained on 5 classes", board_ok=True))
    tasks.append(Task(
        "small-mbv2-64", "(c) mbv2-w0.35 at 64x64 (fits the 256 KB board) -> Fashion-MNIST 64x64x3, scheme 49kb",
        ["--from", "mit-int8", None, "--num-classes", "10"],
        ["--scheme", f"{MIT_DIR / 'schemes.json'}:mbv2-w0.35:49kb"], 64, 3, 0.003,
        4 if quick else 40, 4 if quick else 40, note="fresh 10-way classifier", board_ok=True,
        prepare=lambda t: t.source.__setitem__(2, mit_at_resolution("mbv2-w0.35", 64))))
    tasks.append(Task(
        "shift", "(d) ShiftNet (conv, max pool, FC 3136-128-10) pretrained on Fashion-MNIST -> noisy images "
        "of the same 10 classes (Gaussian, 80 levels), 28x28",
        ["bench/shift_net.py:ShiftNet", "--weights", SHIFT_DIR / "shift_net.pt", "--calib", SHIFT_DIR / "calib.npz"],
        ["--n-bias-update", "1"], 28, 1, 0.05, 10 if quick else 100, 10 if quick else 100,
        note="calibrated on the clean images; schemes: classifier only, classifier + the conv's bias "
             "(--n-bias-update counts convs)",
        prepare=lambda t: shift_net.pretrain(SHIFT_DIR), domain=shift_net.noisy,
        settings=("fp32-cls", "int8-cls", "int8-cls-stoch", "fp32-sparse", "int8-qas", "int8-qas-stoch"),
        section="shift"))
    return tasks


def available(task):
    if task.key.startswith(("mit-", "small-")) and not (MIT_DIR / "schemes.json").exists():
        return f"{MIT_DIR} is absent (the MIT models live in ../shared, not in the repository)"
    if task.key == "shift" and not Path(FASHION_MNIST_DIR).exists() and not os.environ.get("FASHION_MNIST_DIR"):
        return "Fashion-MNIST is absent (Debian package dataset-fashion-mnist)"
    if task.key == "demo" and not Path(task.source[2]).exists():
        return f"{task.source[2]} is absent: run make demo (or python examples/pretrain_fashion.py)"
    return None


def task_settings(task, settings):
    """The settings task runs: those it names, or every one but the extra ones."""
    return [s for s in settings if (s.key in task.settings if task.settings else not s.extra)]


def task_data(task, seed):
    from host_tools.datasets import load_fashion_mnist
    _, train_labels = load_fashion_mnist("train")
    _, test_labels = load_fashion_mnist("test")
    tr = B.balanced(train_labels, task.classes, task.train_per_class, np.random.default_rng(seed))
    te = B.balanced(test_labels, task.classes, task.test_per_class, np.random.default_rng(12345))
    x, y = B.fashion_int8("train", tr, task.size, task.channels)
    tx, ty = B.fashion_int8("test", te, task.size, task.channels)
    if task.domain:
        x, tx = task.domain(x), task.domain(tx)
    return x, y, tx, ty


def convert_setting(task, s, out_dir):
    args = list(task.source) + (list(task.scheme) if s.scheme else []) + list(s.flags)
    out = out_dir / f"{task.key}-{'scheme' if s.scheme else 'cls'}{'-' + '-'.join(s.flags) if s.flags else ''}.mct"
    if not out.exists():
        B.convert(args, out)
    return out


def run_setting(task, s, mct, data, lrs, curve_at, curve_n):
    x, y, tx, ty = data
    if s.engine == "torch":
        return B.train_torch(mct, s.train, x, y, lrs, tx, ty, curve_at, curve_n)
    return B.train_core(mct, s.qas, x, y, lrs, tx, ty, curve_at, curve_n)


# ---------------------------------------------------------------------------------------------
# the same steps on the boards

def board_check(task, mct, data, steps, n_test, boards_to_run):
    """Train `steps` steps (seed 0's first images, a cosine schedule over `steps`) with the C core
    and on each board; returns {board: (equal, seconds)}; raises if a board differs."""
    from host_tools.boards import runners as boards
    x, y, tx, ty = data
    x, y, tx, ty = B.device_rows(x[:steps]), y[:steps], B.device_rows(tx[:n_test]), ty[:n_test]
    lrs = B.lr_schedule(steps, task.lr)
    model = B.mct_format.read(mct)
    m = B.core_model(model.data, qas=True)
    sim_losses = [np.float32(m.train_step(x[i], int(y[i]), lrs[i])).view(np.uint32) for i in range(steps)]
    _, sim_pred = B.core_accuracy(m, tx, ty, model.n_classes)
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench-board-") as tmp:
        tmp = Path(tmp)
        shutil.copyfile(mct, tmp / "model.mct")
        for name, arr in (("train.bin", x), ("train_labels.bin", y.astype(np.uint8)), ("lrs.bin", lrs.astype("<f4")),
                          ("test.bin", tx), ("test_labels.bin", ty.astype(np.uint8))):
            (tmp / name).write_bytes(np.ascontiguousarray(arr).tobytes())
        files = [tmp / n for n in ("model.mct", "train.bin", "train_labels.bin", "lrs.bin", "test.bin",
                                   "test_labels.bin")] + [ROOT / "boards" / "lib" / "romfile.py"]
        for board in boards_to_run:
            t0 = time.time()
            res = boards.run_script(board, ROOT / "bench" / "board_train.py", files, timeout=1800,
                                    heapsize="64M" if board == "unix" else None)   # the data sit in its heap
            secs = time.time() - t0
            lines = res.output.splitlines()
            losses = [int(ln[2:], 16) for ln in lines if ln.startswith("L ")]
            preds = next((ln[2:] for ln in lines if ln.startswith("P ")), "")
            preds = [int(p) for p in preds.split(",") if p]
            if res.returncode or "DONE" not in lines:
                raise RuntimeError(f"{board} failed:\n{res.output[-3000:]}")
            same = losses == [int(v) for v in sim_losses] and preds == list(sim_pred)
            if not same:
                first = next((i for i, (a, b) in enumerate(zip(losses, sim_losses)) if a != b), None)
                raise AssertionError(f"{board} differs from the C core simulation (first different loss at step "
                                     f"{first}; predictions equal: {preds == list(sim_pred)})")
            acc = float(np.mean(np.asarray(preds) == ty) * 100)
            print(f"  board {board}: {steps} steps and {n_test} predictions identical to the C core "
                  f"simulation (accuracy {acc:.1f} %, {secs:.0f} s)", flush=True)
            out[board] = dict(equal=same, seconds=round(secs, 1), steps=steps, n_test=n_test, accuracy=acc)
    return out


# ---------------------------------------------------------------------------------------------
# report

def summarize(results):
    """(mean, std, min, max) of each task/setting's final accuracy."""
    out = {}
    for tk, rows in results.items():
        for sk, runs in rows.items():
            v = np.asarray([r["final"] for r in runs])
            out[(tk, sk)] = (v.mean(), v.std(ddof=1) if len(v) > 1 else 0.0, v.min(), v.max())
    return out


def plot(task, rows, settings, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for s in settings:
        runs = rows.get(s.key)
        if not runs:
            continue
        steps = [p[0] for p in runs[0]["curve"]]
        acc = np.asarray([[p[1] for p in r["curve"]] for r in runs])
        ax.plot(steps, acc.mean(0), marker="o", ms=3, label=s.label)
        ax.fill_between(steps, acc.min(0), acc.max(0), alpha=0.15)
    ax.set_xlabel("training steps (batch 1)")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title(task.title, fontsize=8)
    B.save_plot(fig, ax, path)


SECTIONS = {"": "## Transfer-learning accuracy: int8 + QAS sparse vs fp32 PyTorch (`make bench-accuracy`)",
            "shift": "## Fine-tuning on a shifted domain: int8 vs fp32 PyTorch (`make bench-accuracy`, task (d))"}


def report(tasks, settings, left_out, results, boards_done, args, wall, img_dir, docs, section=""):
    summ = summarize(results)
    lines = [SECTIONS[section], ""]
    lines += [f"Command: `{args.command}`. Date: {time.strftime('%Y-%m-%d', time.gmtime())}. "
              f"Machine: {B.machine_line()}; PyTorch {__import__('torch').__version__}, "
              f"`torch.set_num_threads(1)`. Run time: {wall / 60:.1f} min of compute (the sum over tasks; "
              "the machine was shared with other jobs).", ""]
    lines += ["Every setting sees the same images in the same order, batch 1, plain SGD (no momentum, no weight "
              "decay), the same cosine learning-rate schedule with 5 % linear warm-up (peak lr per task below"
              + ("; one extra fp32 full fine-tune row at a third of it, because full fine-tuning at the sparse "
                 "scheme's lr can diverge, and the goal column takes the better of the two" if not section else "")
              + "); one epoch. A seed draws "
              "the training images (balanced over the classes) and their order; the held-out test images "
              "(Fashion-MNIST test split, balanced) are the same for every seed. Accuracy is on all held-out "
              "images after the last step, mean ± sample standard deviation over the seeds [min, max].",
              "The fp32 rows train the float32 model of the same `.mct` file (its dequantized int8 weights, "
              "float activations, batch norm folded; bench/benchlib.py `float_net`) with PyTorch autograd. The "
              "mcutrain rows run the device's C core on the host through ctypes: the same code and the same "
              "numbers as on a board (checked " + ("below" if boards_done else "on the boards by the tasks of "
                                                    "the main section") + ").", ""]
    done = [t for t in tasks if t.key in results]
    for t in done:
        n_seeds = len(next(iter(results[t.key].values())))
        lines.append(f"- **{t.key}**: {t.title}; {t.note}; {t.train_per_class * len(t.classes)} training steps, "
                     f"{t.test_per_class * len(t.classes)} test images, peak lr {t.lr:g}, {n_seeds} seeds.")
    lines += ["", "| setting | " + " | ".join(t.key for t in done) + " |", "|---|" + "---|" * len(done)]
    for s in settings:
        cells = []
        for t in done:
            if (t.key, s.key) in summ:
                mean, std, lo, hi = summ[(t.key, s.key)]
                cells.append(f"{mean:.1f} ± {std:.1f} [{lo:.1f}, {hi:.1f}]")
            else:
                cells.append("–")
        lines.append(f"| {s.label} | " + " | ".join(cells) + " |")
    lines.append("")
    if not section:
        lines += ["The goal: mcutrain int8 + QAS sparse within 1 point of fp32 with the same scheme and within 2 "
                  "points of fp32 full fine-tune (the better of its two learning rates); differences of the means:",
                  "", "| task | int8 QAS sparse − fp32 sparse | int8 QAS sparse − best fp32 full |", "|---|---|---|"]
    for t in done if not section else []:
        gaps = []
        for refs, goal in ((("fp32-sparse",), 1.0), (("fp32-full", "fp32-full-lr3"), 2.0)):
            have = [summ[(t.key, r)][0] for r in refs if (t.key, r) in summ]
            if (t.key, "int8-qas") in summ and have:
                d = summ[(t.key, "int8-qas")][0] - max(have)
                gaps.append(f"{d:+.1f} ({'met' if d >= -goal else 'missed'})")
            else:
                gaps.append("–")
        lines.append(f"| {t.key} | " + " | ".join(gaps) + " |")
    if not section:
        lines.append("")
    pairs = [("classifier only", "fp32-cls", ("int8-cls", "int8-cls-stoch")),
             ("classifier + biases", "fp32-sparse", ("int8-qas", "int8-qas-stoch"))]
    shifted = [t for t in done if t.settings and "fp32-cls" in t.settings]
    if shifted:
        lines += ["Each scheme against fp32 on the same scheme (the goal: within 1 point); the means, and their "
                  "differences from fp32:", "", "| task | scheme | fp32 | int8 (float32 master) | int8 (stochastic) |",
                  "|---|---|---|---|---|"]
        for t in shifted:
            for name, ref, ints in pairs:
                if (t.key, ref) not in summ:
                    continue
                base = summ[(t.key, ref)][0]
                cells = [f"{summ[(t.key, k)][0]:.1f} ({summ[(t.key, k)][0] - base:+.1f}, "
                         f"{'met' if summ[(t.key, k)][0] - base >= -1.0 else 'missed'})" if (t.key, k) in summ else "–"
                         for k in ints]
                lines.append(f"| {t.key} | {name} | {base:.1f} | " + " | ".join(cells) + " |")
        lines.append("")
    for key, why in left_out:
        lines.append(f"- Not run: {key}: {why}.")
    if left_out:
        lines.append("")
    if boards_done:
        lines.append("Same steps on the boards (task, seed 0, int8 + QAS sparse; a cosine schedule over the "
                     "steps shown): every step's loss (float32 bits) and every prediction equal the C core "
                     "simulation's:")
        lines.append("")
        lines.append("| task | board | steps | predictions | identical | held-out accuracy | wall time |")
        lines.append("|---|---|---|---|---|---|---|")
        for tk, per_board in boards_done.items():
            for board, r in per_board.items():
                lines.append(f"| {tk} | {board} | {r['steps']} | {r['n_test']} | {'yes' if r['equal'] else 'NO'} | "
                             f"{r['accuracy']:.1f} % | {r['seconds']:.0f} s |")
        lines.append("")
    lines.append("Learning curves (mean over the seeds, band = min to max): the points before the last step are "
                 "measured on the first 100 held-out images only (to keep the run short), the last on all of them.")
    lines.append("")
    for t in tasks:
        if t.key in results:
            rel = os.path.relpath(img_dir / f"accuracy-{t.key}.png", docs.parent)
            lines.append(f"![{t.key}]({rel})")
    B.write_section(MARK if not section else f"<!-- bench-accuracy-{section} -->", "\n".join(lines), docs)


# ---------------------------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke test, < 3 min)")
    p.add_argument("--tasks", help="comma-separated task keys (default: all available)")
    p.add_argument("--seeds", type=int, help="number of seeds (default 3, quick 2)")
    p.add_argument("--boards", default="unix,qemu-m3", help="boards of the equality check ('' for none)")
    p.add_argument("--board-steps", type=int, help="steps of the board check (default 300, quick 20)")
    p.add_argument("--docs", type=Path, default=B.DOCS, help="the markdown file to write the section into")
    p.add_argument("--img-dir", type=Path, default=ROOT / "docs" / "img")
    p.add_argument("--demo-dir", type=Path, default=DEMO_DIR,
                   help="folder of examples/pretrain_fashion.py's output (fashion_net.pt, calib.npz)")
    p.add_argument("--results", type=Path, help="folder of the raw results, one TASK.json each, written after "
                   "every run (default build/bench/accuracy, --quick: build/bench/accuracy-quick)")
    p.add_argument("--resume", action="store_true", help="keep the runs already in --results (same sizes)")
    p.add_argument("--report-only", action="store_true", help="rewrite the section and plots from --results")
    args = p.parse_args(argv)
    args.command = "make bench-accuracy" + (" (--quick)" if args.quick else "")
    args.results = args.results or WORK / ("accuracy-quick" if args.quick else "accuracy")
    if args.report_only:
        return write_report(args)
    import torch
    torch.set_num_threads(1)
    torch.manual_seed(0)
    t_start = time.time()
    seeds = list(range(args.seeds or (2 if args.quick else 3)))
    tasks, left_out = [], []
    for t in make_tasks(args.quick, args.demo_dir):
        if args.tasks and t.key not in args.tasks.split(","):
            continue
        why = available(t)
        if why:
            print(f"skipping task {t.key}: {why}")
            left_out.append((t.key, why))
        else:
            tasks.append(t)
    settings = []
    for s in SETTINGS:
        if s.needs and not B.convert_has_flag(s.needs):
            why = f"`host_tools convert` has no {s.needs} option on this checkout"
            print(f"leaving out setting {s.key}: {why}")
            left_out.append((s.label, why))
        else:
            settings.append(s)
    boards_to_run = [b for b in args.boards.split(",") if b]
    from host_tools.boards import runners as hb
    for b in list(boards_to_run):
        if not hb.firmware_path(b).exists():
            print(f"board check: no firmware for {b} (make firmware BOARD={b}); left out")
            left_out.append((f"board check on {b}", f"no firmware (make firmware BOARD={b})"))
            boards_to_run.remove(b)
    WORK.mkdir(parents=True, exist_ok=True)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "left_out.json").write_text(json.dumps(left_out))
    mct_dir = Path(tempfile.mkdtemp(prefix="bench-mct-", dir=WORK))
    try:
        for t in tasks:
            print(f"== task {t.key}: {t.title}", flush=True)
            if t.prepare:
                t.prepare(t)
            mine = task_settings(t, settings)
            # a torch setting trains the float model of the file of its scheme
            mcts = {s.key: convert_setting(t, s if s.engine == "core" else Setting("", "", "core", scheme=s.scheme),
                                           mct_dir) for s in mine}
            path = args.results / f"{t.key}.json"
            saved = json.loads(path.read_text()) if args.resume and path.exists() else {}
            rows, board_rows = saved.get("results", {}), saved.get("boards", {})
            seconds = saved.get("seconds", 0.0)

            def save():
                path.write_text(json.dumps(dict(results=rows, boards=board_rows, seconds=round(seconds, 1))))
            steps = t.train_per_class * len(t.classes)
            lrs = B.lr_schedule(steps, t.lr)
            curve_at = set(B.checkpoints(steps, 4 if args.quick else 5))
            for seed in seeds:
                data = task_data(t, seed)
                for s in mine:
                    if any(r["seed"] == seed for r in rows.get(s.key, [])):
                        continue            # --resume: done already
                    t0 = time.time()
                    curve, final, losses = run_setting(t, s, mcts[s.key], data,
                                                       (lrs * np.float32(s.lr_scale)).astype(np.float32),
                                                       curve_at, min(100, len(data[3])))
                    rows.setdefault(s.key, []).append(dict(seed=seed, final=final, curve=curve,
                                                           mean_loss=float(np.nanmean(losses)),
                                                           seconds=round(time.time() - t0, 1)))
                    seconds += time.time() - t0
                    save()
                    print(f"  seed {seed} {s.key:12s} accuracy {final:5.1f} %  mean loss {np.nanmean(losses):.3f}"
                          f"  ({time.time() - t0:.0f} s)", flush=True)
                if seed == 0 and t.board_ok and boards_to_run and not board_rows:
                    t0 = time.time()
                    n = args.board_steps or (20 if args.quick else 300)
                    board_rows = board_check(t, mcts["int8-qas"], data, min(n, steps),
                                             min(10 if args.quick else 100, len(data[3])), boards_to_run)
                    seconds += time.time() - t0
                    save()
            plot(t, rows, settings, args.img_dir / f"accuracy-{t.key}.png")
    finally:
        shutil.rmtree(mct_dir, ignore_errors=True)
    print(f"{(time.time() - t_start) / 60:.1f} min")
    return write_report(args, [t.key for t in tasks])


def write_report(args, keys=None):
    """The section and plots from the results folder: the tasks run now, or (--report-only) every
    task whose results are there (several workers may have filled it)."""
    results, boards_done, wall = {}, {}, {}
    tasks = []
    for t in make_tasks(args.quick, args.demo_dir):
        path = args.results / f"{t.key}.json"
        if (keys is None or t.key in keys) and path.exists():
            saved = json.loads(path.read_text())
            results[t.key] = saved["results"]
            if saved["boards"]:
                boards_done[t.key] = saved["boards"]
            wall[t.key] = saved["seconds"]
            tasks.append(t)
    left = args.results / "left_out.json"
    left_out = [tuple(x) for x in json.loads(left.read_text())] if left.exists() else []
    for section in SECTIONS:        # a section is rewritten only when some of its tasks ran
        mine = [t for t in tasks if t.section == section]
        if not mine:
            continue
        res = {t.key: results[t.key] for t in mine}
        settings = [s for s in SETTINGS if any(s.key in r for r in res.values())]
        for t in mine:
            plot(t, res[t.key], settings, args.img_dir / f"accuracy-{t.key}.png")
        report(mine, settings, left_out, res, {k: v for k, v in boards_done.items() if k in res}, args,
               sum(wall[t.key] for t in mine), args.img_dir, args.docs, section)
    print(f"wrote {args.docs} and {args.img_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
