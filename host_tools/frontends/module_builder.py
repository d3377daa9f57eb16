"""A float PyTorch model rebuilt from another framework's graph, for the torch.fx converter.

The torch.export, TorchScript and ONNX front ends translate their graph node by node into torch.nn
layers (Conv2d, BatchNorm2d, Linear, with the source's weights) and torch functions (relu, add,
pools, flatten). The result is an fx.GraphModule, an ordinary nn.Module that convert_torch traces,
folds, calibrates and quantizes like a user's own model: the quantization exists once.
"""
import re

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn


def _as_tensor(a):
    return a.detach().float().clone() if isinstance(a, torch.Tensor) else torch.tensor(np.array(a), dtype=torch.float32)


class ModuleBuilder:
    def __init__(self):
        self.graph = fx.Graph()
        self.modules = {}

    def input(self, name="x") -> fx.Node:
        return self.graph.placeholder(_identifier(name))

    def output(self, node: fx.Node):
        self.graph.output(node)

    def call(self, fn, *args, **kwargs) -> fx.Node:
        return self.graph.call_function(fn, args, kwargs)

    def module(self, name: str, mod: nn.Module, x: fx.Node) -> fx.Node:
        """Add `mod` under a unique qualified name derived from `name` (the layer name the reports use)."""
        qual = _qualname(name)
        base, i = qual, 1
        while qual in self.modules or any(k.startswith(qual + ".") or qual.startswith(k + ".")
                                          for k in self.modules):
            i += 1
            qual = f"{base}_{i}"
        self.modules[qual] = mod
        return self.graph.call_module(qual, (x,))

    def conv2d(self, name, x, weight, bias, stride, padding, groups, dilation=1):
        """padding: (pH, pW) or 'same'/'valid' as nn.Conv2d takes it; a 3-D weight [O, I/g, k] makes
        an nn.Conv1d (on [N, C, W] signals)."""
        w = _as_tensor(weight)
        if w.dim() == 3:
            o, ipg, k = w.shape
            one = lambda v: tuple(int(a) for a in v)[:1] if isinstance(v, (list, tuple)) else (int(v),)  # noqa: E731
            conv = nn.Conv1d(ipg * groups, o, k, one(stride), padding if isinstance(padding, str) else one(padding),
                             one(dilation), groups=groups, bias=True)
        else:
            o, ipg, kh, kw = w.shape
            conv = nn.Conv2d(ipg * groups, o, (kh, kw), _pair(stride), padding if isinstance(padding, str)
                             else _pair(padding), _pair(dilation), groups=groups, bias=True)
        with torch.no_grad():
            conv.weight.copy_(w)
            conv.bias.copy_(_as_tensor(bias) if bias is not None else torch.zeros(o))
        return self.module(name, conv, x)

    def batchnorm2d(self, name, x, weight, bias, mean, var, eps, one_d=False):
        c = len(mean)
        bn = (nn.BatchNorm1d if one_d else nn.BatchNorm2d)(c, eps=float(eps))
        with torch.no_grad():
            bn.running_mean.copy_(_as_tensor(mean))
            bn.running_var.copy_(_as_tensor(var))
            bn.weight.copy_(_as_tensor(weight) if weight is not None else torch.ones(c))
            bn.bias.copy_(_as_tensor(bias) if bias is not None else torch.zeros(c))
        return self.module(name, bn.eval(), x)

    def linear(self, name, x, weight, bias):
        w = _as_tensor(weight)
        fc = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            fc.weight.copy_(w)
            fc.bias.copy_(_as_tensor(bias) if bias is not None else torch.zeros(w.shape[0]))
        return self.module(name, fc, x)

    def finish(self, class_name: str) -> fx.GraphModule:
        self.graph.lint()
        return fx.GraphModule(self.modules, self.graph, _identifier(class_name)).eval()


def _pair(v):
    v = tuple(int(a) for a in v) if isinstance(v, (list, tuple)) else (int(v),)
    return v * 2 if len(v) == 1 else v


def _identifier(text: str) -> str:
    s = re.sub(r"\W", "_", str(text)).strip("_") or "model"
    return s if not s[0].isdigit() else "m_" + s


def _qualname(text: str) -> str:
    """A module path from a layer name: 'features.0', '/features/features.0/Conv' -> 'features.0.Conv'."""
    parts = [re.sub(r"\W", "_", p) for p in re.split(r"[./:]+", str(text)) if p]
    parts = [p for p in parts if p.strip("_")]
    return ".".join(parts) or "layer"
