"""`host_tools convert --input-mean/--input-std` through the CLI, on models trained on normalized
inputs: the C core, fed the raw pixels (pixel - 128), predicts what PyTorch predicts on the
normalized images, and the report says where the normalization went and whether it is exact."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from host_tools.ccore.core import CoreModel
from host_tools.model import mct_format
from host_tools.model.layout import to_device

ROOT = Path(__file__).resolve().parents[1]
sklearn_datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn gives the digits data set")

MODELS = '''
import torch.nn as nn


class Unpadded(nn.Module):
    """A conv reading no padding, then a Linear."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(8 * 6 * 6, 10)

    def forward(self, x):
        return self.fc(self.conv(x).relu().flatten(1))


class Padded(Unpadded):
    """The same with a zero-padded first conv (the usual CNN stem)."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 8 * 8, 10)
'''


def _digits():
    """sklearn's 8x8 digits as 3-channel 0-1 pixels (integer pixel values / 255, as a camera gives)."""
    d = sklearn_datasets.load_digits()
    pixels = np.round(d.images * 255 / 16)[:, None] * np.array([1.0, 0.8, 0.6])[None, :, None, None]
    return (np.round(pixels) / 255).astype(np.float32), d.target.astype(np.int64)


def _train(model, x, mean, std):
    """A few epochs on normalized inputs, (x - mean) / std per channel (torchvision's Normalize)."""
    torch.manual_seed(0)
    xn = (torch.from_numpy(x) - torch.tensor(mean)[None, :, None, None]) / torch.tensor(std)[None, :, None, None]
    y = torch.from_numpy(_digits()[1])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(40):
        for i in range(0, len(x), 128):
            loss = F.cross_entropy(model(xn[i:i + 128]), y[i:i + 128])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval(), xn


@pytest.mark.parametrize("cls,mean,std,exact", [
    ("Unpadded", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), True),     # no padding: exact
    ("Padded", (0.2, 0.2, 0.2), (0.3, 0.25, 0.2), True),                   # 255 * 0.2 = 51: the zero point
    ("Padded", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), False),      # padding, torchvision's ImageNet
])
def test_convert_folds_the_normalization(tmp_path, cls, mean, std, exact):
    (tmp_path / "models.py").write_text(MODELS)
    sys.path.insert(0, str(tmp_path))
    try:
        import importlib
        models = importlib.reload(importlib.import_module("models"))
    finally:
        sys.path.remove(str(tmp_path))
    x, y = _digits()
    model, xn = _train(getattr(models, cls)(), x, mean, std)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    np.savez(tmp_path / "calib.npz", x=x[:300])
    np.savez(tmp_path / "val.npz", x=x[300:], y=y[300:])
    out = tmp_path / "m.mct"
    r = subprocess.run([sys.executable, "-m", "host_tools", "convert", f"{tmp_path / 'models.py'}:{cls}",
                        "--weights", tmp_path / "w.pt", "--calib", tmp_path / "calib.npz", "--val",
                        tmp_path / "val.npz", "--input-mean", ",".join(map(str, mean)),
                        "--input-std", ",".join(map(str, std)), "-o", out],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("normalization"))
    assert "folded into the input's zero point" in line and "'conv'" in line
    assert line.endswith(": exact") == exact, line
    assert "accuracy float" in r.stdout
    # the device gets the raw pixels; PyTorch the normalized images
    m = mct_format.read(out)
    core = CoreModel(m.data)
    raw = (np.round(x[300:] * 255) - 128).astype(np.int8)
    with torch.no_grad():
        want = model(xn[300:]).numpy()
    raw = to_device(raw)                        # the device's order: channels last
    got = core.predict(raw)
    agree = np.mean(got == want.argmax(1))
    assert agree >= 0.97, agree
    assert np.mean(got == y[300:]) >= 0.85
    # the logits themselves: dequantized unclamped logits against PyTorch's
    op = m.ops[-1]
    z = []
    for v in raw[:200]:
        core.forward(v, m.n_classes)
        z.append(core.logits32(m.n_classes)[0])
    err = np.array(z) * np.float64(op.out_scale) - want[:200]
    assert 10 * np.log10(np.sum(want[:200] ** 2) / np.sum(err ** 2)) > 20


def test_normalization_flags_refuse_what_they_cannot_fold(tmp_path):
    (tmp_path / "models.py").write_text(MODELS + '''

class TwoReaders(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3)
        self.b = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return (self.a(x) + self.b(x)).mean((2, 3))
''')
    np.savez(tmp_path / "calib.npz", x=_digits()[0][:50])
    base = [sys.executable, "-m", "host_tools", "convert", "--calib", tmp_path / "calib.npz", "-o", tmp_path / "m.mct"]
    sys.path.insert(0, str(tmp_path))
    try:
        import importlib
        models = importlib.reload(importlib.import_module("models"))
    finally:
        sys.path.remove(str(tmp_path))
    for model, flags, says in [
            ("TwoReaders", ["--input-mean", "0.5"], "the input is read by 2 operations"),
            ("Unpadded", ["--input-mean", "0.5,0.5"], "--input-mean has 2 values but the model input has 3 channels"),
            ("Unpadded", ["--input-std", "0"], "--input-std must be > 0"),
            ("Unpadded", ["--input-std", "0.5", "--input-zero", "0"], "leave out --input-scale and --input-zero")]:
        torch.save(getattr(models, model)().state_dict(), tmp_path / "w.pt")
        r = subprocess.run(base + [f"{tmp_path / 'models.py'}:{model}", "--weights", tmp_path / "w.pt", *flags],
                           cwd=ROOT, capture_output=True, text=True)
        assert r.returncode != 0 and says in r.stderr, (model, flags, r.stderr)
        assert "Traceback" not in r.stderr and not (tmp_path / "m.mct").exists()
