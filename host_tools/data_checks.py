"""Does a data file fit the model? One-sentence errors that name both the file and the model, for
every command that reads data (convert's --calib/--val, check's --data, plan's --data, deploy's
board data files), before any of them computes or writes anything."""
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from host_tools.errors import UserError

# A few stray values may clip (outliers, a bright pixel); more than this share of them is a data
# file in another range than the model's input (0-255 for 0-1, normalized for raw pixels, ...).
MAX_CLIPPED = 0.01


def input_range(scale: float, zero: int) -> tuple:
    """The real values the model's int8 input represents: (lo, hi)."""
    return (-128 - zero) * scale, (127 - zero) * scale


def check_range(x: np.ndarray, scale: float, zero: int, path: str) -> None:
    """x (float, the model's input units) must lie in the range of the int8 input quantization."""
    lo, hi = input_range(scale, zero)
    half = scale / 2
    outside = np.count_nonzero((x < lo - half) | (x > hi + half))
    if outside > MAX_CLIPPED * x.size:
        raise UserError(
            f"{path}: x ranges over [{float(x.min()):.4g}, {float(x.max()):.4g}] ({outside / x.size:.0%} of its "
            f"values outside), but the model's int8 input covers [{lo:.4g}, {hi:.4g}] (input scale {scale:.6g}, "
            f"zero {zero}): scale the data to the model's input range (e.g. pixels / 255), or convert with "
            f"--input-scale/--input-zero that cover it")


def check_labels(y: Optional[np.ndarray], n_classes: int, path: str) -> None:
    """Labels must be integers 0..n_classes-1."""
    if y is None or len(y) == 0:
        return
    if not np.issubdtype(np.asarray(y).dtype, np.integer):
        raise UserError(f"{path}: the labels y are {np.asarray(y).dtype}, not integer class indices")
    lo, hi = int(np.min(y)), int(np.max(y))
    if lo < 0 or hi >= n_classes:
        raise UserError(f"{path}: labels range over {lo}..{hi}, but the model has {n_classes} classes "
                        f"(labels 0..{n_classes - 1})")


def check_torch_model_on(model, x: np.ndarray, path: str) -> int:
    """The float model runs on the file's images and returns logits [N, K]; returns K."""
    import torch
    name = type(model).__name__
    try:
        with torch.no_grad():
            out = model(torch.from_numpy(np.ascontiguousarray(x[:2])))
    except Exception as e:  # the model's own complaint: channels, sizes, dtypes
        raise UserError(f"{path} holds images of shape {list(x.shape[1:])} (C, H, W), which {name} does not "
                        f"accept: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if not isinstance(out, torch.Tensor):
        raise UserError(f"{name} returns a {type(out).__name__}, not one tensor of logits [N, K]: "
                        f"return only the classifier's output")
    if out.dim() != 2:
        raise UserError(f"{name}'s output has shape {list(out.shape)}, not logits [N, K]: end the model "
                        f"with a Linear classifier on the flattened features")
    return int(out.shape[1])


def check_board_data(files: Sequence[Path], input_size: int, n_classes: int, model_name: str) -> None:
    """Data files deployed with a model, by the examples' convention: NAME.bin holds int8 images of
    the model's input size, one after the other, and NAME_labels.bin one label byte per image."""
    by_name = {Path(f).name: Path(f) for f in files}
    for name, path in by_name.items():
        if not name.endswith("_labels.bin"):
            continue
        images = by_name.get(name[:-len("_labels.bin")] + ".bin")
        labels = path.read_bytes()
        if labels and max(labels) >= n_classes:
            raise UserError(f"{path}: labels range over {min(labels)}..{max(labels)}, but {model_name} has "
                            f"{n_classes} classes (labels 0..{n_classes - 1})")
        if images is None:
            continue
        size = images.stat().st_size
        if size % input_size or size // input_size != len(labels):
            raise UserError(f"{images} holds {size} bytes, {size / input_size:g} inputs of {model_name}'s "
                            f"{input_size} bytes, but {path} has {len(labels)} labels: the images file must "
                            f"hold one int8 input of {input_size} bytes per label")
