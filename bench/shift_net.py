"""Task (d) of `make bench-accuracy`: a user's own small CNN, pretrained on one domain, fine-tuned on
the board on a shifted domain of the same classes (issue 14's case).

ShiftNet is the model of the issue: conv, ReLU, max pool, Linear 3136->128 (ReLU), Linear 128->10.
`pretrain` trains it on Fashion-MNIST (upright images, all 10 classes) and writes shift_net.pt and
calib.npz (upright training images: the converter calibrates on the old domain, as a user would).
The shifted domain is the noisy images (Gaussian noise of standard deviation 80 pixel levels, the
same classes): fine-tuning on it drives the logits out of the range calibrated on the clean images.

    python bench/shift_net.py [OUT_DIR]       (default build/bench/shift)
"""
import sys
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench" / "shift"
SEED = 0


class ShiftNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(16 * 14 * 14, 128)
        self.relu2 = nn.ReLU()
        self.classifier = nn.Linear(128, num_classes)

    def forward(self, x):
        return self.classifier(self.relu2(self.fc(self.flatten(self.pool(self.relu(self.conv(x)))))))


NOISE = 80.0


def noisy(x_int8):
    """The shifted domain of int8 images (pixel - 128): Gaussian noise of NOISE pixel levels, clipped;
    the noise drawn from the images' own bytes (another set of images, another noise)."""
    x = np.asarray(x_int8, dtype=np.int8)
    rng = np.random.default_rng(zlib.crc32(x.tobytes()))
    return np.clip(x + rng.normal(0.0, NOISE, x.shape).round(), -128, 127).astype(np.int8)


def pretrain(out=OUT, epochs=2, batch=128, lr=1e-3):
    """Train ShiftNet on upright Fashion-MNIST; writes shift_net.pt and calib.npz; returns paths."""
    sys.path.insert(0, str(ROOT))
    from host_tools.datasets import load_fashion_mnist
    out = Path(out)
    weights, calib = out / "shift_net.pt", out / "calib.npz"
    if weights.exists() and calib.exists():
        return weights, calib
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    images, labels = load_fashion_mnist("train")
    x = torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]
    y = torch.from_numpy(labels.astype(np.int64))
    model = ShiftNet()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(SEED)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch):
            b = perm[i:i + batch]
            loss = F.cross_entropy(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    rng = np.random.default_rng(SEED)
    np.savez(calib, x=x[rng.choice(len(x), 500, replace=False)].numpy())
    tmp = weights.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(weights)
    return weights, calib


def accuracy(weights, images_u8, labels):
    """Float top-1 (%) of the pretrained model on uint8 images [N, 28, 28]."""
    model = ShiftNet()
    model.load_state_dict(torch.load(weights))
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(images_u8.astype(np.float32) / 255.0)[:, None]).argmax(1).numpy()
    return float(np.mean(pred == labels) * 100)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from host_tools.datasets import load_fashion_mnist
    torch.set_num_threads(1)
    w, _ = pretrain(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
    tx, ty = load_fashion_mnist("test")
    shifted = (noisy(tx.astype(np.int16) - 128).astype(np.int16) + 128).astype(np.uint8)
    print(f"clean test images: {accuracy(w, tx, ty):.1f} %, noisy: {accuracy(w, shifted, ty):.1f} %")
