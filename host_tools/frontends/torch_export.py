"""torch.export and TorchScript front end: an ExportedProgram's ATen graph -> a rebuilt float model.

torch.fx traces forward() symbolically and fails on Python control flow that reads the input
(shape checks, asserts). torch.export runs forward() at one concrete input shape, so such checks are
resolved and vanish from the graph. A TorchScript archive (torch.jit.trace / torch.jit.script) is
turned into an ExportedProgram by PyTorch's TorchScript converter. Either way the ATen graph is
translated node by node into torch.nn layers (host_tools.frontends.module_builder), which the torch.fx
converter then quantizes like any model.

    gm = module_from_exported(torch.export.export(model, (x,)))
    gm = module_from_exported(export_module(model, calib[:2]))   # export done for the user
    gm = module_from_exported(torchscript_to_exported(torch.jit.load("m.pt"), calib[:2]))
"""
import operator
import types

import torch
import torch.nn.functional as F

from host_tools.errors import UserError
from host_tools.frontends.module_builder import ModuleBuilder

__all__ = ["module_from_exported", "export_module", "torchscript_to_exported", "load_exported",
           "load_torchscript", "is_torchscript_file", "SUPPORTED_ATEN"]

_DIMS = ("batch", "channels", "height", "width")
_PASS_THROUGH = ("dropout", "clone", "contiguous", "alias", "detach", "lift_fresh_copy", "feature_dropout")
_RESHAPES = ("view", "reshape", "_unsafe_view", "flatten", "squeeze", "unsqueeze")
_LUT_ATEN = {"hardswish": F.hardswish, "hardswish_": F.hardswish, "hardsigmoid": F.hardsigmoid,
             "hardsigmoid_": F.hardsigmoid, "sigmoid": torch.sigmoid, "sigmoid_": torch.sigmoid, "tanh": torch.tanh,
             "tanh_": torch.tanh, "silu": F.silu, "silu_": F.silu, "leaky_relu": F.leaky_relu,
             "leaky_relu_": F.leaky_relu}
# ATen operator -> what it becomes (listed by `host_tools convert --list-ops`)
SUPPORTED_ATEN = {
    "conv2d / convolution / _convolution": "Conv2d",
    "conv1d on [N, C, W]": "Conv1d (H = 1)",
    "batch_norm / _native_batch_norm_legit_no_training": "BatchNorm2d (folded into the conv before it)",
    "linear / addmm": "Linear",
    "relu / relu6 / hardtanh / clamp": "the clamp of the layer before it",
    "add (two tensors)": "residual add",
    "mul of a map by a gate [N, C, 1, 1]": "gate multiply (squeeze-and-excitation)",
    "cat of two tensors along the channels (dim 1)": "channel concatenation (each requantized to its scale)",
    "hardswish / hardsigmoid / sigmoid / tanh / silu / leaky_relu": "a lookup-table activation (int8 table, "
                                                                     "derivative table for the backward)",
    "max_pool2d / avg_pool2d / max_pool1d / avg_pool1d": "MaxPool2d / AvgPool2d (1-D: H = 1)",
    "adaptive_avg_pool2d (1) / mean over H, W": "global average pool",
    "view / reshape / flatten / squeeze to [N, K]": "free (a Linear reads C*H*W)",
    "dropout / clone / contiguous / detach": "removed",
}


def _opname(target) -> str:
    packet = getattr(target, "overloadpacket", None)
    return getattr(packet, "__name__", None) or getattr(target, "__name__", str(target))


