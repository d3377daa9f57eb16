"""Calibration / validation data for the converters.

Two sources, both giving float32 images [N, C, H, W] in the model's input range and optional labels:
- a `.npz` file with key `x` (float32 [N, C, H, W], or [N, H, W] for one channel) and optionally `y`
  (integer labels [N]);
- a folder of images (needs Pillow): either class subfolders (`dir/<class>/*.png`, labels = the
  sorted subfolder index) or images directly in `dir` (no labels). Images are resized to the model's
  input size, converted to grayscale or RGB by its channel count and scaled to [0, 1] (then
  `scale * x + offset`, e.g. scale 2, offset -1 for models that take [-1, 1]).
"""
import os
from typing import Optional, Tuple

import numpy as np

from host_tools.errors import UserError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".webp", ".tif", ".tiff")


def load_npz(path: str) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "x" not in z.files:
                raise UserError(f"{path} has no array 'x' (it has {', '.join(z.files) or 'nothing'}): "
                                f"store the images as x, float32 [N, C, H, W]")
            x = np.asarray(z["x"])
            y = np.asarray(z["y"]) if "y" in z.files else None
    except UserError:
        raise
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {path} as a .npz file ({e})") from None
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or len(x) == 0:
        raise UserError(f"{path}: x has shape {x.shape}, expected float32 [N, C, H, W] with N > 0")
    if not np.issubdtype(x.dtype, np.floating):
        raise UserError(f"{path}: x is {x.dtype}, expected float images in the model's input range "
                        f"(e.g. pixels / 255)")
    if y is not None:
        y = y.reshape(-1)
        if len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
            raise UserError(f"{path}: y must hold {len(x)} integer labels, got {y.dtype} {y.shape}")
    return x.astype(np.float32), y


def load_image_folder(path: str, shape: Tuple[int, int, int], scale: float = 1.0,
                      offset: float = 0.0) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Images of `path` resized to shape (C, H, W), in [0, 1] * scale + offset."""
    try:
        from PIL import Image
    except ImportError:
        raise UserError("reading a folder of images needs Pillow (pip install pillow, or apt install "
                        "python3-pil); or give the data as a .npz file with x float32 [N, C, H, W]") from None
    c, h, w = shape
    if c not in (1, 3):
        raise UserError(f"the model takes {c} input channels: image folders work for 1 (gray) or 3 (RGB); "
                        f"give a .npz file instead")
    subdirs = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
    items = []
    if subdirs:
        for label, d in enumerate(subdirs):
            for f in sorted(os.listdir(os.path.join(path, d))):
                if f.lower().endswith(IMAGE_EXTS):
                    items.append((os.path.join(path, d, f), label))
    else:
        items = [(os.path.join(path, f), None) for f in sorted(os.listdir(path)) if f.lower().endswith(IMAGE_EXTS)]
    if not items:
        raise UserError(f"no images ({', '.join(IMAGE_EXTS)}) in {path} or its subfolders")
    xs = []
    for f, _ in items:
        try:
            img = Image.open(f).convert("L" if c == 1 else "RGB").resize((w, h), Image.BILINEAR)
        except OSError as e:
            raise UserError(f"cannot read image {f} ({e})") from None
        a = np.asarray(img, dtype=np.float32) / 255.0
        xs.append(a[None] if c == 1 else a.transpose(2, 0, 1))
    x = np.stack(xs) * scale + offset
    y = np.array([lab for _, lab in items], dtype=np.int64) if subdirs else None
    return x.astype(np.float32), y


def folder_image_size(path: str) -> Tuple[int, int]:
    """(H, W) of the first image in a folder of images (or in its first class subfolder)."""
    from PIL import Image
    for root, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for f in sorted(files):
            if f.lower().endswith(IMAGE_EXTS):
                with Image.open(os.path.join(root, f)) as im:
                    return im.size[1], im.size[0]
    raise UserError(f"no images ({', '.join(IMAGE_EXTS)}) in {path} or its subfolders")


def load_data(path: str, shape: Optional[Tuple[int, int, int]] = None, scale: float = 1.0,
              offset: float = 0.0) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(x float32 [N, C, H, W], y or None) from a .npz file or a folder of images."""
    if not os.path.exists(path):
        raise UserError(f"{path} does not exist")
    if os.path.isdir(path):
        if shape is None:
            raise UserError(f"{path} is a folder of images: the model's input shape is needed to read it")
        return load_image_folder(path, shape, scale, offset)
    x, y = load_npz(path)
    if shape is not None and tuple(x.shape[1:]) != tuple(shape):
        raise UserError(f"{path} holds images of shape {tuple(x.shape[1:])}, the model takes {tuple(shape)}")
    return x, y
