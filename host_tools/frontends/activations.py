"""The PyTorch activations that become lookup tables (host_tools/model/lut.py): which fx node is
one, and with what parameters."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from host_tools.errors import UserError

LUT_MODULES = {nn.Hardswish: "hardswish", nn.Hardsigmoid: "hardsigmoid", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh",
               nn.SiLU: "silu", nn.LeakyReLU: "leaky_relu"}
_FUNCTIONS = {F.hardswish: "hardswish", F.hardsigmoid: "hardsigmoid", torch.sigmoid: "sigmoid",
              F.sigmoid: "sigmoid", torch.tanh: "tanh", F.tanh: "tanh", F.silu: "silu",
              F.leaky_relu: "leaky_relu"}
_METHODS = {"sigmoid": "sigmoid", "sigmoid_": "sigmoid", "tanh": "tanh", "tanh_": "tanh"}


class HardSigmoidAB(nn.Module):
    """clip(alpha x + beta, 0, 1): ONNX's HardSigmoid (Keras' hard_sigmoid: alpha 0.2) in a rebuilt
    model; PyTorch's own is alpha 1/6, beta 1/2. A leaf of the torch.fx trace, like torch.nn's."""

    def __init__(self, alpha, beta):
        super().__init__()
        self.alpha, self.beta = float(alpha), float(beta)

    def forward(self, x):
        return torch.clamp(self.alpha * x + self.beta, 0.0, 1.0)


def lut_activation(node, mod):
    """(function name, parameters) of an activation that becomes a lookup table, else None."""
    if node.op == "call_module" and isinstance(mod, HardSigmoidAB):
        return "hardsigmoid", (mod.alpha, mod.beta)
    if node.op == "call_module":
        fn = next((name for cls, name in LUT_MODULES.items() if type(mod) is cls), None)
        if fn == "leaky_relu":
            return fn, (float(mod.negative_slope),)
        return (fn, ()) if fn else None
    if node.op == "call_function" and node.target in _FUNCTIONS:
        fn = _FUNCTIONS[node.target]
        if fn == "leaky_relu":
            slope = node.args[1] if len(node.args) > 1 else node.kwargs.get("negative_slope", 0.01)
            if not isinstance(slope, (int, float)):
                raise UserError(f"leaky_relu '{node.name}' has a computed negative_slope: use a number")
            return fn, (float(slope),)
        return fn, ()
    if node.op == "call_method" and node.target in _METHODS:
        return _METHODS[node.target], ()
    return None
