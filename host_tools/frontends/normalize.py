"""`convert --input-mean M --input-std S`: a model trained on normalized inputs, (x - M[c]) / S[c] on
0-1 pixels x (torchvision's Normalize), deployed on the raw pixels (the device's int8 input is
pixel - 128, as without normalization).

The normalization is folded into the model before quantization, so the int8 model computes it for
free. The input's zero point z takes the mean (one integer for every channel: z = round(255 mean) -
128), the first layer (the input's only reader, a Conv2d or a Linear) the rest: its weights / S[c],
its bias minus the weights times the residual mean r[c] = M[c] - (z + 128) / 255, over S[c]. The
model then reads u = x - (z + 128) / 255, which is exactly what the int8 input means with scale 1/255
and zero point z.

Exact (up to float rounding, as batch-norm folding) where the first layer reads real inputs only: a
Linear, or a conv without zero padding. A padded conv's padding stands for u = 0, that is a
normalized value of -r[c] / S[c] instead of 0: exact when r is 0 (one mean for every channel with
255 M an integer), else approximate at the border taps only, by at most max |r[c] / S[c]|.
"""
import copy
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from host_tools.errors import UserError


@dataclass
class Folded:
    model: nn.Module        # the model on u = x - offset (x: 0-1 pixels)
    offset: float           # (input_zero + 128) / 255
    input_zero: int
    layer: str              # the first layer, which took the rest
    exact: bool
    border: float           # largest normalized value the padding stands for instead of 0

    def describe(self, mean, std) -> str:
        what = (f"normalization (mean {_fmt(mean)}, std {_fmt(std)} on 0-1 pixels) folded into the input's zero "
                f"point {self.input_zero} and the first layer '{self.layer}' (weights / std, bias)")
        if self.exact:
            return what + ": exact"
        return (what + f": approximate where '{self.layer}' reads its zero padding, which stands for a normalized "
                f"value of up to {self.border:.3g} instead of 0 (exact without padding, or with one mean m for "
                "every channel and 255 m an integer)")


def _fmt(v):
    return ",".join(f"{x:g}" for x in v)


def per_channel(name, values: Sequence[float], channels: int) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(v) == 1:
        v = np.repeat(v, channels)
    if len(v) != channels:
        raise UserError(f"{name} has {len(v)} values but the model input has {channels} channels: "
                        f"give one value, or one per channel")
    if not np.all(np.isfinite(v)):
        raise UserError(f"{name} must be finite numbers, got {_fmt(v)}")
    return v


def _first_layer(model: nn.Module):
    """(qualname, module) of the input's only reader, through aliases and flattens."""
    from host_tools.frontends.torch_fx import _is_alias, _is_flatten, _trace
    gm = _trace(model)
    mods = dict(gm.named_modules())
    node = next(n for n in gm.graph.nodes if n.op == "placeholder")
    while True:
        users = list(node.users)
        if len(users) != 1:
            raise UserError(f"--input-mean/--input-std fold into the first layer, but the input is read by "
                            f"{len(users)} operations: make one Conv2d or Linear its only reader")
        node = users[0]
        mod = mods.get(node.target) if node.op == "call_module" else None
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            return node.target, mod
        if not (_is_alias(node, mod) or _is_flatten(node, mod)):
            raise UserError(f"--input-mean/--input-std fold into the first layer, which must be a Conv2d or a "
                            f"Linear; the input goes to '{node.target if node.op == 'call_module' else node.name}'")


def fold_normalization(model: nn.Module, mean, std, input_shape) -> Folded:
    """The model on u = x - offset with the normalization folded in (see the module's docstring)."""
    c, h, w = input_shape
    mean, std = per_channel("--input-mean", mean, c), per_channel("--input-std", std, c)
    if np.any(std <= 0):
        raise UserError(f"--input-std must be > 0, got {_fmt(std)}")
    model = copy.deepcopy(model).eval()
    name, layer = _first_layer(model)
    zero = int(np.clip(np.round(255 * mean.mean()) - 128, -128, 127))
    offset = (zero + 128) / 255
    resid = mean - offset
    wt = layer.weight.detach().double()
    if isinstance(layer, nn.Linear):
        if layer.in_features != c * h * w:
            raise UserError(f"the first layer '{name}' has {layer.in_features} inputs, the model input {c}x{h}x{w}")
        chan = torch.arange(c * h * w) // (h * w)               # the flattened input is (C, H, W) row-major
        scale = torch.from_numpy(1 / std)[chan][None, :]
        shift = (wt * scale * torch.from_numpy(resid)[chan][None, :]).sum(dim=1)
        padded = False
    else:
        opg, cpg = layer.out_channels // layer.groups, layer.in_channels // layer.groups
        chan = (torch.arange(layer.out_channels) // opg)[:, None] * cpg + torch.arange(cpg)[None, :]   # [O, cpg]
        scale = torch.from_numpy(1 / std)[chan][:, :, None, None]
        shift = (wt * scale * torch.from_numpy(resid)[chan][:, :, None, None]).sum(dim=(1, 2, 3))
        pad = layer.padding
        padded = layer.padding_mode == "zeros" and (pad == "same" if isinstance(pad, str) else any(pad))
    with torch.no_grad():
        bias = layer.bias.detach().double() if layer.bias is not None else torch.zeros(wt.shape[0], dtype=torch.float64)
        layer.weight.copy_(wt * scale)
        if layer.bias is None:
            layer.bias = nn.Parameter(torch.zeros(wt.shape[0], dtype=layer.weight.dtype))
        layer.bias.copy_(bias - shift)
    border = float(np.max(np.abs(resid / std))) if padded else 0.0
    return Folded(model, offset, zero, name, border == 0.0, border)
