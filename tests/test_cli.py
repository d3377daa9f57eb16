"""The command line as a user runs it: `python -m host_tools ...` as a subprocess, its report
included, on models written the way torchvision writes them (tests/support/cli_models.py), not for mcutrain.

- convert: every supported op (conv of each kernel size, depthwise, pointwise, batch norm folded and
  not, ReLU, ReLU6, Hardtanh, MaxPool2d, AvgPool2d, global average pooling three ways, Linear, two
  Linear, residual add, flatten/view, Identity, Dropout); the report's shapes are PyTorch's, its
  SQNR (int8 simulation against the float model) high on every layer.
- check, plan on a converted model with them (deploy --emulate and export: tests/test_example.py).
- bad input: data whose shape or range does not fit, labels outside the classes, a model whose
  output is not logits [N, K]: one sentence naming both, exit status 2, no traceback, no file.
"""
import re
import subprocess
import sys

import numpy as np
import pytest

from host_tools.boards import runners as boards
from host_tools.model import mct_format

ROOT = boards.REPO
MODELS = "tests/support/cli_models.py"

# model class, input (C, H, W), classes, the report's op kinds it must show
CASES = {
    "ResNetTiny": ((1, 16, 16), 5, {"conv3x3", "conv1x1", "maxpool3x3", "add", "avgpool", "fc"}),
    "MobileNetV2Tiny": ((3, 16, 16), 4, {"conv3x3", "dwconv", "conv1x1", "add", "avgpool", "fc"}),
    "MeanPoolNet": ((3, 8, 8), 3, {"conv3x3", "avgpool", "fc"}),
    "LeNet": ((1, 16, 16), 10, {"conv5x5", "avgpool2x2", "dwconv", "maxpool2x2", "fc"}),
}


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "host_tools", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def data_file(path, shape, classes, n=16, seed=0, scale=1.0):
    """n random images in [0, scale) and labels covering 0..classes-1."""
    rng = np.random.default_rng(seed)
    np.savez(path, x=(rng.random((n, *shape)) * scale).astype(np.float32), y=np.arange(n) % classes)
    return path


def report_rows(stdout):
    """{layer: (op kind, (C, H, W), SQNR dB)} from convert's table."""
    rows = {}
    for m in re.finditer(r"^\s*\d+ (\S+)\s+(\S+)\s+(\d+)x(\d+)x(\d+)\s+\d+\s+\S+\s+-?\d+\s+(\S+)$", stdout, re.M):
        rows[m.group(1)] = (m.group(2), tuple(int(m.group(i)) for i in (3, 4, 5)), float(m.group(6)))
    return rows


def torch_shapes(cls_name, shape):
    """Each leaf module's output shape (C, H, W) in PyTorch's own forward: the reference."""
    import torch
    from tests.support import cli_models
    model = getattr(cli_models, cls_name)().eval()
    shapes = {}

    def keep(name):
        def hook(module, inputs, output):
            shapes.setdefault(name, tuple(output.shape[1:]) + (1,) * (4 - output.dim()))
        return hook

    for name, mod in model.named_modules():
        if not list(mod.children()):
            mod.register_forward_hook(keep(name))
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    return shapes


@pytest.mark.parametrize("cls", CASES)
def test_convert_every_op(cls, tmp_path):
    shape, classes, kinds = CASES[cls]
    data = data_file(tmp_path / "data.npz", shape, classes)
    out = tmp_path / "model.mct"
    res = cli("convert", f"{MODELS}:{cls}", "--calib", data, "--val", data, "--n-bias-update", "1", "-o", out)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    rows = report_rows(res.stdout)
    assert kinds <= {kind for kind, _, _ in rows.values()}, res.stdout
    want = torch_shapes(cls, shape)
    checked = 0
    for name, (kind, got, db) in rows.items():
        assert db >= 30, f"{name}: SQNR {db} dB\n{res.stdout}"
        if name in want:
            assert got == want[name], (name, got, want[name])
            checked += 1
    assert checked >= 2
    assert re.search(r"top-1 agreement on .*: (100\.00|9\d\.\d\d)%", res.stdout), res.stdout
    m = mct_format.read(out)
    assert tuple(m.input_shape) == shape and m.n_classes == classes


