"""Shared helpers of the accuracy and speed benchmarks (bench/bench_accuracy.py, bench/bench_speed.py).

- data: Fashion-MNIST as int8 images (pixel - 128) at any resolution and channel count, the same
  arrays for every setting;
- `FloatNet`: the float32 PyTorch model of a `.mct` file (its dequantized weights, float
  activations), with the device's training scheme as gradient masks, for the fp32 baselines;
- training loops with one sample order and one learning-rate schedule: PyTorch SGD (batch 1, no
  momentum, no weight decay) and the device's C core through ctypes (host_tools/ccore/core.py);
- writing a section of docs/benchmarks.md between its markers.
"""
import math
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from host_tools.model import graph as g  # noqa: E402
from host_tools.model import mct_format  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
DEMO = ROOT / "build" / "demo"
PYTHON = sys.executable


# ---------------------------------------------------------------------------------------------
# data

def fashion_int8(split, idx, size, channels):
    """Fashion-MNIST images idx of split as int8 [N, C, size, size] (pixel - 128; bilinear resize
    when size != 28, the gray channel repeated), labels int64 [N]."""
    import torch
    import torch.nn.functional as F
    from host_tools.datasets import load_fashion_mnist
    images, labels = load_fashion_mnist(split)
    x = torch.from_numpy(images[idx].astype(np.float32))[:, None]
    if size != 28:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = x.round().clamp(0, 255).repeat(1, channels, 1, 1)
    return (x.numpy() - 128).astype(np.int8), labels[idx].astype(np.int64)


def device_rows(x):
    """Images [N, C, H, W] (PyTorch's order) -> one row of the device's input bytes each (channels last,
    host_tools/model/layout.py); rows [N, size] are taken as the device's already."""
    from host_tools.model.layout import to_device
    return to_device(x) if np.ndim(x) == 4 else np.asarray(x).reshape(len(x), -1)


def demo_images(name):
    """The demo's board data (make demo): build/demo/<name>.bin int8 28x28 images [N, 784] and
    <name>_labels.bin, labels int64 [N]."""
    x = np.frombuffer((DEMO / f"{name}.bin").read_bytes(), dtype=np.int8).reshape(-1, 28 * 28)
    y = np.frombuffer((DEMO / f"{name}_labels.bin").read_bytes(), dtype=np.uint8).astype(np.int64)
    return x, y


def balanced(labels, classes, per_class, rng, exclude=()):
    """per_class random indices of each class, shuffled (one sample order per seed)."""
    idx = []
    for c in classes:
        cand = np.setdiff1d(np.flatnonzero(labels == c), np.asarray(exclude, dtype=np.int64))
        idx.append(rng.choice(cand, per_class, replace=False))
    idx = np.concatenate(idx)
    rng.shuffle(idx)
    return idx


