"""PyTorch -> int8 Graph: trace with torch.fx, fold BatchNorm, post-training quantization.

    graph = convert_torch(model, calib)            # calib: float32 [N, C, H, W]
    for layer, db in quantization_report(model, graph, calib): print(layer, db)
    print(top1_agreement(model, graph, x_val, y_val))

Supported: Conv2d (any kernel/stride, symmetric zero padding, groups incl. depthwise, dilation 1),
BatchNorm2d (folded into the conv before it; a lone BatchNorm2d becomes a 1x1 depthwise conv),
ReLU / ReLU6 / Hardtanh / clamp (fused into the op before them as the output clamp), Identity,
Dropout (removed), Linear, AdaptiveAvgPool2d(1) / x.mean((2, 3)) (-> GlobalAvgPool), Flatten /
torch.flatten / view / reshape to (N, -1) (free: a Linear reads the (C, H, W) map row-major),
residual add of two tensors (operator.add, torch.add, Tensor.add); Hardswish, Hardsigmoid, Sigmoid, Tanh,
SiLU, LeakyReLU (modules or functions) as lookup tables (host_tools/model/lut.py); Conv1d, BatchNorm1d,
MaxPool1d, AvgPool1d, AdaptiveAvgPool1d(1) and x.mean(-1) on [N, C, W] signals, as H = 1;
torch.cat of two tensors along channels (dim 1), each requantized to the output's scale; x * gate with
a gate [N, C, 1, 1] (squeeze-and-excitation).

Quantization: weights symmetric per output channel (scale = max|w| / 127), activations per tensor
asymmetric, from the float activations on the calibration data (min/max, or percentiles), the range
always including 0. A fused ReLU/ReLU6 gives its output range to the op. Biases int32 in units of
w_scale * x_scale. The model input is quantized as q = round(x / input_scale) + input_zero.

`run_graph` is the float rule of the Graph's integer arithmetic (round half to even; exact integer sums
in float32 where they stay below 2^24, float64 otherwise, the multiplier in float64), the MIT models'
own rule; the fixed-point engine may differ from it by one step on a few outputs. The report
(`evaluate`) runs the device's fixed-point arithmetic instead (host_tools/frontends/int8_sim.py).
"""
import math
import operator
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from host_tools.errors import UserError
from host_tools.frontends.activations import LUT_MODULES, HardSigmoidAB, lut_activation
from host_tools.frontends.progress import progress
from host_tools.model.graph import (Add, AvgPool2d, Concat, Conv2d, FullyConnected, GlobalAvgPool, Graph, Lut,
                                    MaxPool2d, Mul)
from host_tools.model.lut import make_lut

__all__ = ["convert_torch", "fold_batchnorm", "run_graph", "quantize_input", "dequantize",
           "evaluate", "quantization_report", "top1_agreement", "format_report"]

SUPPORTED = ("Conv2d, Conv1d, BatchNorm2d, BatchNorm1d, ReLU, ReLU6, Hardtanh, Hardswish, Hardsigmoid, "
             "Sigmoid, Tanh, SiLU, LeakyReLU, Identity, Dropout, Linear, MaxPool2d, AvgPool2d, MaxPool1d, "
             "AvgPool1d, AdaptiveAvgPool2d(1), AdaptiveAvgPool1d(1), mean over the spatial dims, Flatten, "
             "residual add, torch.cat along channels and x * gate (squeeze-and-excitation)")

_ACT_MODULES = (nn.ReLU, nn.ReLU6, nn.Hardtanh)
_ALIAS_MODULES = (nn.Identity, nn.Dropout, nn.Dropout2d, nn.AlphaDropout)
_SUPPORTED_MODULES = (nn.Conv2d, nn.BatchNorm2d, nn.Linear, nn.AdaptiveAvgPool2d, nn.Flatten,
                      nn.MaxPool2d, nn.AvgPool2d, nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d, nn.AvgPool1d,
                      nn.AdaptiveAvgPool1d) + \
    _ACT_MODULES + _ALIAS_MODULES + tuple(LUT_MODULES) + (HardSigmoidAB,)
_ACT_LIKE = (nn.GELU, nn.ELU, nn.PReLU, nn.Mish, nn.SELU, nn.Softplus, nn.CELU, nn.GLU, nn.Softmax,
             nn.LogSoftmax)
_POOL_LIKE = (nn.AdaptiveMaxPool2d, nn.LPPool2d, nn.FractionalMaxPool2d)
_RNN_LIKE = (nn.RNNBase, nn.MultiheadAttention, nn.Transformer, nn.TransformerEncoderLayer,
             nn.TransformerDecoderLayer)
_NORM_LIKE = (nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d, nn.LocalResponseNorm)


_POOLS = ("pool", "maxpool", "avgpool")      # keep their input's quantization


# ----------------------------------------------------------------------------------------------
# tracing helpers

