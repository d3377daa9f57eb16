"""The order of an activation's bytes on the device: channels last, element (y, x, c) at
(y * W + x) * C + c (docs/format.md). The model input is given to the board in this order.

PyTorch, the converter's int8 simulation and the numpy reference compute channel-planar (C, H, W);
these two functions are the one place where the orders meet."""
import numpy as np


def to_device(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) or (C, H, W) -> the same values channels last, one flat row per input."""
    x = np.asarray(x)
    if x.ndim == 3:
        return np.ascontiguousarray(np.moveaxis(x, 0, -1)).reshape(-1)
    if x.ndim == 4:
        return np.ascontiguousarray(np.moveaxis(x, 1, -1)).reshape(len(x), -1)
    raise ValueError(f"expected (N, C, H, W) or (C, H, W) values, got shape {x.shape}")


def from_device(x, shape) -> np.ndarray:
    """An activation's device bytes (channels last, flat) -> (C, H, W)."""
    c, h, w = shape
    return np.asarray(x).reshape(h, w, c).transpose(2, 0, 1)