def _where(node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    path, typ = list(stack.values())[-1] if stack else ("", "")
    if path:
        typ = typ if isinstance(typ, str) else getattr(typ, "__name__", str(typ))
        return f"node '{node.name}' (in module '{path}', {typ.rsplit('.', 1)[-1]})"
    return f"node '{node.name}'"


def _unsupported(node, why=None):
    from host_tools.frontends.torch_fx import _suggest
    op = _opname(node.target)
    what = why or _suggest(types.SimpleNamespace(__name__=op.rstrip("_")))
    raise UserError(f"unsupported operation aten.{op} at {_where(node)} of the exported program: {what}")


def _shape(node):
    val = node.meta.get("val")
    return tuple(val.shape) if isinstance(val, torch.Tensor) else None


def _check_static(node, what):
    from torch.fx.experimental.symbolic_shapes import is_concrete_int
    shape = _shape(node)
    if shape is None:
        raise UserError(f"{what} '{node.name}' is not a tensor: the model takes one image batch [N, C, H, W]")
    for i, d in enumerate(shape[1:], 1):
        if not is_concrete_int(d):
            dim = _DIMS[i] if len(shape) == 4 else f"dimension {i}"
            raise UserError(f"{what} '{node.name}' has a dynamic {dim} ({d}): the device runs one input "
                            f"shape; export without dynamic_shapes for that dimension (only the batch may be "
                            f"dynamic), or give the model itself and let convert export it at the calibration "
                            f"data's shape")


def module_from_exported(ep, name: str = None):
    """An fx.GraphModule of torch.nn layers computing what the ExportedProgram `ep` computes."""
    sig = ep.graph_signature
    keys = {**sig.inputs_to_parameters, **sig.inputs_to_buffers,
            **getattr(sig, "inputs_to_lifted_tensor_constants", {})}
    values = {**ep.state_dict, **getattr(ep, "constants", {})}
    user_inputs = list(sig.user_inputs)
    if len(user_inputs) != 1:
        raise UserError(f"the exported program takes {len(user_inputs)} inputs ({', '.join(user_inputs)}): "
                        f"the device model takes one image batch [N, C, H, W]")
    b = ModuleBuilder()
    env = {}                 # ATen node name -> fx node of the rebuilt model (or a constant tensor)
    for node in ep.graph.nodes:
        if node.op == "placeholder":
            if node.name in keys:
                env[node.name] = _Const(keys[node.name], values[keys[node.name]])
            else:
                _check_static(node, "the input")
                env[node.name] = b.input(node.name)
        elif node.op == "call_function":
            env[node.name] = _translate(b, node, env)
        elif node.op == "output":
            outs = [o for o in node.args[0]]
            if len(outs) != 1 or not hasattr(outs[0], "name"):
                raise UserError(f"the exported program returns {len(outs)} values: the device model returns "
                                f"one tensor of logits [N, K]")
            b.output(_tensor(env, outs[0], node))
        else:
            raise UserError(f"the exported program has a {node.op} node '{node.name}' (control flow or a "
                            f"submodule call): export a model whose forward() is one straight-line graph")
    return b.finish(name or "ExportedModel")


class _Const:
    """A parameter, buffer or constant of the exported program, with its state_dict key."""

    def __init__(self, key, value):
        self.key, self.value = key, value

    def layer(self):
        return self.key.rsplit(".", 1)[0] if "." in self.key else self.key


def _tensor(env, arg, node):
    v = env.get(getattr(arg, "name", None))
    if isinstance(v, _Const) or v is None:
        raise UserError(f"{_where(node)} computes on a constant tensor: only the layers' own weights "
                        f"can be constants (fold constants into a conv bias)")
    return v


def _const(env, arg, node, what):
    if arg is None:
        return None
    v = env.get(getattr(arg, "name", None))
    if not isinstance(v, _Const):
        raise UserError(f"{_where(node)}: its {what} is computed in forward(), not a parameter of the "
                        f"model: the weights must be parameters or buffers")
    return v


def _args(node, defaults):
    """The node's arguments by position, with `defaults` ([(name, default)]) filling the rest."""
    out = []
    for i, (key, default) in enumerate(defaults):
        out.append(node.args[i] if i < len(node.args) else node.kwargs.get(key, default))
    return out


def _translate(b, node, env):
    op = _opname(node.target)
    if node.target is operator.getitem:
        src, index = node.args
        if index != 0:
            raise UserError(f"{_where(node)} uses output #{index} of '{src.name}': only the first output "
                            f"of a layer (batch norm statistics and pool indices are not kept)")
        return env[src.name]
    if op in ("conv2d", "conv1d", "convolution", "_convolution"):
        if op in ("conv2d", "conv1d"):
            x, w, bias, stride, pad, dil, groups = _args(node, [("input", None), ("weight", None), ("bias", None),
                                                                ("stride", 1), ("padding", 0), ("dilation", 1),
                                                                ("groups", 1)])
        else:
            x, w, bias, stride, pad, dil, transposed, _, groups = node.args[:9]
            if transposed:
                _unsupported(node, "transposed convolutions are not supported: use an upsampling-free CNN")
        wc = _const(env, w, node, "weight")
        if wc.value.dim() not in (3, 4):
            _unsupported(node, f"only 1-D and 2-D convolutions are supported (its weight has shape "
                               f"{tuple(wc.value.shape)}): use Conv2d or Conv1d")
        bc = _const(env, bias, node, "bias")
        return b.conv2d(wc.layer(), _tensor(env, x, node), wc.value, bc.value if bc else None, stride,
                        pad, int(groups), dil)
    if op in ("batch_norm", "_native_batch_norm_legit_no_training"):
        if op == "batch_norm":
            x, w, bias, mean, var, training, _, eps = node.args[:8]
            if training:
                _unsupported(node, "batch norm in training mode: call model.eval() before exporting")
        else:
            x, w, bias, mean, var, _, eps = node.args[:7]
        wc, bc = _const(env, w, node, "weight"), _const(env, bias, node, "bias")
        mc, vc = _const(env, mean, node, "running mean"), _const(env, var, node, "running variance")
        if _shape(x) is None or len(_shape(x)) not in (3, 4):
            _unsupported(node, "only BatchNorm2d on a [N, C, H, W] map or BatchNorm1d on [N, C, W] is supported")
        return b.batchnorm2d(mc.layer(), _tensor(env, x, node), wc.value if wc else None,
                             bc.value if bc else None, mc.value, vc.value, eps, one_d=len(_shape(x)) == 3)
    if op in ("linear", "addmm"):
        if op == "linear":
            x, w, bias = _args(node, [("input", None), ("weight", None), ("bias", None)])
            wc = _const(env, w, node, "weight")
            weight = wc.value
        else:   # addmm(bias, x, w.T) after a decomposition: the weight is a transposed parameter
            bias, x, wt = node.args[:3]
            wc = _const(env, wt, node, "weight")
            weight = wc.value.t()
        bc = _const(env, bias, node, "bias")
        return b.linear(wc.layer(), _tensor(env, x, node), weight, bc.value if bc else None)
    if op in ("relu", "relu_"):
        return b.call(torch.relu, _tensor(env, node.args[0], node))
    if op in ("relu6", "relu6_"):
        return b.call(F.relu6, _tensor(env, node.args[0], node))
    if op in ("hardtanh", "hardtanh_"):
        x, lo, hi = _args(node, [("input", None), ("min_val", -1.0), ("max_val", 1.0)])
        return b.call(F.hardtanh, _tensor(env, x, node), float(lo), float(hi))
    if op in ("clamp", "clamp_", "clip"):
        x, lo, hi = _args(node, [("input", None), ("min", None), ("max", None)])
        return b.call(torch.clamp, _tensor(env, x, node), lo, hi)
    if op in _LUT_ATEN:
        x = _tensor(env, node.args[0], node)
        if op.startswith("leaky_relu"):
            slope = node.args[1] if len(node.args) > 1 else node.kwargs.get("negative_slope", 0.01)
            return b.call(F.leaky_relu, x, float(slope))
        return b.call(_LUT_ATEN[op], x)
    if op in ("add", "add_"):
        a, c = node.args[:2]
        if node.kwargs.get("alpha", 1) != 1 or not hasattr(c, "name") or isinstance(env.get(c.name), _Const):
            _unsupported(node, "only residual adds of two computed tensors are supported: fold constants "
                               "into a conv bias")
        return b.call(operator.add, _tensor(env, a, node), _tensor(env, c, node))
    if op in ("mul", "mul_"):         # the torch.fx converter checks the shapes, naming the node
        a, c = node.args[:2]
        if not hasattr(c, "name") or isinstance(env.get(c.name), _Const):
            _unsupported(node, "only a feature map times a computed gate [N, C, 1, 1] (squeeze-and-excitation) "
                               "is supported: fold constant factors into a conv")
        return b.call(operator.mul, _tensor(env, a, node), _tensor(env, c, node))
    if op in ("cat", "concat"):       # the torch.fx converter checks the dim and the count, naming the node
        parts, dim = _args(node, [("tensors", None), ("dim", 0)])
        return b.call(torch.cat, [_tensor(env, t, node) for t in parts], dim)
    if op in ("max_pool2d", "max_pool2d_with_indices"):
        x, k, st, pad, dil, ceil = _args(node, [("input", None), ("kernel_size", None), ("stride", ()),
                                               ("padding", 0), ("dilation", 1), ("ceil_mode", False)])
        return b.call(F.max_pool2d, _tensor(env, x, node), k, st or k, pad, dil, bool(ceil))
    if op == "max_pool1d":      # options the engine lacks are refused by the torch.fx converter, named
        x, k, st, pad, dil, ceil = _args(node, [("input", None), ("kernel_size", None), ("stride", ()),
                                               ("padding", 0), ("dilation", 1), ("ceil_mode", False)])
        return b.call(F.max_pool1d, _tensor(env, x, node), k, st or k, pad, dil, bool(ceil))
    if op == "avg_pool1d":
        x, k, st, pad, ceil, incl = _args(node, [("input", None), ("kernel_size", None), ("stride", ()),
                                                ("padding", 0), ("ceil_mode", False), ("count_include_pad", True)])
        return b.call(F.avg_pool1d, _tensor(env, x, node), k, st or k, pad, bool(ceil), bool(incl))
    if op == "avg_pool2d":
        x, k, st, pad, ceil, incl, div = _args(node, [("input", None), ("kernel_size", None), ("stride", ()),
                                                     ("padding", 0), ("ceil_mode", False),
                                                     ("count_include_pad", True), ("divisor_override", None)])
        return b.call(F.avg_pool2d, _tensor(env, x, node), k, st or k, pad, bool(ceil), bool(incl), div)
    if op in ("adaptive_avg_pool2d", "_adaptive_avg_pool2d"):
        return b.call(F.adaptive_avg_pool2d, _tensor(env, node.args[0], node), node.args[1])
    if op == "mean":
        x, dims, keep = _args(node, [("input", None), ("dim", None), ("keepdim", False)])
        return b.call(torch.mean, _tensor(env, x, node), list(dims or []), bool(keep))
    if op in _RESHAPES:
        shape = _shape(node)
        if shape is None:
            _unsupported(node)
        return b.call(torch.reshape, _tensor(env, node.args[0], node), (-1,) + tuple(int(d) for d in shape[1:]))
    if op in _PASS_THROUGH:
        return env[node.args[0].name]
    if op in ("_assert_scalar", "_assert_tensor_metadata", "sym_constrain_range_for_size", "sym_size",
              "_assert_async"):
        return None     # shape checks: resolved at the export's concrete shape
    _unsupported(node)


def export_module(model, sample):
    """torch.export.export(model) at the shape of `sample` (float [N, C, H, W]), errors as UserError."""
    x = torch.as_tensor(sample, dtype=torch.float32)
    try:
        return torch.export.export(model.eval(), (x,))
    except Exception as e:
        raise UserError(f"torch.export cannot export {type(model).__name__} at input shape {tuple(x.shape)} "
                        f"({type(e).__name__}: {str(e).strip().splitlines()[0]}); the model's forward() must "
                        f"run on the calibration data") from None


def is_torchscript_file(path) -> bool:
    """A TorchScript archive (torch.jit.save): a zip holding a 'code/' folder and 'constants.pkl'."""
    import zipfile
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    return any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names)