class _Tracer(fx.Tracer):
    """Treat every module as a leaf we look at ourselves, except containers and plain Modules."""

    def is_leaf_module(self, m, qualname):
        if isinstance(m, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
            return False
        if type(m).__module__.startswith("torch.nn") or isinstance(m, HardSigmoidAB):
            return True
        return super().is_leaf_module(m, qualname)


def _trace(model: nn.Module) -> fx.GraphModule:
    try:
        graph = _Tracer().trace(model)
    except UserError:
        raise
    except Exception as e:  # data-dependent control flow, unsupported Python, ...
        raise UserError(
            f"torch.fx cannot trace {type(model).__name__} ({type(e).__name__}: {str(e).splitlines()[0]}); "
            f"make forward() free of data-dependent Python control flow") from None
    return fx.GraphModule(model, graph, type(model).__name__)


def _suggest(mod_or_fn) -> str:
    if isinstance(mod_or_fn, _ACT_LIKE) or getattr(mod_or_fn, "__name__", "") in (
            "gelu", "elu", "selu", "celu", "mish", "softplus", "prelu", "softmax", "log_softmax"):
        return ("replace it with ReLU, ReLU6, Hardswish, Hardsigmoid, Sigmoid, Tanh, SiLU or LeakyReLU (lookup "
                "tables), or remove it")
    if isinstance(mod_or_fn, _POOL_LIKE) or "pool" in getattr(mod_or_fn, "__name__", ""):
        return "use a strided Conv2d instead, or AdaptiveAvgPool2d(1) before the classifier"
    if isinstance(mod_or_fn, _RNN_LIKE):
        return "recurrent and attention layers are not supported: use a CNN"
    if isinstance(mod_or_fn, _NORM_LIKE):
        return "use BatchNorm2d after a Conv2d (it is folded into the conv) or remove it"
    if getattr(mod_or_fn, "__name__", "") in ("softmax", "log_softmax"):
        return "remove it: the device works on logits"
    return f"rewrite that part of the model with the supported layers ({SUPPORTED})"


def _unsupported(node, what, obj, position):
    where = f"'{node.target}'" if node.op == "call_module" else f"node '{node.name}'"
    raise UserError(f"unsupported {what} {where} (operation #{position} of the traced model): "
                    f"{_suggest(obj)}")


def _fn_name(target) -> str:
    return getattr(target, "__name__", str(target))


# ----------------------------------------------------------------------------------------------
# BatchNorm folding

def _fold_conv_bn(conv, bn):
    """Conv2d + BatchNorm2d, or Conv1d + BatchNorm1d, as one conv of the same kind."""
    new = type(conv)(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
    with torch.no_grad():
        w = conv.weight.double()
        b = conv.bias.double() if conv.bias is not None else torch.zeros(conv.out_channels,
                                                                          dtype=torch.float64)
        mean = bn.running_mean.double() if bn.running_mean is not None else torch.zeros_like(b)
        var = bn.running_var.double() if bn.running_var is not None else torch.ones_like(b)
        gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(b)
        beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(b)
        k = gamma / torch.sqrt(var + bn.eps)
        new.weight.copy_((w * k.view((-1,) + (1,) * (w.dim() - 1))).to(conv.weight.dtype))
        new.bias.copy_(((b - mean) * k + beta).to(conv.weight.dtype))
    return new


def fold_batchnorm(model: nn.Module) -> fx.GraphModule:
    """Trace `model` (in eval mode) and fold every BatchNorm2d that directly follows a Conv2d
    (the conv's output used only by the BN) into that conv. Returns an equivalent GraphModule."""
    model = model.eval()
    gm = _trace(model)
    modules = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules.get(node.target), (nn.BatchNorm2d, nn.BatchNorm1d)):
            continue
        src = node.args[0]
        conv_type = nn.Conv2d if isinstance(modules.get(node.target), nn.BatchNorm2d) else nn.Conv1d
        if not (isinstance(src, fx.Node) and src.op == "call_module"
                and isinstance(modules.get(src.target), conv_type) and len(src.users) == 1):
            continue
        bn, conv = modules[node.target], modules[src.target]
        if bn.training and not bn.track_running_stats:
            continue
        fused = _fold_conv_bn(conv, bn)
        _set_submodule(gm, src.target, fused)
        modules[src.target] = fused
        node.replace_all_uses_with(src)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    gm.delete_all_unused_submodules()
    return gm


def _set_submodule(root: nn.Module, qualname: str, new: nn.Module):
    parent_name, _, name = qualname.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, name, new)


# ----------------------------------------------------------------------------------------------
# float op list

@dataclass
class _Op:
    kind: str                   # conv, fc, add, pool (global average), maxpool, avgpool
    name: str                   # layer name (module qualified name or fx node name)
    inputs: List[str]           # fx node names of the (alias-resolved) inputs
    out: str                    # fx node name of the op's final output (after fused activations)
    weight: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None
    stride: Tuple[int, int] = (1, 1)
    padding: Tuple[int, int] = (0, 0)
    groups: int = 1
    act: Tuple[float, float] = (-math.inf, math.inf)
    pos: int = 0
    kernel: Tuple[int, int] = (1, 1)
    fn: str = ""                # lut: the activation and its parameters (host_tools/model/lut.py)
    params: tuple = ()


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _lift(v, fill):
    """A Conv1d/1-D pool's (k,) or k as the 2-D (fill, k): the engine runs 1-D layers with H = 1."""
    return (fill, tuple(v)[0] if isinstance(v, (tuple, list)) else v)


def _conv_params(node, conv, position):
    """Weight [O, I/g, kH, kW], bias, stride, padding, groups of a Conv2d, or of a Conv1d as H = 1."""
    one_d = isinstance(conv, nn.Conv1d)
    kind = type(conv).__name__
    if conv.padding_mode != "zeros":
        raise UserError(f"{kind} '{node.target}' uses padding_mode='{conv.padding_mode}': "
                        f"only zero padding is supported, use padding_mode='zeros'")
    if any(d != 1 for d in _pair(conv.dilation)):
        raise UserError(f"{kind} '{node.target}' has dilation {conv.dilation}: only dilation 1 is "
                        f"supported, use a larger kernel or remove the dilation")
    k = _lift(conv.kernel_size, 1) if one_d else _pair(conv.kernel_size)
    if isinstance(conv.padding, str):
        if conv.padding == "valid":
            pad = (0, 0)
        elif all(x % 2 == 1 for x in k):
            pad = ((k[0] - 1) // 2, (k[1] - 1) // 2)
        else:
            raise UserError(f"{kind} '{node.target}' has padding='same' with an even kernel {k}: "
                            f"that pads asymmetrically, use an odd kernel or explicit padding")
    else:
        pad = _lift(conv.padding, 0) if one_d else _pair(conv.padding)
    w = conv.weight.detach().double().numpy()
    if one_d:
        w = w[:, :, None, :]
    b = (conv.bias.detach().double().numpy() if conv.bias is not None
         else np.zeros(conv.out_channels))
    stride = _lift(conv.stride, 1) if one_d else _pair(conv.stride)
    return dict(weight=w, bias=b, stride=stride, padding=pad, groups=conv.groups)


def _window_pool_params(node, mod, position):
    """(kind, kernel, stride, padding) of a MaxPool2d/AvgPool2d module or F.max_pool2d/F.avg_pool2d
    call; None for anything else; UserError for options the engine does not have."""
    fn = _fn_name(node.target) if mod is None else ""
    one_d = isinstance(mod, (nn.MaxPool1d, nn.AvgPool1d)) or fn in ("max_pool1d", "avg_pool1d")
    if isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d, nn.MaxPool1d, nn.AvgPool1d)):
        kind = "maxpool" if isinstance(mod, (nn.MaxPool2d, nn.MaxPool1d)) else "avgpool"
        opts = dict(kernel_size=mod.kernel_size, stride=mod.stride, padding=mod.padding,
                    ceil_mode=mod.ceil_mode, dilation=getattr(mod, "dilation", 1),
                    count_include_pad=getattr(mod, "count_include_pad", True),
                    divisor_override=getattr(mod, "divisor_override", None),
                    return_indices=getattr(mod, "return_indices", False))
        name = node.target
    elif node.op == "call_function" and fn in ("max_pool2d", "avg_pool2d", "max_pool1d", "avg_pool1d"):
        kind = "maxpool" if fn.startswith("max") else "avgpool"
        names = ["kernel_size", "stride", "padding"]
        opts = dict(zip(names, node.args[1:4]))
        opts.update(node.kwargs)
        name = node.name
    else:
        return None
    where = f"{kind} '{name}' (operation #{position})"
    if one_d:
        k = _lift(opts["kernel_size"], 1)
        st = _lift(opts.get("stride") or k[1], 1)
        pad = _lift(opts.get("padding", 0), 0)
    else:
        k = _pair(opts["kernel_size"])
        st = _pair(opts.get("stride") or k)
        pad = _pair(opts.get("padding", 0))
    if opts.get("ceil_mode") or any(d != 1 for d in _pair(opts.get("dilation", 1))) or opts.get("return_indices"):
        raise UserError(f"{where} uses ceil_mode, dilation or return_indices: only the defaults are supported")
    if not opts.get("count_include_pad", True) or opts.get("divisor_override") is not None:
        raise UserError(f"{where} uses count_include_pad=False or divisor_override: only the defaults are supported")
    return kind, k, st, pad


