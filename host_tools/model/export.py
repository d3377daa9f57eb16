"""Trained weights back to the host: a dequantized state_dict and a report of what changed.

Layer names come from the model file's metadata (the converter's names, e.g. 'block3.project.0');
batch norm was folded into the convs by the converter, so a conv's 'weight'/'bias' are the folded
ones: load them into the model with its BatchNorm layers folded (host_tools.frontends.torch_fx.fold_batchnorm).
"""
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from host_tools.atomic import atomic_path
from host_tools.model import graph as g
from host_tools.errors import UserError
from host_tools.model.mct_format import Model


def layer_names(model: Model) -> List[str]:
    names = model.meta.get("ops") or []
    if len(names) != len(model.ops):
        names = [f"op{i}" for i in range(len(model.ops))]
    return names


def dequantized_state(model: Model) -> Dict[str, np.ndarray]:
    """{'<layer>.weight': float32, '<layer>.bias': float32} for every conv and FC layer."""
    state = {}
    for name, op in zip(layer_names(model), model.ops):
        if op.type not in (g.CONV2D, g.FC):
            continue
        ws = model.tensors[op.wscale].astype(np.float64)
        o = ws.size
        w = model.tensors[op.weight].astype(np.float64).reshape(o, -1) * ws[:, None]
        if op.type == g.CONV2D:
            c_in = model.acts[op.in0][0]
            w = w.reshape(o, c_in // op.groups, *op.kernel)
        state[f"{name}.weight"] = w.astype(np.float32)
        state[f"{name}.bias"] = (model.tensors[op.bias].astype(np.float64) * ws * op.in0_scale).astype(np.float32)
    return state


@dataclass
class Change:
    name: str
    trained: bool
    changed: int          # elements whose int value changed
    total: int
    max_step: int         # largest change, in int8/int32 steps
    rel_l2: float         # |new - old| / |old| of the dequantized values


def compare(trained: Model, original: Model) -> List[Change]:
    if len(trained.ops) != len(original.ops) or len(trained.tensors) != len(original.tensors):
        raise UserError("the two models have different layers: is --original the file this one was trained from?")
    new, old = dequantized_state(trained), dequantized_state(original)
    changes = []
    for name, op, op0 in zip(layer_names(trained), trained.ops, original.ops):
        if op.type not in (g.CONV2D, g.FC):
            continue
        for part, t in (("weight", op.weight), ("bias", op.bias)):
            a = trained.tensors[t].astype(np.int64)
            b = original.tensors[t].astype(np.int64)
            if a.shape != b.shape:
                raise UserError(f"{name}.{part} has a different size in the two models")
            key = f"{name}.{part}"
            norm = float(np.linalg.norm(old[key])) or 1.0
            changes.append(Change(key, trained.trainable[t], int((a != b).sum()), a.size,
                                  int(np.abs(a - b).max(initial=0)),
                                  float(np.linalg.norm(new[key] - old[key])) / norm))
    return changes


def format_report(changes: List[Change], only_changed=False) -> str:
    lines = [f"{'tensor':<34} {'trained':>7} {'changed':>15} {'max step':>9} {'rel. L2':>9}"]
    for c in changes:
        if only_changed and not c.changed and not c.trained:
            continue
        lines.append(f"{c.name:<34} {'yes' if c.trained else 'no':>7} {c.changed:>7}/{c.total:<7} "
                     f"{c.max_step:>9} {c.rel_l2:>9.2e}")
    return "\n".join(lines)


def save_state(state: Dict[str, np.ndarray], path: str, meta: Optional[dict] = None):
    """A PyTorch state_dict (.pt, torch.save) or, without torch or for .npz, a numpy archive."""
    if str(path).endswith(".npz"):
        with atomic_path(path, ".npz") as tmp:
            np.savez(tmp, **state)
        return
    try:
        import torch
    except ImportError:
        raise UserError("writing a .pt state_dict needs torch; use an .npz output or install torch==2.13.0") from None
    with atomic_path(path) as tmp:
        torch.save({k: torch.from_numpy(v) for k, v in state.items()}, tmp)