TORCHSCRIPT_INSTEAD = ("give the model as file.py:ClassName --weights STATE_DICT.pt (the state_dict of a "
                       "TorchScript archive: torch.save(torch.jit.load('{path}').state_dict(), 'w.pt')), or "
                       "as an ExportedProgram: torch.export.save(torch.export.export(model.eval(), (x,)), "
                       "'model.pt2')")


def load_torchscript(path):
    try:
        return torch.jit.load(path, map_location="cpu").eval()
    except Exception as e:
        raise UserError(f"cannot load the TorchScript archive {path} ({type(e).__name__}: "
                        f"{str(e).strip().splitlines()[0]}): " + TORCHSCRIPT_INSTEAD.format(path=path)) from None


def torchscript_to_exported(ts, sample, path="model.pt"):
    """The ExportedProgram of a TorchScript module, through PyTorch's TorchScript converter."""
    from torch._export.converter import TS2EPConverter
    x = torch.as_tensor(sample, dtype=torch.float32)
    try:
        ep = TS2EPConverter(ts, (x,)).convert()
        # the converter leaves every dimension dynamic: export again at the calibration data's shape
        return torch.export.export(ep.module(), (x,))
    except Exception as e:
        raise UserError(f"the TorchScript graph of {path} cannot be converted ({type(e).__name__}: "
                        f"{str(e).strip().splitlines()[0]}): " + TORCHSCRIPT_INSTEAD.format(path=path)) from None


def load_exported(path):
    """An ExportedProgram saved with torch.export.save."""
    try:
        return torch.export.load(path)
    except Exception as e:
        raise UserError(f"cannot load the ExportedProgram {path} ({type(e).__name__}: "
                        f"{str(e).strip().splitlines()[0]}): save it with torch.export.save(ep, '{path}')") from None