def _act_bounds(node, mod, position) -> Optional[Tuple[float, float]]:
    """(lo, hi) real clamp of an activation node, or None if the node is not an activation."""
    if node.op == "call_module":
        if isinstance(mod, nn.ReLU6):
            return (0.0, 6.0)
        if isinstance(mod, nn.ReLU):
            return (0.0, math.inf)
        if isinstance(mod, nn.Hardtanh):
            return (float(mod.min_val), float(mod.max_val))
        return None
    name = _fn_name(node.target)
    kw = dict(node.kwargs)
    if node.op == "call_function" and node.target in (F.relu, torch.relu, torch.relu_) or \
            node.op == "call_method" and name in ("relu", "relu_"):
        return (0.0, math.inf)
    if node.op == "call_function" and node.target is F.relu6:
        return (0.0, 6.0)
    if node.op == "call_function" and node.target is F.hardtanh:
        args = list(node.args[1:3])
        lo = kw.get("min_val", args[0] if len(args) > 0 else -1.0)
        hi = kw.get("max_val", args[1] if len(args) > 1 else 1.0)
        return (float(lo), float(hi))
    if (node.op == "call_function" and node.target in (torch.clamp, torch.clip)) or \
            (node.op == "call_method" and name in ("clamp", "clip", "clamp_")):
        args = list(node.args[1:3])
        lo = kw.get("min", args[0] if len(args) > 0 else None)
        hi = kw.get("max", args[1] if len(args) > 1 else None)
        if isinstance(lo, fx.Node) or isinstance(hi, fx.Node):
            raise UserError(f"clamp '{node.name}' (operation #{position}) has tensor bounds: "
                            f"use numbers, or ReLU6")
        return (-math.inf if lo is None else float(lo), math.inf if hi is None else float(hi))
    return None


def _is_alias(node, mod) -> bool:
    if node.op == "call_module":
        return isinstance(mod, _ALIAS_MODULES)
    name = _fn_name(node.target)
    if node.op == "call_function":
        return node.target in (F.dropout, F.dropout2d, torch.nn.functional.alpha_dropout)
    if node.op == "call_method":
        return name in ("contiguous", "clone", "detach", "float")
    return False


def _is_flatten(node, mod) -> bool:
    if node.op == "call_module":
        return isinstance(mod, nn.Flatten)
    name = _fn_name(node.target)
    if node.op == "call_function":
        return node.target in (torch.flatten, torch.reshape)
    if node.op == "call_method":
        return name in ("view", "reshape", "flatten", "squeeze")
    return False


def _is_gap(node, mod) -> bool:
    if node.op == "call_module":
        if isinstance(mod, (nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool1d)):
            return all(s == 1 for s in _pair(mod.output_size))
        return False
    name = _fn_name(node.target)
    if node.op == "call_function" and node.target in (F.adaptive_avg_pool2d, F.adaptive_avg_pool1d):
        size = node.args[1] if len(node.args) > 1 else node.kwargs.get("output_size")
        return all(s == 1 for s in _pair(size))
    if (node.op == "call_function" and node.target is torch.mean) or \
            (node.op == "call_method" and name == "mean"):
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        tm = node.args[0].meta.get("tensor_meta") if isinstance(node.args[0], fx.Node) else None
        rank = len(tm.shape) if tm is not None else 4
        if dims is None:
            return False
        dims = [dims] if isinstance(dims, int) else dims
        return sorted(d % rank for d in dims) == list(range(2, rank))     # the spatial dims: H, W or W
    return False


def _cat_inputs(node, position) -> Optional[list]:
    """The two fx nodes a torch.cat along channels joins; None if node is no cat."""
    if not (node.op == "call_function" and node.target in (torch.cat, torch.concat)):
        return None
    parts = node.args[0] if node.args else node.kwargs.get("tensors")
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
    rank = len(node.meta["tensor_meta"].shape)
    if rank < 3 or dim % rank != 1:
        raise UserError(f"cat '{node.name}' (operation #{position}) joins along dim {dim}: only the channels "
                        f"(dim 1 of [N, C, H, W] or [N, C, W]) can be concatenated")
    if len(parts) != 2 or parts[0] is parts[1]:
        raise UserError(f"cat '{node.name}' (operation #{position}) joins {len(parts)} tensors: two distinct "
                        f"tensors are supported; nest the cat (torch.cat([torch.cat([a, b], 1), c], 1))")
    return list(parts)


def _is_mul(node) -> bool:
    if node.op == "call_function" and node.target in (operator.mul, operator.imul, torch.mul):
        return True
    return node.op == "call_method" and _fn_name(node.target) in ("mul", "mul_")


def _is_add(node) -> bool:
    if node.op == "call_function" and node.target in (operator.add, operator.iadd, torch.add):
        return True
    return node.op == "call_method" and _fn_name(node.target) in ("add", "add_")


