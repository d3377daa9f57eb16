"""Readers for the small public data sets the examples use.

Fashion-MNIST comes from Debian's `dataset-fashion-mnist` package, which installs the four idx
files (gzip-compressed) under /usr/share/datasets/fashion-mnist/. Nothing is downloaded.
"""
import gzip
import os
import struct

import numpy as np

from host_tools.errors import UserError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """Read one idx file (optionally .gz) into a numpy array of its declared shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise UserError(f"{path} is not an idx file (bad magic number)")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise UserError(f"{path}: unknown idx element type 0x{code:02x}")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[code])
    count = int(np.prod(dims)) if dims else 0
    offset = 4 + 4 * ndim
    if len(data) < offset + count * dtype.itemsize:
        raise UserError(f"{path} is truncated: expected {count} elements of shape {dims}")
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(dims)
    return arr.astype(dtype.newbyteorder("=")) if dtype.byteorder == ">" else arr.copy()


def load_fashion_mnist(split="train", root=None):
    """Fashion-MNIST as (images uint8 [N, 28, 28], labels uint8 [N]).

    split: "train" (60000 images) or "test" (10000, the t10k files). root defaults to Debian's
    /usr/share/datasets/fashion-mnist (package dataset-fashion-mnist); $FASHION_MNIST_DIR overrides it.
    """
    if split not in ("train", "test"):
        raise UserError(f"unknown Fashion-MNIST split {split!r}: use 'train' or 'test'")
    root = root or os.environ.get("FASHION_MNIST_DIR") or FASHION_MNIST_DIR
    prefix = "train" if split == "train" else "t10k"
    paths = []
    for kind in ("images-idx3", "labels-idx1"):
        base = os.path.join(root, f"{prefix}-{kind}-ubyte")
        for p in (base + ".gz", base):
            if os.path.exists(p):
                paths.append(p)
                break
        else:
            raise UserError(
                f"Fashion-MNIST not found ({base}.gz is missing): install the Debian package "
                f"dataset-fashion-mnist (sudo apt install dataset-fashion-mnist) or set FASHION_MNIST_DIR")
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise UserError(f"Fashion-MNIST files under {root} have unexpected shapes "
                        f"{images.shape} and {labels.shape}")
    return images.astype(np.uint8), labels.astype(np.uint8)
