"""ONNX front end: a float .onnx file -> a rebuilt PyTorch model for the torch.fx converter.

Read with the `onnx` package only (no runtime): the graph's nodes become torch.nn layers with the
file's weights (host_tools.frontends.module_builder), which convert_torch calibrates and quantizes like any
PyTorch model. Keras/TF models exported with tf2onnx take NHWC images and transpose them first: an
input Transpose(perm=[0, 3, 1, 2]) is dropped, and the calibration data is given as [N, C, H, W]
like for every other front end. A final Softmax is dropped (the device trains on the logits before
it; the top-1 is the same). Shapes (for Reshape/Flatten, computed in the file or not) come from
ONNX shape inference at the calibration data's shape.

    gm = load_onnx("model.onnx", (3, 32, 32))      # then convert_torch(gm, calib)
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

from host_tools.errors import UserError
from host_tools.frontends.module_builder import ModuleBuilder

__all__ = ["load_onnx", "SUPPORTED_ONNX", "MIN_OPSET"]

MIN_OPSET = 9           # Clip with min/max attributes, BatchNormalization without `spatial` quirks
# ONNX operator -> what it becomes (listed by `host_tools convert --list-ops`)
SUPPORTED_ONNX = {
    "Conv (2-D, symmetric pads)": "Conv2d",
    "Conv (1-D, on [N, C, W])": "Conv1d (H = 1)",
    "BatchNormalization": "BatchNorm2d (folded into the conv before it)",
    "Gemm / MatMul (+ Add of a bias)": "Linear",
    "Relu / Clip": "the clamp of the layer before it",
    "HardSwish / HardSigmoid / Sigmoid / Tanh / LeakyRelu / x * Sigmoid(x) (SiLU)":
        "a lookup-table activation (int8 table, derivative table)",
    "Add (two tensors)": "residual add",
    "Mul of a map [N, C, H, W] by a gate [N, C, 1, 1]": "gate multiply (squeeze-and-excitation)",
    "Concat of two tensors, axis 1": "channel concatenation (each requantized to its scale)",
    "MaxPool / AveragePool (2-D or 1-D)": "MaxPool2d / AvgPool2d (1-D: H = 1)",
    "GlobalAveragePool / ReduceMean over H, W": "global average pool",
    "Flatten / Reshape / Squeeze to [N, K]": "free (a Linear reads C*H*W)",
    "Identity / Dropout": "removed",
    "Transpose [0, 3, 1, 2] of the input": "removed (NHWC input: give calibration data as NCHW)",
    "Softmax at the output": "removed (the device trains on logits)",
}
_SHAPE_OPS = ("Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice", "Mul", "Div", "Add",
              "Sub", "ConstantOfShape", "Range", "Size", "ReduceProd")
_ALIASES = ("Identity", "Dropout")
_RESHAPES = ("Flatten", "Reshape", "Squeeze", "Unsqueeze")


def _onnx():
    try:
        import onnx
    except ImportError:
        raise UserError("reading .onnx files needs the onnx package: pip install onnx "
                        "(or make venv, which installs requirements.txt)") from None
    return onnx


class _Const:
    def __init__(self, value, name):
        self.value, self.name = np.asarray(value), name


_FUSED = object()       # env key: outputs of Add nodes folded into the MatMul before them as its bias
_SHAPE = object()       # a value computed from shapes only (Shape -> Gather -> Concat -> Reshape)


def load_onnx(path: str, input_shape):
    """An fx.GraphModule computing what the ONNX file computes, for inputs [N, *input_shape] (C, H, W)."""
    onnx = _onnx()
    from onnx import numpy_helper
    if not os.path.exists(path):
        raise UserError(f"{path} does not exist")
    try:
        model = onnx.load(path)
    except Exception as e:
        raise UserError(f"cannot read {path} as an ONNX model ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    opset = {(o.domain or "ai.onnx"): o.version for o in model.opset_import}
    version = opset.get("ai.onnx")
    newest = onnx.defs.onnx_opset_version()
    if version is None or not MIN_OPSET <= version <= newest:
        raise UserError(f"{path} uses ONNX opset {version}: supported are opsets {MIN_OPSET} to {newest}; "
                        f"export again with opset_version between them (e.g. 17), or convert it with "
                        f"onnx.version_converter.convert_version(model, 17)")
    g = model.graph
    consts = {t.name: _Const(numpy_helper.to_array(t), t.name) for t in g.initializer}
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1:
        raise UserError(f"{path} has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}): the device "
                        f"model takes one image batch")
    shapes = _infer_shapes(onnx, model, inputs[0], input_shape, path)
    if len(g.output) != 1:
        raise UserError(f"{path} has {len(g.output)} outputs ({', '.join(o.name for o in g.output)}): the "
                        f"device model returns one tensor of logits [N, K]")

    b = ModuleBuilder()
    env = dict(consts)
    env[inputs[0].name] = b.input(inputs[0].name)
    out_name = g.output[0].name
    nodes = list(g.node)
    for k, node in enumerate(nodes):
        name = node.name or f"{node.op_type}_{k}"
        if node.domain not in ("", "ai.onnx"):
            raise UserError(f"ONNX node '{name}' ({node.domain}.{node.op_type}) is from a custom domain: "
                            f"export with standard ONNX operators only")
        _translate(b, node, name, env, shapes, nodes, out_name)
    out = env.get(out_name)
    if not hasattr(out, "op"):
        raise UserError(f"the output '{out_name}' of {path} is not computed from the input")
    shp = shapes.get(out_name)
    if shp is not None and len(shp) != 2:
        raise UserError(f"the output '{out_name}' of {path} has shape {list(shp)}: the device trains a "
                        f"classifier whose output is logits [N, K]; end the model with a global average "
                        f"pool, a flatten and a dense (Gemm/MatMul) layer")
    b.output(out)
    return b.finish(os.path.splitext(os.path.basename(path))[0])


def _infer_shapes(onnx, model, inp, input_shape, path):
    """value name -> shape, by ONNX shape inference with the input fixed to [1, *input_shape]
    (or its NHWC order when the file takes NHWC)."""
    dims = inp.type.tensor_type.shape.dim
    fixed = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    params = [d.dim_param for d in dims]
    c, h, w = (int(v) for v in input_shape)
    if len(dims) == 3 and c == 1:           # 1-D signals [N, C, W], read by load_data as [N, 1, C, W]
        c, h, w = h, 1, w
    if len(dims) not in (3, 4):
        raise UserError(f"the input '{inp.name}' of {path} has {len(dims)} dimensions: the device model "
                        f"takes images [N, C, H, W] or signals [N, C, W]")
    nhwc = len(dims) == 4 and fixed[3] == c and fixed[1] != c
    want = [1, h, w, c] if nhwc else [1, c, h, w] if len(dims) == 4 else [1, c, w]
    names = ("height", "width", "channels") if nhwc else ("channels", "height", "width") if len(dims) == 4 \
        else ("channels", "width")
    for i in range(1, len(dims)):
        if fixed[i] is None:
            raise UserError(f"the input '{inp.name}' of {path} has a dynamic {names[i - 1]} ('{params[i]}'): "
                            f"the device runs one input shape; export with a fixed input size (only the "
                            f"batch may be dynamic)")
        if fixed[i] != want[i]:
            raise UserError(f"the input '{inp.name}' of {path} has shape {fixed[1:]}, the calibration data "
                            f"{list(input_shape)} (C, H, W): give calibration images of the model's size")
    m = onnx.ModelProto()
    m.CopyFrom(model)
    d0 = [i for i in m.graph.input if i.name == inp.name][0].type.tensor_type.shape.dim[0]
    d0.Clear()
    d0.dim_value = 1
    try:
        m = onnx.shape_inference.infer_shapes(m, data_prop=True)
    except Exception as e:
        raise UserError(f"ONNX shape inference fails on {path} ({type(e).__name__}: {str(e).splitlines()[0]}): "
                        f"check the file with onnx.checker.check_model") from None
    out = {}
    for vi in list(m.graph.value_info) + list(m.graph.output) + list(m.graph.input):
        dd = vi.type.tensor_type.shape.dim
        if vi.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dd):
            out[vi.name] = tuple(d.dim_value for d in dd)
    return out


def _attrs(node):
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _pads(name, op, a, shapes_in, kernel, strides, dilations=(1, 1)):
    """Symmetric (pH, pW) of a 2-D Conv/pool node, (pW,) of a 1-D one, from `pads` or `auto_pad`."""
    n = len(kernel)
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, k, s, d in zip(shapes_in[2:], kernel, strides, dilations):
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2) if auto == "SAME_UPPER" else (total - total // 2, total // 2))
        begin, end = [p[0] for p in pads], [p[1] for p in pads]
    elif auto == "VALID":
        begin, end = [0] * n, [0] * n
    else:
        p = list(a.get("pads", [0] * 2 * n))
        begin, end = p[:n], p[n:]
    if begin != end:
        raise UserError(f"ONNX {op} node '{name}' pads asymmetrically (begin {begin}, end {end}): the device's "
                        f"{op.lower()} pads both sides equally; use an odd kernel with 'same' padding on stride "
                        f"1, or explicit symmetric padding")
    return tuple(int(v) for v in begin)


def _translate(b, node, name, env, shapes, nodes, out_name):
    op = node.op_type
    ins = list(node.input)
    a = _attrs(node)

    def tensor(i=0):
        v = env.get(ins[i])
        if not hasattr(v, "op"):
            raise UserError(f"ONNX {op} node '{name}' reads '{ins[i]}', which is not computed from the input "
                            f"(a constant or a shape): only layers' weights may be constants")
        return v

    def const(i, what):
        if i >= len(ins) or not ins[i]:
            return None
        v = env.get(ins[i])
        if not isinstance(v, _Const):
            raise UserError(f"ONNX {op} node '{name}': its {what} '{ins[i]}' is computed in the graph; it must "
                            f"be an initializer (a weight of the model)")
        return v

    def layer(c):
        n = c.name
        for suffix in (".weight", "/weight", "_weight", ":0", "/kernel", "/read"):
            n = n[:-len(suffix)] if n.endswith(suffix) else n
        return n if c.name != n else name

    def set_out(v):
        env[node.output[0]] = v

    if op == "Constant":
        from onnx import numpy_helper
        if "value" not in a:
            raise UserError(f"ONNX Constant node '{name}' has no tensor 'value': unsupported attribute "
                            f"{', '.join(a)}")
        return set_out(_Const(numpy_helper.to_array(a["value"]), node.output[0]))
    if op in _SHAPE_OPS and all(not hasattr(env.get(i), "op") for i in ins if i):
        return set_out(_SHAPE)          # shape arithmetic: its result is only read by a Reshape
    if op == "Conv":
        wc = const(1, "weight")
        if wc.value.ndim not in (3, 4):
            raise UserError(f"ONNX Conv node '{name}' is a {wc.value.ndim - 2}-D convolution: only 1-D and 2-D "
                            f"convolutions are supported")
        k = wc.value.shape[2:]
        strides = tuple(a.get("strides", [1] * len(k)))
        dil = tuple(a.get("dilations", [1] * len(k)))
        if any(d != 1 for d in dil):
            raise UserError(f"ONNX Conv node '{name}' has dilations {list(dil)}: only dilation 1 is supported; "
                            f"use a larger kernel")
        pads = _pads(name, op, a, shapes.get(ins[0], (1, 1) + (0,) * len(k)), k, strides)
        bc = const(2, "bias")
        return set_out(b.conv2d(layer(wc), tensor(), wc.value, bc.value if bc else None, strides, pads,
                                int(a.get("group", 1))))
    if op == "BatchNormalization":
        if a.get("training_mode", 0):
            raise UserError(f"ONNX BatchNormalization node '{name}' is in training mode: export the model "
                            f"in eval mode")
        sc, bi, mean, var = (const(i, w) for i, w in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "var")))
        return set_out(b.batchnorm2d(layer(sc) if sc.name != name else name, tensor(), sc.value, bi.value,
                                     mean.value, var.value, a.get("epsilon", 1e-5),
                                     one_d=len(shapes.get(ins[0], (1, 1, 1, 1))) == 3))
    if op in ("Gemm", "MatMul"):
        wc = const(1, "weight")
        w = wc.value.astype(np.float64)
        bias = None
        if op == "Gemm":
            if a.get("transA", 0):
                raise UserError(f"ONNX Gemm node '{name}' has transA=1: only x @ W (transA=0) is supported")
            w = (w if a.get("transB", 0) else w.T) * a.get("alpha", 1.0)
            bc = const(2, "bias")
            bias = None if bc is None else np.broadcast_to(bc.value * a.get("beta", 1.0), (w.shape[0],))
        else:
            if w.ndim != 2:
                raise UserError(f"ONNX MatMul node '{name}' multiplies by a {w.ndim}-D tensor: only x @ W "
                                f"with a 2-D weight (a dense layer) is supported")
            w = w.T
            nxt = _single_bias_add(node, nodes, env, w.shape[0])
            if nxt is not None:
                bias, add_node = nxt
                env.setdefault(_FUSED, set()).add(add_node.output[0])   # the Add is this layer's bias
        shp = shapes.get(ins[0])
        if shp is not None and len(shp) != 2:
            raise UserError(f"ONNX {op} node '{name}' reads a tensor of shape {list(shp)}: flatten the feature "
                            f"map to [N, C*H*W] before the dense layer")
        y = b.linear(layer(wc), tensor(), w, bias)
        set_out(y)
        if op == "MatMul" and nxt is not None:
            env[nxt[1].output[0]] = y
        return
    if op == "Relu":
        return set_out(b.call(torch.relu, tensor()))
    if op == "Clip":
        lo = a.get("min", None)
        hi = a.get("max", None)
        if len(ins) > 1 and ins[1]:
            lo = float(const(1, "min").value)
        if len(ins) > 2 and ins[2]:
            hi = float(const(2, "max").value)
        return set_out(b.call(torch.clamp, tensor(), lo, hi))
    if op == "Mul" and node.output[0] in env.get(_FUSED, ()):
        return          # x * Sigmoid(x): the SiLU written at the Sigmoid
    if op == "Mul":
        sa, sb = shapes.get(ins[0]), shapes.get(ins[1])
        if sa is not None and sb is not None and tuple(sa[2:]) == (1, 1) and tuple(sb[2:]) != (1, 1):
            sa, sb = sb, sa
        if any(isinstance(env.get(i), _Const) for i in ins) or sa is None or sb is None or len(sa) != 4 or \
                tuple(sb[1:]) != (sa[1], 1, 1) or ins[0] == ins[1]:
            raise UserError(f"ONNX Mul node '{name}' multiplies {sa} by {sb}: only a map [N, C, H, W] times a "
                            f"computed gate [N, C, 1, 1] (squeeze-and-excitation) is supported")
        return set_out(b.call(torch.mul, tensor(0), tensor(1)))
    if op == "Sigmoid" and _silu_mul(node, nodes) is not None:
        y = b.call(F.silu, tensor())
        mul = _silu_mul(node, nodes)
        env.setdefault(_FUSED, set()).add(mul.output[0])
        env[mul.output[0]] = y
        return set_out(y)
    if op in ("HardSwish", "Sigmoid", "Tanh"):
        return set_out(b.call({"HardSwish": F.hardswish, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh}[op], tensor()))
    if op == "HardSigmoid":
        from host_tools.frontends.activations import HardSigmoidAB
        return set_out(b.module(name, HardSigmoidAB(a.get("alpha", 0.2), a.get("beta", 0.5)), tensor()))
    if op == "LeakyRelu":
        return set_out(b.call(F.leaky_relu, tensor(), float(a.get("alpha", 0.01))))
    if op == "Add":
        if node.output[0] in env.get(_FUSED, ()):
            return          # a MatMul's bias, folded into its Linear
        if any(isinstance(env.get(i), _Const) for i in ins):
            raise UserError(f"ONNX Add node '{name}' adds a constant: only residual adds of two computed "
                            f"tensors, and the bias right after a MatMul, are supported")
        if shapes.get(ins[0]) != shapes.get(ins[1]):
            raise UserError(f"ONNX Add node '{name}' adds shapes {shapes.get(ins[0])} and {shapes.get(ins[1])}: "
                            f"broadcasting is not supported")
        return set_out(b.call(torch.add, tensor(0), tensor(1)))
    if op == "Concat":
        rank = len(shapes.get(ins[0], ()))
        if len(ins) != 2 or ins[0] == ins[1] or rank < 3 or a.get("axis", 0) % rank != 1:
            raise UserError(f"ONNX Concat node '{name}' joins {len(ins)} tensors along axis {a.get('axis')}: "
                            f"two distinct tensors along the channels (axis 1) are supported; nest the Concats")
        return set_out(b.call(torch.cat, [tensor(0), tensor(1)], 1))
    if op in ("MaxPool", "AveragePool"):
        k = tuple(a["kernel_shape"])
        st = tuple(a.get("strides", [1] * len(k)))
        if len(k) not in (1, 2):
            raise UserError(f"ONNX {op} node '{name}' pools over {len(k)} dimensions: only 1-D and 2-D pooling")
        if a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1])) or len(node.output) > 1:
            raise UserError(f"ONNX {op} node '{name}' uses ceil_mode, dilations or indices: only the "
                            f"defaults are supported")
        pads = _pads(name, op, a, shapes.get(ins[0], (1, 1) + (0,) * len(k)), k, st)
        one_d = len(k) == 1
        if op == "MaxPool":
            return set_out(b.call(F.max_pool1d if one_d else F.max_pool2d, tensor(), k, st, pads))
        if any(pads) and not a.get("count_include_pad", 0):
            raise UserError(f"ONNX AveragePool node '{name}' pads and excludes the padding from the average "
                            f"(count_include_pad=0): the device counts it; use count_include_pad=1 or no padding")
        return set_out(b.call(F.avg_pool1d if one_d else F.avg_pool2d, tensor(), k, st, pads))
    if op == "GlobalAveragePool":
        one_d = len(shapes.get(ins[0], (1, 1, 1, 1))) == 3
        return set_out(b.call(F.adaptive_avg_pool1d if one_d else F.adaptive_avg_pool2d, tensor(), 1))
    if op == "ReduceMean":
        axes = a.get("axes")
        if axes is None and len(ins) > 1 and ins[1]:
            axes = const(1, "axes").value.tolist()
        rank = len(shapes.get(ins[0], (1, 1, 1, 1)))
        spatial = list(range(2, rank))
        if sorted(int(x) % rank for x in (axes or [])) != spatial:
            raise UserError(f"ONNX ReduceMean node '{name}' averages over axes {axes}: only the mean over "
                            f"the spatial axes (H and W: [2, 3]; W of a 1-D signal: [2]) is supported")
        return set_out(b.call(torch.mean, tensor(), spatial, bool(a.get("keepdims", 1))))
    if op in _RESHAPES:
        shp = shapes.get(node.output[0])
        if shp is None:
            raise UserError(f"ONNX {op} node '{name}' has an output shape that shape inference cannot fix "
                            f"(a dynamic shape): export with a fixed input size")
        return set_out(b.call(torch.reshape, tensor(), (-1,) + tuple(int(d) for d in shp[1:])))
    if op in _ALIASES:
        return set_out(tensor())
    if op == "Transpose" and list(a.get("perm", [])) == [0, 3, 1, 2] and env.get(ins[0]) is not None \
            and getattr(env.get(ins[0]), "op", None) == "placeholder":
        return set_out(tensor())        # NHWC input -> NCHW: the calibration data is NCHW already
    if op == "Softmax" and node.output[0] == out_name:
        print(f"note: the final Softmax (ONNX node '{name}') is dropped: the device trains on the logits "
              f"before it (the top-1 is the same)")
        return set_out(tensor())
    raise UserError(f"unsupported ONNX operator {op} (node '{name}'): {_advice(op)}")


def _advice(op):
    from host_tools.frontends.torch_fx import SUPPORTED
    if op in ("Elu", "Selu", "PRelu", "Gelu", "Mish", "Softplus", "Softsign"):
        return ("replace the activation with ReLU, ReLU6 (Clip 0..6), HardSwish, Sigmoid, Tanh or LeakyRelu, or "
                "remove it")
    if op in ("Softmax", "LogSoftmax"):
        return "remove it: the device works on logits"
    if op in ("LSTM", "GRU", "RNN", "Attention"):
        return "recurrent and attention layers are not supported: use a CNN"
    return f"rewrite that part of the model with the supported layers ({SUPPORTED})"


def _silu_mul(node, nodes):
    """The Mul of x * Sigmoid(x) (SiLU as exporters write it) when it is the Sigmoid's only reader."""
    users = [n for n in nodes if node.output[0] in n.input]
    if len(users) == 1 and users[0].op_type == "Mul" and sorted(users[0].input) == sorted([node.input[0],
                                                                                         node.output[0]]):
        return users[0]
    return None


def _single_bias_add(node, nodes, env, n_out):
    """(bias, Add node) when the MatMul's only consumer is an Add of a constant vector [n_out]."""
    users = [n for n in nodes if node.output[0] in n.input]
    if len(users) != 1 or users[0].op_type != "Add":
        return None
    other = [i for i in users[0].input if i != node.output[0]]
    c = env.get(other[0]) if len(other) == 1 else None
    if not isinstance(c, _Const) or c.value.size != n_out:
        return None
    return c.value.reshape(n_out).astype(np.float64), users[0]