class _Builder:
    def __init__(self, gm: fx.GraphModule, sample: torch.Tensor):
        self.gm = gm
        self.modules = dict(gm.named_modules())
        from torch.fx.passes.shape_prop import ShapeProp
        try:
            ShapeProp(gm).propagate(sample)
        except UserError:
            raise
        except Exception as e:
            raise UserError(f"the model does not run on the calibration data of shape "
                            f"{tuple(sample.shape)} ({type(e).__name__}: {str(e).splitlines()[0]})") from None
        self.alias: Dict[str, str] = {}      # fx node name -> tensor (fx node name) it aliases
        self.producer: Dict[str, _Op] = {}   # tensor name -> op writing it
        self.ops: List[_Op] = []
        self.shapes: Dict[str, Tuple[int, int, int]] = {}
        self.input = None
        self.output = None

    def shape(self, node) -> Optional[tuple]:
        tm = node.meta.get("tensor_meta")
        return tuple(tm.shape) if tm is not None and hasattr(tm, "shape") else None

    def src(self, arg) -> str:
        name = arg.name
        return self.alias.get(name, name)

    def build(self):
        position = 0
        for node in self.gm.graph.nodes:
            if node.op == "get_attr":
                raise UserError(f"the model reads the tensor attribute '{node.target}' in forward(): "
                                f"only module parameters of the supported layers can be converted")
            if node.op in ("call_module", "call_function", "call_method"):
                position += 1
            shp = self.shape(node)
            if node.op == "placeholder":
                if self.input is not None:
                    raise UserError("the model has more than one input: only one image input is supported")
                if shp is None or len(shp) not in (3, 4):
                    raise UserError(f"the model input must be an image batch [N, C, H, W] or a batch of "
                                    f"1-D signals [N, C, W], got {shp}")
                self.input = node.name
                self._new_shape(node.name, shp)
                continue
            if node.op == "output":
                out = node.args[0]
                if not isinstance(out, fx.Node):
                    raise UserError("the model must return one tensor of logits (it returns a tuple/dict)")
                self.output = self.src(out)
                continue
            if node.op == "call_module" and not isinstance(self.modules.get(node.target), _SUPPORTED_MODULES):
                mod = self.modules.get(node.target)
                _unsupported(node, f"module {type(mod).__name__}", mod, position)
            if shp is None:
                # not a tensor (x.size(0), x.shape, ...): only used as arguments of view/reshape
                continue
            mod = self.modules.get(node.target) if node.op == "call_module" else None
            tensor_args = [a for a in node.args if isinstance(a, fx.Node) and self.shape(a) is not None]
            self.visit(node, mod, tensor_args, shp, position)
        if self.output is None or self.output not in self.producer:
            raise UserError("the model output is not computed by any supported layer")

    def _new_op(self, op: _Op, shp):
        self.ops.append(op)
        self.producer[op.out] = op
        self._new_shape(op.out, shp)

    def visit(self, node, mod, targs, shp, position):
        what = f"module {type(mod).__name__}" if mod is not None else f"function {_fn_name(node.target)}"
        if mod is not None and isinstance(mod, (nn.Conv2d, nn.Conv1d)):
            src = self.src(targs[0])
            self._require_map(node, src)
            op = _Op("conv", node.target, [src], node.name, pos=position, **_conv_params(node, mod, position))
            self._new_op(op, shp)
        elif mod is not None and isinstance(mod, (nn.BatchNorm2d, nn.BatchNorm1d)):
            # a batch norm not folded into a conv: a 1x1 depthwise conv
            src = self.src(targs[0])
            self._require_map(node, src)
            c = mod.num_features
            tmp = _fold_conv_bn(_identity_dw(c), mod)
            op = _Op("conv", node.target, [src], node.name, pos=position,
                     weight=tmp.weight.detach().double().numpy(), bias=tmp.bias.detach().double().numpy(),
                     groups=c)
            self._new_op(op, shp)
        elif mod is not None and isinstance(mod, nn.Linear):
            src = self.src(targs[0])
            if len(self.shape(targs[0])) != 2:
                raise UserError(f"Linear '{node.target}' (operation #{position}) is applied to a tensor of "
                                f"shape {self.shape(targs[0])}: flatten the feature map first "
                                f"(torch.flatten(x, 1) or nn.Flatten())")
            c, h, w = self.shapes[src]
            if c * h * w != mod.in_features:
                raise UserError(f"Linear '{node.target}' expects {mod.in_features} inputs, its input "
                                f"has {c}x{h}x{w}")
            b = mod.bias.detach().double().numpy() if mod.bias is not None else np.zeros(mod.out_features)
            op = _Op("fc", node.target, [src], node.name, weight=mod.weight.detach().double().numpy(),
                     bias=b, pos=position)
            self._new_op(op, shp)
        elif _act_bounds(node, mod, position) is not None:
            lo, hi = _act_bounds(node, mod, position)
            src = self.src(targs[0])
            op = self.producer.get(src)
            name = node.target if mod is not None else node.name
            if op is None or op.kind in ("pool", "maxpool", "avgpool", "cat"):
                raise UserError(f"activation '{name}' (operation #{position}) does not follow a Conv2d, "
                                f"Linear or add: move it right after one of those, or remove it")
            if len(self._users_of(src)) != 1:
                raise UserError(f"activation '{name}' (operation #{position}) reads '{src}', whose value "
                                f"before the activation is used elsewhere too: the activation is fused "
                                f"into the layer, so give the other users the activated value")
            op.act = (max(op.act[0], lo), min(op.act[1], hi))
            self.producer.pop(src)
            self.shapes.pop(src)
            op.out = node.name
            self._new_op_keep(op, shp)
        elif lut_activation(node, mod) is not None:
            fn, params = lut_activation(node, mod)
            src = self.src(targs[0])
            self._require_map(node, src)
            op = _Op("lut", node.target if mod is not None else node.name, [src], node.name, pos=position,
                     fn=fn, params=params)
            self._new_op(op, shp)
        elif _is_alias(node, mod):
            self.alias[node.name] = self.src(targs[0])
        elif _is_flatten(node, mod):
            src = self.src(targs[0])
            ishp = self.shape(targs[0])
            if len(shp) == 2 and shp[0] == ishp[0] and shp[1] == int(np.prod(ishp[1:])):
                self.alias[node.name] = src
            elif len(shp) == len(ishp) and tuple(shp) == tuple(ishp):
                self.alias[node.name] = src
            else:
                raise UserError(f"reshape '{node.name}' (operation #{position}) gives shape {tuple(shp)}: only "
                                f"flattening to (N, -1) is supported (torch.flatten(x, 1))")
        elif _is_gap(node, mod):
            src = self.src(targs[0])
            self._require_map(node, src)
            op = _Op("pool", node.target if mod is not None else node.name, [src], node.name, pos=position)
            self._new_op(op, shp)
        elif _window_pool_params(node, mod, position) is not None:
            kind, k, st, pad = _window_pool_params(node, mod, position)
            src = self.src(targs[0])
            self._require_map(node, src)
            op = _Op(kind, node.target if mod is not None else node.name, [src], node.name, pos=position,
                     kernel=k, stride=st, padding=pad)
            self._new_op(op, shp)
        elif _cat_inputs(node, position) is not None:
            a, b = (self.src(t) for t in _cat_inputs(node, position))
            for t in (a, b):
                self._require_map(node, t)
            if self.shapes[a][1:] != self.shapes[b][1:]:
                raise UserError(f"cat '{node.name}' (operation #{position}) joins maps of {self.shapes[a]} and "
                                f"{self.shapes[b]}: their H and W must be the same")
            self._new_op(_Op("cat", node.name, [a, b], node.name, pos=position), shp)
        elif _is_mul(node):
            a, b = (self.src(t) for t in targs) if len(targs) == 2 else (None, None)
            sa, sb = self.shapes.get(a), self.shapes.get(b)
            if sa is not None and sb is not None and sa[1:] == (1, 1) and sb[1:] != (1, 1):
                a, b, sa, sb = b, a, sb, sa           # the gate second
            if len(targs) != 2 or len(node.args) != 2 or sa is None or sb != (sa[0], 1, 1) or a == b:
                raise UserError(f"mul '{node.name}' (operation #{position}) multiplies {sa} by {sb}: only a "
                                f"feature map [N, C, H, W] times a channel gate [N, C, 1, 1] "
                                f"(squeeze-and-excitation) is supported")
            self._new_op(_Op("mul", node.name, [a, b], node.name, pos=position), shp)
        elif _is_add(node):
            if len(targs) != 2 or len(node.args) != 2 or node.kwargs.get("alpha", 1) != 1:
                raise UserError(f"add '{node.name}' (operation #{position}) is not a sum of two tensors: only "
                                f"residual adds x + y are supported; fold constants into a conv bias")
            a, b = self.src(targs[0]), self.src(targs[1])
            if self.shapes.get(a) != self.shapes.get(b):
                raise UserError(f"add '{node.name}' (operation #{position}) adds shapes {self.shapes.get(a)} "
                                f"and {self.shapes.get(b)}: broadcasting is not supported")
            op = _Op("add", node.name, [a, b], node.name, pos=position)
            self._new_op(op, shp)
        else:
            target = mod if mod is not None else node.target
            _unsupported(node, what, target, position)

    def _new_op_keep(self, op, shp):
        self.producer[op.out] = op
        self._new_shape(op.out, shp)

    def _new_shape(self, name, shp):
        """(C, H, W) of [N, C, H, W], of a 1-D [N, C, W] (H = 1) or of a vector [N, C]."""
        c = shp[1] if len(shp) >= 2 else 1
        h = shp[2] if len(shp) >= 4 else 1
        w = shp[-1] if len(shp) >= 3 else 1
        self.shapes[name] = (int(c), int(h), int(w))

    def _users_of(self, tensor):
        """fx nodes that read `tensor` directly or through aliases."""
        names = {tensor} | {k for k, v in self.alias.items() if v == tensor}
        users = set()
        for node in self.gm.graph.nodes:
            if node.name in names:
                for u in node.users:
                    if u.name not in names:
                        users.add(u.name)
        return users

    def _require_map(self, node, src):
        if src not in self.shapes:
            raise UserError(f"'{node.name}' reads a tensor that is not a (C, H, W) feature map")


