"""The fleet's data: Fashion-MNIST images split over clients by a Dirichlet draw over classes
(non-IID), each client's share split again into its own training and test images.

Images are the device's int8 (pixel - 128, 784 bytes), as in examples/fashion_new_classes.py.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import List

import numpy as np

from host_tools.datasets import load_fashion_mnist


@dataclass
class Split:
    train_x: List[np.ndarray]       # per client: int8 [n, 784]
    train_y: List[np.ndarray]       # per client: uint8 [n]
    test_x: List[np.ndarray]        # per client: its own held-out images
    test_y: List[np.ndarray]
    global_x: np.ndarray            # the fleet's test set (t10k, every class)
    global_y: np.ndarray

    @property
    def n_clients(self):
        return len(self.train_x)


def dirichlet_partition(labels, n_clients, alpha, rng, min_size=10):
    """Indices per client: each class's images spread over the clients by proportions drawn from
    Dirichlet(alpha); redrawn until every client has at least min_size images."""
    classes = np.unique(labels)
    for _ in range(100):
        parts = [[] for _ in range(n_clients)]
        for c in classes:
            idx = rng.permutation(np.flatnonzero(labels == c))
            cuts = (np.cumsum(rng.dirichlet(np.full(n_clients, alpha))) * len(idx)).astype(int)[:-1]
            for k, chunk in enumerate(np.split(idx, cuts)):
                parts[k].extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_size:
            return [rng.permutation(np.array(p, dtype=np.int64)) for p in parts]
    raise ValueError(f"no Dirichlet({alpha}) split gives each of {n_clients} clients {min_size} images")


def to_device(x):
    """uint8 images [n, 28, 28] -> the device's int8 [n, 784] (pixel - 128)."""
    return (x.reshape(len(x), -1).astype(np.int16) - 128).astype(np.int8)


def make_split(n_clients, per_client=60, alpha=0.5, test_fraction=0.2, n_global=2000, seed=0) -> Split:
    """n_clients * per_client training images of all 10 classes, Dirichlet(alpha) over clients;
    test_fraction of each client's images held out as its own test set; n_global t10k images."""
    rng = np.random.default_rng(seed)
    x, y = load_fashion_mnist("train")
    pick = rng.choice(len(y), n_clients * per_client, replace=False)
    x, y = to_device(x[pick]), y[pick].astype(np.uint8)
    parts = dirichlet_partition(y, n_clients, alpha, rng)
    split = Split([], [], [], [], None, None)
    for p in parts:
        n_test = max(1, int(round(len(p) * test_fraction)))
        split.test_x.append(x[p[:n_test]])
        split.test_y.append(y[p[:n_test]])
        split.train_x.append(x[p[n_test:]])
        split.train_y.append(y[p[n_test:]])
    gx, gy = load_fashion_mnist("test")
    gpick = rng.choice(len(gy), n_global, replace=False)
    split.global_x, split.global_y = to_device(gx[gpick]), gy[gpick].astype(np.uint8)
    return split


def save(split: Split, path):
    arrays = {"global_x": split.global_x, "global_y": split.global_y}
    for k in range(split.n_clients):
        for name in ("train_x", "train_y", "test_x", "test_y"):
            arrays[f"{name}_{k}"] = getattr(split, name)[k]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, n_clients=split.n_clients, **arrays)
    tmp.replace(path)


def load(path) -> Split:
    with np.load(path) as f:
        n = int(f["n_clients"])
        lists = {name: [f[f"{name}_{k}"] for k in range(n)] for name in ("train_x", "train_y", "test_x", "test_y")}
        return Split(**lists, global_x=f["global_x"], global_y=f["global_y"])