def test_check_and_plan_on_a_converted_resnet(tmp_path):
    """convert -> check on the emulated board -> plan, through the CLI."""
    boards.build_firmware("qemu-m3")
    shape, classes, _ = CASES["ResNetTiny"]
    data = data_file(tmp_path / "data.npz", shape, classes, n=24)
    model = tmp_path / "resnet.mct"
    res = cli("convert", f"{MODELS}:ResNetTiny", "--calib", data, "--n-bias-update", "2", "-o", model)
    assert res.returncode == 0, res.stderr
    res = cli("check", model, "--board", "qemu-m3", "--data", data, "--inputs", "4", "--steps", "3")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "forward: 4/4 inputs bit-exact" in res.stdout and "check passed" in res.stdout
    planned = tmp_path / "planned.mct"
    res = cli("plan", model, "--data", data, "--budget", "8KB", "--max-samples", "24", "--epochs", "1",
              "--layers", "0", "--ratios", "1", "--verify", "0", "-o", planned)
    assert res.returncode == 0, res.stdout + res.stderr
    budget = 8 * 1024
    from host_tools.model.numerics import model_trained_bytes
    m = mct_format.read(planned)
    assert m.arena_size + model_trained_bytes(m) <= budget, res.stdout


# --- bad input --------------------------------------------------------------------------------

def assert_refused(res, *words, not_written=()):
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, res.stderr
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("host_tools ") and ": error: " in line, res.stderr
    for w in words:
        assert w in line, (w, line)
    for path in not_written:
        assert not path.exists(), path
        assert not list(path.parent.glob(f".{path.name}-*")), "a temporary file was left"


def test_convert_refuses_data_that_does_not_fit(tmp_path):
    out = tmp_path / "m.mct"
    shape, classes, _ = CASES["LeNet"]
    wrong_channels = data_file(tmp_path / "rgb.npz", (3, 16, 16), classes)
    assert_refused(cli("convert", f"{MODELS}:LeNet", "--calib", wrong_channels, "-o", out),
                   "rgb.npz", "[3, 16, 16]", "LeNet", not_written=[out])
    pixels = data_file(tmp_path / "pixels.npz", shape, classes, scale=255)     # 0-255, not 0-1
    assert_refused(cli("convert", f"{MODELS}:LeNet", "--calib", pixels, "-o", out),
                   "pixels.npz", "[0, 1]", not_written=[out])
    good = data_file(tmp_path / "good.npz", shape, classes)
    labels = data_file(tmp_path / "labels.npz", shape, 12)                    # labels up to 11
    assert_refused(cli("convert", f"{MODELS}:LeNet", "--calib", good, "--val", labels, "-o", out),
                   "labels.npz", "10 classes", not_written=[out])


@pytest.mark.parametrize("cls,words", [("FeatureMapOut", ["FeatureMapOut", "[2, 4, 8, 8]", "[N, K]"]),
                                       ("TupleOut", ["TupleOut", "tuple", "[N, K]"])])
def test_convert_refuses_a_model_without_logits(cls, words, tmp_path):
    out = tmp_path / "m.mct"
    data = data_file(tmp_path / "d.npz", (1, 8, 8), 3)
    assert_refused(cli("convert", f"{MODELS}:{cls}", "--calib", data, "--no-train-classifier", "-o", out),
                   *words, not_written=[out])


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    data = data_file(tmp / "d.npz", (3, 8, 8), 3)
    res = cli("convert", f"{MODELS}:MeanPoolNet", "--calib", data, "-o", tmp / "model.mct")
    assert res.returncode == 0, res.stderr
    return tmp / "model.mct"


def test_check_refuses_data_that_does_not_fit(small_model, tmp_path):
    labels = data_file(tmp_path / "labels.npz", (3, 8, 8), 7)
    assert_refused(cli("check", small_model, "--data", labels), "labels.npz", "3 classes")
    pixels = data_file(tmp_path / "pixels.npz", (3, 8, 8), 3, scale=255)
    assert_refused(cli("check", small_model, "--data", pixels), "pixels.npz", "[0, 1]")
    small = data_file(tmp_path / "small.npz", (3, 4, 4), 3)
    assert_refused(cli("check", small_model, "--data", small), "small.npz", "model.mct", "3x8x8")


def test_deploy_refuses_data_that_does_not_fit(small_model, tmp_path):
    script = tmp_path / "train.py"
    script.write_text("print('never runs')\n")
    size = 3 * 8 * 8
    (tmp_path / "train.bin").write_bytes(bytes(5 * size + 10))       # not whole inputs
    (tmp_path / "train_labels.bin").write_bytes(bytes([0, 1, 2, 0, 1]))
    files = [small_model, script, tmp_path / "train.bin", tmp_path / "train_labels.bin"]
    flash = tmp_path / "flash.img"
    assert_refused(cli("deploy", "--emulate", "qemu-m3", "--flash", flash, *files, "--run", "train.py"),
                   "train.bin", "model.mct", "192 bytes")
    (tmp_path / "train.bin").write_bytes(bytes(5 * size))
    (tmp_path / "train_labels.bin").write_bytes(bytes([0, 1, 2, 3, 1]))  # class 3 of 3
    assert_refused(cli("deploy", "--emulate", "qemu-m3", "--flash", flash, *files, "--run", "train.py"),
                   "train_labels.bin", "model.mct", "3 classes")