def lr_schedule(steps, lr, warmup=0.05):
    """Cosine learning rate with linear warm-up (the paper's schedule), float32 per step: the value
    each engine receives is the same float32 number."""
    w = max(1, int(steps * warmup))
    out = [lr * (i + 1) / w if i < w else 0.5 * lr * (1 + math.cos(math.pi * (i - w) / max(1, steps - w)))
           for i in range(steps)]
    return np.asarray(out, dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# the float32 model of a .mct file

def _activated(op):
    """(lo, hi) real bounds of a fused ReLU/ReLU6 clamp, or None for a linear layer (whose clamp
    is only the int8 range)."""
    if op.act_min < op.out_zero:
        return None
    return (op.act_min - op.out_zero) * op.out_scale, (op.act_max - op.out_zero) * op.out_scale


def float_net(model: mct_format.Model, train: str):
    """A torch module computing the model in float32 from its dequantized weights.

    train: "all" (every weight and bias: full fine-tune), "scheme" (exactly what the device trains:
    the trained biases, the first rows of the trained weights, through gradient masks), "none".
    """
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class FloatNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.weights, self.biases, self.masks = nn.ParameterList(), nn.ParameterList(), []
            self.layer = {}
            for k, op in enumerate(model.ops):
                if op.type not in (g.CONV2D, g.FC):
                    continue
                o = model.tensors[op.bias].size
                ws = model.tensors[op.wscale].astype(np.float64)
                w = model.tensors[op.weight].astype(np.float64).reshape(o, -1) * ws[:, None]
                if op.type == g.CONV2D:
                    c = model.acts[op.in0][0]
                    w = w.reshape(o, c // op.groups, *op.kernel)
                b = model.tensors[op.bias].astype(np.float64) * ws * op.in0_scale
                wp = nn.Parameter(torch.tensor(w, dtype=torch.float32))
                bp = nn.Parameter(torch.tensor(b, dtype=torch.float32))
                if train == "scheme":
                    rows = model.trained_count[op.weight] // (w.size // o) if model.trainable[op.weight] else 0
                    wp.requires_grad_(rows > 0)
                    bp.requires_grad_(bool(model.trainable[op.bias]))
                    if 0 < rows < o:
                        mask = torch.zeros_like(wp)
                        mask[:rows] = 1
                        wp.register_hook(lambda grad, m=mask: grad * m)
                else:
                    wp.requires_grad_(train == "all")
                    bp.requires_grad_(train == "all")
                self.layer[k] = len(self.weights)
                self.weights.append(wp)
                self.biases.append(bp)

        def forward(self, x):
            """x: int8 input [N, C, H, W] (numpy or tensor) -> float logits [N, K]."""
            x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
            acts = {model.input: (x - model.input_zero) * model.input_scale}
            for k, op in enumerate(model.ops):
                a = acts[op.in0]
                if op.type == g.CONV2D:
                    j = self.layer[k]
                    y = F.conv2d(a, self.weights[j], self.biases[j], stride=op.stride, padding=op.padding,
                                 groups=op.groups)
                elif op.type == g.FC:
                    j = self.layer[k]
                    y = F.linear(a.flatten(1), self.weights[j], self.biases[j])[:, :, None, None]
                elif op.type == g.ADD:
                    y = a + acts[op.in1]
                elif op.type == g.AVGPOOL:
                    y = a.mean(dim=(2, 3), keepdim=True)
                elif op.type == g.MAXPOOL2D:
                    y = F.max_pool2d(a, op.kernel, op.stride, op.padding)
                elif op.type == g.AVGPOOL2D:
                    y = F.avg_pool2d(a, op.kernel, op.stride, op.padding, count_include_pad=True)
                else:
                    raise ValueError(f"op type {op.type}")
                bounds = _activated(op) if op.type in (g.CONV2D, g.FC, g.ADD) else None
                if bounds and op.type != g.FC:
                    y = torch.clamp(y, *bounds)
                acts[op.out] = y
            return acts[model.output].flatten(1)

    return FloatNet()


# ---------------------------------------------------------------------------------------------
# training loops: one sample order, one lr per step, batch 1

def checkpoints(steps, n):
    """Steps after which the test accuracy is measured (0 = before training)."""
    return sorted({0, steps} | {round(steps * i / n) for i in range(1, n)})


def train_torch(mct_path, train, x, y, lrs, test_x, test_y, curve_at, curve_n):
    """PyTorch SGD on the float model of mct_path; returns (curve [(step, acc)], final acc, losses)."""
    import torch
    import torch.nn.functional as F
    net = float_net(mct_format.read(mct_path), train)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=float(lrs[0]), momentum=0.0, weight_decay=0.0)

    def acc(n=None):
        with torch.no_grad():
            xs, ys = (test_x, test_y) if n is None else (test_x[:n], test_y[:n])
            pred = torch.cat([net(xs[i:i + 250]).argmax(1) for i in range(0, len(xs), 250)]).numpy()
        return float(np.mean(pred == ys) * 100)

    curve, losses = [], []
    for i in range(len(lrs) + 1):
        if i in curve_at:
            curve.append((i, acc(None if i == len(lrs) else curve_n)))
        if i == len(lrs):
            break
        for group in opt.param_groups:
            group["lr"] = float(lrs[i])
        loss = F.cross_entropy(net(x[i:i + 1]), torch.tensor([int(y[i])]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return curve, curve[-1][1], losses


def core_model(mct_bytes, qas=True):
    from host_tools.ccore.core import CoreModel
    return CoreModel(mct_bytes, qas=qas)


def core_accuracy(m, test_x, test_y, n_classes):
    pred = [int(p) for p in m.predict(device_rows(test_x))]   # the device's predict
    return float(np.mean(np.asarray(pred) == test_y) * 100), pred


def train_core(mct_path, qas, x, y, lrs, test_x, test_y, curve_at, curve_n):
    """The device's C core (ctypes): same steps as on a board; returns (curve, final acc, losses)."""
    model = mct_format.read(mct_path)
    m = core_model(model.data, qas)
    k = model.n_classes
    xd = device_rows(x)
    curve, losses = [], []
    for i in range(len(lrs) + 1):
        if i in curve_at:
            n = None if i == len(lrs) else curve_n
            curve.append((i, core_accuracy(m, test_x[:n], test_y[:n], k)[0]))
        if i == len(lrs):
            break
        losses.append(m.train_step(xd[i], int(y[i]), lrs[i]))
    return curve, curve[-1][1], losses


# ---------------------------------------------------------------------------------------------
# converting, and what the converter offers

def convert(args, out):
    """python -m host_tools convert ARGS -o OUT; raises with its output on failure."""
    cmd = [PYTHON, "-m", "host_tools", "convert", *map(str, args), "-o", str(out)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return r.stdout


MIT = ROOT.parent / "shared" / "models" / "mit"


def mit_convert_args(name, scheme, backward="float", extra=()):
    """The convert arguments of a MIT model of ../shared/models/mit at a scheme of its schemes.json, and
    any extra options (e.g. ("--recompute", "none"))."""
    return ["--from", "mit-int8", str(MIT / name), "--num-classes", "10", "--scheme",
            f"{MIT}/schemes.json:{name}:{scheme}", "--update-rule", "stochastic",
            *(["--backward", backward] if backward != "float" else []), *extra]


def mit_mct(name, scheme, backward="float", extra=()):
    """build/bench/NAME-SCHEME[-int][-EXTRA].mct, converted again when host_tools is newer."""
    suffix = ("-int" if backward == "int" else "") + "".join("-" + a.lstrip("-") for a in extra)
    mct = ROOT / "build" / "bench" / f"{name}-{scheme}{suffix}.mct"
    newest = max(p.stat().st_mtime for p in (ROOT / "host_tools").rglob("*.py"))
    if not mct.exists() or mct.stat().st_mtime < newest:
        mct.parent.mkdir(parents=True, exist_ok=True)
        convert(mit_convert_args(name, scheme, backward, extra), mct)
    return mct


_HELP = None


def convert_has_flag(flag):
    """Whether `host_tools convert` on this checkout knows the option (e.g. --backward)."""
    global _HELP
    if _HELP is None:
        _HELP = subprocess.run([PYTHON, "-m", "host_tools", "convert", "--help"], cwd=ROOT,
                               capture_output=True, text=True).stdout
    return flag in _HELP


# ---------------------------------------------------------------------------------------------
# plots

def save_plot(fig, ax, path):
    """A learning-curve figure's grid and legend, written to path (PNG) and closed."""
    import matplotlib.pyplot as plt
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# docs/benchmarks.md

def write_section(mark, body, path=DOCS):
    """Replace the text between two `mark` lines (or append it): reruns replace only this section."""
    section = f"{mark}\n{body.rstrip()}\n{mark}"
    text = path.read_text() if path.exists() else "# Benchmarks\n\nEach section says the command that reproduces it.\n\n"
    if mark in text:
        head, _, rest = text.partition(mark)
        _, _, tail = rest.partition(mark)
        text = head + section + tail
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)


def machine_line():
    import platform
    import os
    cpu = ""
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.machine()} {cpu}, {os.cpu_count()} cores (shared), Python {platform.python_version()}"