def _identity_dw(c):
    conv = nn.Conv2d(c, c, 1, groups=c, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    return conv


# ----------------------------------------------------------------------------------------------
# calibration

class _Recorder(fx.Interpreter):
    def __init__(self, gm, names, method, percentile, max_samples=2_000_000):
        super().__init__(gm)
        self.names = set(names)
        self.method = method
        self.pct = percentile
        self.max_samples = max_samples
        self.lo = {}
        self.hi = {}
        self.samples = {n: [] for n in names}
        self.count = {n: 0 for n in names}
        self.gen = torch.Generator().manual_seed(0)

    def run_node(self, n):
        out = super().run_node(n)
        if n.name in self.names and isinstance(out, torch.Tensor):
            v = out.detach().float()
            lo, hi = float(v.min()), float(v.max())
            self.lo[n.name] = min(lo, self.lo.get(n.name, lo))
            self.hi[n.name] = max(hi, self.hi.get(n.name, hi))
            if self.method == "percentile":
                flat = v.flatten()
                room = self.max_samples // 8
                if flat.numel() > room:
                    flat = flat[torch.randint(flat.numel(), (room,), generator=self.gen)]
                self.samples[n.name].append(flat)
        return out

    def ranges(self):
        out = {}
        for name in self.names:
            lo, hi = self.lo[name], self.hi[name]
            if self.method == "percentile":
                v = torch.cat(self.samples[name])
                if v.numel() > self.max_samples:
                    v = v[torch.randint(v.numel(), (self.max_samples,), generator=self.gen)]
                v = v.double().numpy()
                lo, hi = float(np.percentile(v, 100 - self.pct)), float(np.percentile(v, self.pct))
            out[name] = (lo, hi)
        return out


def _act_qparams(lo, hi):
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-12:
        return 1.0 / 255, -128
    scale = (hi - lo) / 255.0
    zero = int(np.clip(np.round(-128 - lo / scale), -128, 127))
    return scale, zero


def _clamp_range(act, y_scale, y_zero):
    lo, hi = act
    amin = -128 if lo == -math.inf else int(np.clip(y_zero + np.round(lo / y_scale), -128, 127))
    amax = 127 if hi == math.inf else int(np.clip(y_zero + np.round(hi / y_scale), -128, 127))
    return amin, amax


def _quant_weight(w):
    o = w.shape[0]
    flat = np.abs(w.reshape(o, -1)).max(axis=1)
    scales = np.where(flat > 0, flat / 127.0, 1.0 / 127.0)
    q = np.clip(np.round(w / scales.reshape((o,) + (1,) * (w.ndim - 1))), -127, 127).astype(np.int8)
    return q, scales.astype(np.float32)


def _quant_bias(b, w_scales, x_scale):
    q = np.round(b / (w_scales.astype(np.float64) * x_scale))
    return np.clip(q, -2**31, 2**31 - 1).astype(np.int32)


# ----------------------------------------------------------------------------------------------
# public API

def convert_torch(model: nn.Module, calib: np.ndarray, input_scale: float = 1 / 255, input_zero: int = -128,
                  method: str = "minmax", percentile: float = 99.99, n_bias_update: int = 0,
                  train_classifier: bool = True, batch_size: int = 64) -> Graph:
    """Convert a float PyTorch model to the int8 Graph by post-training quantization on `calib`
    (float32 [N, C, H, W], in the model's input range; the input int8 is round(x/input_scale)+input_zero).
    method: "minmax" (the full observed range) or "percentile" (the `percentile` / 100-`percentile`
    percentiles of every activation). n_bias_update / train_classifier: what the device trains."""
    if method not in ("minmax", "percentile"):
        raise UserError(f"unknown calibration method {method!r}: use 'minmax' or 'percentile'")
    calib = np.asarray(calib, dtype=np.float32)
    if calib.ndim not in (3, 4) or len(calib) == 0:
        raise UserError(f"calibration data must be a non-empty float array [N, C, H, W] (or [N, C, W] for a 1-D "
                        f"model), got shape {calib.shape}")
    model = model.eval()
    gm = fold_batchnorm(model)
    b = _Builder(gm, torch.from_numpy(calib[:1]))
    b.build()
    if b.output not in b.producer:
        raise UserError("the model output is not computed by any supported layer")

    # calibrate every op output except pools (a pool keeps its input's quantization)
    names = [op.out for op in b.ops if op.kind not in _POOLS]
    rec = _Recorder(gm, names, method, percentile)
    bar = progress(len(calib), "calibration")
    with torch.no_grad():
        for i in range(0, len(calib), batch_size):
            rec.run(torch.from_numpy(calib[i:i + batch_size]))
            bar.update(len(calib[i:i + batch_size]))
    bar.close()
    ranges = rec.ranges()

    q: Dict[str, Tuple[float, int]] = {b.input: (float(input_scale), int(input_zero))}
    ops = []
    for op in b.ops:
        if op.kind in _POOLS:
            q[op.out] = q[op.inputs[0]]
        else:
            lo, hi = ranges[op.out]
            if op.act[0] > -math.inf:
                lo = max(lo, op.act[0])
            if op.act[1] < math.inf:
                hi = min(hi, op.act[1])
            q[op.out] = _act_qparams(lo, hi)
        ys, yz = q[op.out]
        if op.kind in ("conv", "fc"):
            xs, xz = q[op.inputs[0]]
            wq, wsc = _quant_weight(op.weight)
            bq = _quant_bias(op.bias, wsc, xs)
            amin, amax = _clamp_range(op.act, ys, yz)
            if op.kind == "conv":
                ops.append(Conv2d(op.name, op.inputs[0], op.out, wq, bq, wsc, tuple(op.stride),
                                  tuple(int(p) for p in op.padding), int(op.groups), float(xs), int(xz),
                                  float(ys), int(yz), amin, amax))
            else:
                ops.append(FullyConnected(op.name, op.inputs[0], op.out, wq, bq, wsc, float(xs), int(xz),
                                          float(ys), int(yz), amin, amax))
        elif op.kind == "add":
            (as_, az), (bs, bz) = q[op.inputs[0]], q[op.inputs[1]]
            amin, amax = _clamp_range(op.act, ys, yz)
            ops.append(Add(op.name, op.inputs[0], op.inputs[1], op.out, float(as_), int(az), float(bs), int(bz),
                           float(ys), int(yz), amin, amax))
        elif op.kind == "mul":
            (xs, xz), (gs, gz) = q[op.inputs[0]], q[op.inputs[1]]
            amin, amax = _clamp_range(op.act, ys, yz)
            ops.append(Mul(op.name, op.inputs[0], op.inputs[1], op.out, float(xs), int(xz), float(gs), int(gz),
                           float(ys), int(yz), amin, amax))
        elif op.kind == "cat":
            (as_, az), (bs, bz) = q[op.inputs[0]], q[op.inputs[1]]
            ops.append(Concat(op.name, op.inputs[0], op.inputs[1], op.out, float(as_), int(az), float(bs), int(bz),
                              float(ys), int(yz)))
        elif op.kind == "pool":
            ops.append(GlobalAvgPool(op.name, op.inputs[0], op.out, float(ys), int(yz)))
        elif op.kind == "lut":
            xs, xz = q[op.inputs[0]]
            ops.append(make_lut(op.name, op.inputs[0], op.out, op.fn, op.params, xs, xz, ys, yz))
        else:
            cls = MaxPool2d if op.kind == "maxpool" else AvgPool2d
            ops.append(cls(op.name, op.inputs[0], op.out, tuple(op.kernel), tuple(op.stride),
                           tuple(op.padding), float(ys), int(yz)))

    shapes = {b.input: b.shapes[b.input]}
    for op in ops:
        shapes[op.output] = b.shapes[op.output]
    graph = Graph(input=b.input, output=b.output, shapes=shapes, ops=ops, input_scale=float(input_scale),
                  input_zero=int(input_zero), n_bias_update=int(n_bias_update),
                  train_classifier=bool(train_classifier),
                  meta={"source": "torch", "model": type(model).__name__, "calibration": method,
                        "calib_images": str(len(calib))})
    check_training(graph)
    return graph


def check_training(graph: Graph):
    """Raise UserError when what the device should train does not exist in the graph."""
    n_conv = len(graph.conv_layers())
    if graph.n_bias_update < 0 or graph.n_bias_update > n_conv:
        raise UserError(f"n_bias_update={graph.n_bias_update} but the model has {n_conv} Conv2d layers: "
                        f"use 0..{n_conv}")
    if graph.train_classifier and graph.classifier() is None:
        raise UserError("train_classifier is set but the model does not end with a Linear classifier: "
                        "end it with nn.Linear or pass --no-train-classifier")
    if graph.ops and graph.ops[-1].output != graph.output:
        raise UserError("the model output must be the last layer's output")


# ----------------------------------------------------------------------------------------------
# float64 reference of the Graph arithmetic

def quantize_input(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Float input [N, C, H, W] (a 1-D model's [N, C, W]: [N, C, 1, W]) -> int8 as the device receives it:
    round(x / scale) + zero in float64, clamped, a cache-sized chunk at a time (no temporaries 8 times
    the size of the data)."""
    x = np.asarray(x)
    q = np.empty(x.shape, np.int8)
    flat_x, flat_q = x.reshape(-1), q.reshape(-1)
    chunk = np.empty(max(1, min(len(flat_x), 1 << 16)))
    for i in range(0, len(flat_x), len(chunk)):
        part = chunk[:len(flat_x[i:i + len(chunk)])]
        np.divide(flat_x[i:i + len(part)], graph.input_scale, out=part, dtype=np.float64)
        np.round(part, out=part)
        part += graph.input_zero
        flat_q[i:i + len(part)] = np.clip(part, -128, 127, out=part)
    c, h, w = graph.shapes[graph.input] if hasattr(graph, "shapes") else graph.input_shape    # a Graph or a loaded file
    if h == 1 and q.ndim in (2, 3) and q.shape[-2:] == (c, w) and q.shape != (c, h, w):
        q = q.reshape(q.shape[:-2] + (c, 1, w))
    return q


def dequantize(q, scale, zero):
    return (np.asarray(q, dtype=np.float64) - zero) * scale


BATCH = 64         # images per batch of the int8 simulation and the float model


def _exact_dtype(op, f64):
    """float32 when every partial sum of the op's integer accumulator is an integer below 2^24 (so
    float32 holds it exactly, in any summation order), else float64 (exact below 2^53)."""
    if f64:
        return torch.float64
    w = np.abs(op.weight.astype(np.int64)).reshape(op.weight.shape[0], -1).sum(axis=1)
    x_max = max(abs(-128 - op.x_zero), abs(127 - op.x_zero))
    bound = int((w * x_max + np.abs(op.bias.astype(np.int64))).max())
    return torch.float32 if bound < 1 << 24 else torch.float64


def _requant(acc, op, shape):
    """round(acc * x_scale*w_scale/y_scale), unclamped: the multiply in float64 on exact integers."""
    m = torch.from_numpy(op.x_scale * op.w_scales.astype(np.float64) / op.y_scale).view(shape)
    return acc.double().mul_(m).round_()


def _clamp(z, op, last):
    """The int8 output of the unclamped z (in place but for the model output, whose z is kept)."""
    return (z.clone() if last else z).add_(op.y_zero).clamp_(op.act_min, op.act_max).float()


def _run_batch(graph: Graph, x: torch.Tensor, f64: bool):
    """(every activation of a batch of int8 inputs, as float32 tensors of integers; the logits before
    the last op's clamp, from its zero point, float64 [N, K]: what the device's predict reads)."""
    acts = {graph.input: x}
    z = None
    for op in graph.ops:
        if isinstance(op, Conv2d):
            dt = _exact_dtype(op, f64)
            acc = F.conv2d((acts[op.input] - op.x_zero).to(dt), torch.from_numpy(op.weight.astype(np.float64)).to(dt),
                           torch.from_numpy(op.bias.astype(np.float64)).to(dt), tuple(op.stride),
                           tuple(op.padding), 1, op.groups)
            z = _requant(acc, op, (1, -1, 1, 1))
            acts[op.output] = _clamp(z, op, op.output == graph.output)
        elif isinstance(op, FullyConnected):
            dt = _exact_dtype(op, f64)
            xin = (acts[op.input].reshape(acts[op.input].shape[0], -1) - op.x_zero).to(dt)
            acc = xin @ torch.from_numpy(op.weight.astype(np.float64)).to(dt).T + torch.from_numpy(
                op.bias.astype(np.float64)).to(dt)
            z = _requant(acc, op, (1, -1))
            acts[op.output] = _clamp(z, op, op.output == graph.output).view(acc.shape[0], -1, 1, 1)
        elif isinstance(op, Add):
            a, b = acts[op.input].double(), acts[op.input2].double()
            z = torch.round(((a - op.a_zero) * op.a_scale + (b - op.b_zero) * op.b_scale) / op.y_scale)
            acts[op.output] = _clamp(z, op, op.output == graph.output)
        elif isinstance(op, GlobalAvgPool):
            a = acts[op.input].double()
            acts[op.output] = torch.round(a.mean(dim=(2, 3), keepdim=True)).clamp(-128, 127).float()
        elif isinstance(op, MaxPool2d):
            acts[op.output] = F.max_pool2d(acts[op.input], op.kernel, op.stride, op.padding)
        elif isinstance(op, AvgPool2d):
            a = acts[op.input].double() - op.zero
            acts[op.output] = (torch.round(F.avg_pool2d(a, op.kernel, op.stride, op.padding)) + op.zero).float()
        elif isinstance(op, Lut):
            acts[op.output] = torch.from_numpy(op.table.astype(np.float32))[acts[op.input].long() + 128]
        elif isinstance(op, Mul):
            prod = (acts[op.input].double() - op.a_zero) * (acts[op.input2].double() - op.b_zero)
            z = torch.round(prod * (op.a_scale * op.b_scale / op.y_scale))
            acts[op.output] = _clamp(z, op, op.output == graph.output)
        elif isinstance(op, Concat):
            parts = [torch.round((acts[a].double() - z) * (s / op.y_scale)) + op.y_zero
                     for a, s, z in ((op.input, op.a_scale, op.a_zero), (op.input2, op.b_scale, op.b_zero))]
            acts[op.output] = torch.cat(parts, 1).clamp(-128, 127).float()
        else:
            raise TypeError(f"unknown op {type(op).__name__}")
        if not isinstance(op, (Conv2d, FullyConnected, Add, Mul)):
            z = acts[op.output].double() - graph.op_output_scale(op)[1]     # pools clamp nothing
    return acts, z.reshape(len(x), -1)


def run_graph(graph: Graph, x_int8: np.ndarray, keep_all: bool = False, f64: bool = False, desc: str = None,
              logits: bool = False):
    """Run the Graph on int8 input [N, C, H, W] (or [C, H, W]), rounding half to even:
    y = clamp(round(acc * x_scale*w_scale/y_scale) + y_zero, act_min, act_max), acc exact (float32 where
    its sums stay below 2^24, else float64; f64: float64 everywhere, the slow original), in batches
    (desc: a progress bar's title). Returns the int8 output [N, ...] (logits [N, K] for an FC output),
    with keep_all a dict of every activation name -> int8 [N, C, H, W], with logits the logits before
    the last op's clamp (float64 [N, K], from its zero point: what the device's predict reads)."""
    x = np.asarray(x_int8)
    single = x.ndim == 3
    if single:
        x = x[None]
    keep = None
    bar = progress(len(x), desc) if desc else None
    for i in range(0, max(len(x), 1), BATCH):
        acts, z = _run_batch(graph, torch.from_numpy(x[i:i + BATCH].astype(np.float32)), f64)
        part = {k: v.numpy().astype(np.int8) for k, v in acts.items()} if keep_all else \
            {graph.output: z.numpy() if logits else acts[graph.output].numpy().astype(np.int8)}
        keep = {k: [v] for k, v in part.items()} if keep is None else {k: keep[k] + [part[k]] for k in keep}
        if bar is not None:
            bar.update(len(part[graph.output]))
    if bar is not None:
        bar.close()
    out = {k: np.concatenate(v) for k, v in keep.items()}
    if keep_all:
        return {k: v[0] for k, v in out.items()} if single else out
    y = out[graph.output]
    if logits:
        return y[0] if single else y
    if y.shape[2:] == (1, 1):
        y = y.reshape(y.shape[0], -1)
    return y[0] if single else y


def _float_activations(gm, x, names):
    """(the float model's (batch-norm folded: gm) activations named `names`, as float32 tensors laid out
    as the int8 simulation's (channels last), its output) of one batch."""
    rec = {}

    class _Keep(fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            if n.name in names:
                rec[n.name] = out.detach().clone(memory_format=torch.channels_last if out.dim() == 4 else torch.preserve_format)
            return out

        def call_module(self, target, args, kwargs):
            if isinstance(self.fetch_attr(target), _POOL_MODULES) and args[0].dim() == 4:
                # PyTorch's CPU pools are several times faster channels last; the model gets its usual layout
                x = args[0].contiguous(memory_format=torch.channels_last)
                return super().call_module(target, (x,) + tuple(args[1:]), kwargs).contiguous()
            return super().call_module(target, args, kwargs)

    with torch.no_grad():
        out = _Keep(gm).run(torch.from_numpy(np.asarray(x, dtype=np.float32)))
    return rec, out


_POOL_MODULES = (nn.MaxPool2d, nn.AvgPool2d)


def _sqnr(noise, signal):
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10 * math.log10(signal / noise)


def evaluate(model: nn.Module, graph: Graph, x: np.ndarray, y: Optional[np.ndarray] = None,
             sqnr: bool = True, desc: str = "int8 vs float"):
    """One batched pass over x (float [N, C, H, W]) of the float model and of the device's int8
    arithmetic (int8_sim, bit for bit the reference's): (per-layer SQNR rows [(layer, dB)] of each
    quantized activation against the float one (None without sqnr), top-1 {'agreement', 'n', and with
    labels y: 'float_acc', 'int8_acc'}). The int8 top-1 reads the unclamped logits, as the device's predict;
    the float top-1, with sqnr the batch-norm folded model's logits (one float pass for both)."""
    from host_tools.frontends.int8_sim import Int8Simulation
    model = model.eval()
    gm = fold_batchnorm(model) if sqnr else None
    sim = Int8Simulation(graph)
    names = {op.output for op in graph.ops}
    scales = {op.output: graph.op_output_scale(op)[0] for op in graph.ops}
    noise, signal = dict.fromkeys(names, 0.0), dict.fromkeys(names, 0.0)
    pf, pq = [], []
    for i, acts, z in sim.batches(quantize_input(graph, x), desc):
        xb = np.asarray(x[i:i + len(z)], dtype=np.float32)
        pq.append(z.argmax(1))
        if not sqnr:
            with torch.no_grad():
                pf.append(model(torch.from_numpy(xb)).numpy().reshape(len(xb), -1).argmax(1))
            continue
        fl, out = _float_activations(gm, xb, names)
        pf.append(out.numpy().reshape(len(xb), -1).argmax(1))
        for name, ref in fl.items():
            ref = ref.reshape(acts[name].shape)
            noise[name] += float(torch.sub(ref, acts[name], alpha=scales[name]).square_().sum())
            signal[name] += float(ref.square().sum())
    rows = [(op.name, _sqnr(noise[op.output], signal[op.output])) for op in graph.ops] if sqnr else None
    pf, pq = np.concatenate(pf), np.concatenate(pq)
    res = {"n": len(x), "agreement": float((pf == pq).mean())}
    if y is not None:
        y = np.asarray(y).reshape(-1)
        res["float_acc"] = float((pf == y).mean())
        res["int8_acc"] = float((pq == y).mean())
    return rows, res


def quantization_report(model: nn.Module, graph: Graph, data: np.ndarray) -> List[Tuple[str, float]]:
    """Per-layer SQNR (dB) of each quantized activation: the Graph's arithmetic (run_graph,
    dequantized) against the float model on `data` (float [N, C, H, W]). One row per op, in order."""
    return evaluate(model, graph, data)[0]


def top1_agreement(model: nn.Module, graph: Graph, x: np.ndarray, y: Optional[np.ndarray] = None) -> dict:
    """Top-1 of the int8 Graph vs the float model on x: {'agreement', 'n', and with labels y:
    'float_acc', 'int8_acc'}."""
    return evaluate(model, graph, x, y, sqnr=False)[1]


def format_report(graph: Graph, rows: List[Tuple[str, float]]) -> str:
    """A text table: layer, op, output shape, int8 bytes, scale/zero, SQNR."""
    kinds = {Conv2d: "conv", FullyConnected: "fc", Add: "add", GlobalAvgPool: "avgpool",
             MaxPool2d: "maxpool", AvgPool2d: "avgpool", Lut: "lut", Concat: "concat", Mul: "mul"}
    lines = [f"{'#':>3} {'layer':<24} {'op':<10} {'output':<12} {'bytes':>6} {'scale':>9} {'zero':>5} {'SQNR dB':>8}"]
    sq = dict(rows)
    for i, op in enumerate(graph.ops):
        c, h, w = graph.shapes[op.output]
        s, z = graph.op_output_scale(op)
        kind = kinds[type(op)]
        if isinstance(op, Conv2d):
            kind = "dwconv" if op.groups > 1 and op.groups == op.weight.shape[0] else f"conv{op.weight.shape[2]}x{op.weight.shape[3]}"
        elif isinstance(op, (MaxPool2d, AvgPool2d)):
            kind += f"{op.kernel[0]}x{op.kernel[1]}"
        elif isinstance(op, Lut):
            kind = op.fn.split("(")[0][:10]
        db = sq.get(op.name)
        dbs = "" if db is None else ("inf" if db == math.inf else f"{db:.1f}")
        lines.append(f"{i:>3} {op.name[:24]:<24} {kind:<10} {f'{c}x{h}x{w}':<12} {c * h * w:>6} {s:>9.5f} {z:>5} {dbs:>8}")
    return "\n".join(lines)
