"""TF-Lite int8 front end: a fully int8 .tflite file -> Graph, its quantization taken as is.

Like the MIT int8 models (host_tools/frontends/mit.py), nothing is re-calibrated: every int8 weight,
int32 bias, per-channel weight scale and activation scale/zero point is the file's own. The C core
requantizes with TF-Lite's integer rules (host_tools/model/quant.py: QuantizeMultiplier, double rounding,
the ADD left shift 20), from the same float scales, so each op reproduces TF-Lite's reference kernels
bit for bit, except (named in SUPPORTED_TFLITE): MEAN divides by H*W with a fixed-point multiplier in
TF-Lite, exactly (rounding half to even) on the device; AVERAGE_POOL_2D rounds exact halves away from
zero in TF-Lite, to even on the device; TF-Lite's reference FULLY_CONNECTED (ai-edge-litert 2.3)
requantizes with one rounding of the 64-bit product, its convs and the device with two (gemmlowp).
Each may move a value by one step.

The file is read with the `tflite` flatbuffer package. Layout: TF-Lite tensors are NHWC, the graph's
are (C, H, W); conv weights OHWI -> OIHW, depthwise [1, kH, kW, C*M] -> [C*M, 1, kH, kW]; a dense
layer reading a flattened H x W x C map gets its columns reordered to C x H x W.

    graph = load_tflite("model.tflite")
"""
import os

import numpy as np

from host_tools.errors import UserError
from host_tools.frontends.torch_fx import check_training
from host_tools.model.graph import Add, AvgPool2d, Concat, Conv2d, Mul, FullyConnected, GlobalAvgPool, Graph, MaxPool2d
from host_tools.model.lut import make_lut

__all__ = ["load_tflite", "SUPPORTED_TFLITE"]

# TF-Lite operator -> what it becomes (listed by `host_tools convert --list-ops`)
SUPPORTED_TFLITE = {
    "CONV_2D": "Conv2d (weights, biases and scales as they are)",
    "DEPTHWISE_CONV_2D": "Conv2d with groups = input channels",
    "FULLY_CONNECTED": "Linear (per-tensor or per-channel weight scales; TF-Lite rounds once, the device "
                       "twice: may differ by 1 step)",
    "ADD": "residual add (same shapes)",
    "MUL of a map [1, H, W, C] by a gate [1, 1, 1, C]": "gate multiply (squeeze-and-excitation, TF-Lite's "
                                                         "requantization)",
    "CONCATENATION (two tensors, channel axis)": "channel concatenation (each requantized to the output's "
                                                 "quantization; TF-Lite's converter gives them the same)",
    "MAX_POOL_2D": "MaxPool2d",
    "AVERAGE_POOL_2D (no padding)": "AvgPool2d (exact halves round to even, TF-Lite rounds them away from 0)",
    "MEAN over H, W (same scale in and out)": "global average pool (may differ by 1 step: TF-Lite divides by "
                                              "H*W with a fixed-point multiplier, the device exactly)",
    "LOGISTIC / TANH / HARD_SWISH / LEAKY_RELU / MUL(x, LOGISTIC(x)) (SiLU)":
        "a lookup-table activation built from the file's scales (the float function rounded to the nearest "
        "step: may differ from TF-Lite's fixed-point kernels by 1 step)",
    "PAD (symmetric, before a conv)": "the conv's padding",
    "RESHAPE / SQUEEZE to [N, K]": "free (a dense layer reads C*H*W)",
    "QUANTIZE of a float input": "removed (the device takes the int8 input)",
    "SOFTMAX / DEQUANTIZE at the output": "removed (the device trains on the int8 logits)",
}
_DROPPED_AT_OUTPUT = ("SOFTMAX", "DEQUANTIZE")
_LUT_KINDS = {"LOGISTIC": "sigmoid", "TANH": "tanh", "HARD_SWISH": "hardswish", "LEAKY_RELU": "leaky_relu"}


def _tflite():
    try:
        import tflite
    except ImportError:
        raise UserError("reading .tflite files needs the tflite package: pip install tflite "
                        "(or make venv, which installs requirements.txt)") from None
    return tflite


class _Reader:
    def __init__(self, path):
        tfl = self.tfl = _tflite()
        if not os.path.exists(path):
            raise UserError(f"{path} does not exist")
        with open(path, "rb") as f:
            self.buf = f.read()
        try:
            if self.buf[4:8] != b"TFL3":
                raise ValueError("no TFL3 file identifier")
            self.m = tfl.Model.GetRootAs(self.buf, 0)
            if self.m.SubgraphsLength() != 1:
                raise UserError(f"{path} has {self.m.SubgraphsLength()} subgraphs (control flow): only "
                                f"single-graph models are supported")
            self.sg = self.m.Subgraphs(0)
        except UserError:
            raise
        except Exception as e:
            raise UserError(f"cannot read {path} as a TF-Lite model ({type(e).__name__}: {e})") from None
        self.path = path
        self.op_names = {v: k for k, v in vars(tfl.BuiltinOperator).items() if not k.startswith("_")}
        self.type_names = {v: k for k, v in vars(tfl.TensorType).items() if not k.startswith("_")}

    def opcode(self, op):
        code = self.m.OperatorCodes(op.OpcodeIndex())
        return self.op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")

    def tensor(self, i):
        t = self.sg.Tensors(int(i))
        q = t.Quantization()
        scale = q.ScaleAsNumpy() if q is not None and q.ScaleLength() else None
        zero = q.ZeroPointAsNumpy() if q is not None and q.ZeroPointLength() else None
        return dict(index=int(i), name=t.Name().decode(), shape=tuple(int(d) for d in t.ShapeAsNumpy())
                    if t.ShapeLength() else (), type=self.type_names.get(t.Type(), str(t.Type())),
                    scale=None if scale is None else np.asarray(scale, np.float32),
                    zero=None if zero is None else np.asarray(zero, np.int64), buffer=t.Buffer(),
                    dynamic=t.ShapeSignatureLength() > 0 and any(d < 0 for d in t.ShapeSignatureAsNumpy()))

    def data(self, t, dtype):
        b = self.m.Buffers(t["buffer"])
        if b is None or b.DataLength() == 0:
            return None
        return np.frombuffer(b.DataAsNumpy().tobytes(), dtype=dtype).reshape(t["shape"])

    def options(self, op, cls_name):
        table = op.BuiltinOptions()
        opts = getattr(self.tfl, cls_name)()
        if table is not None:
            opts.Init(table.Bytes, table.Pos)
        return opts


def _round_away(v):
    return float(np.sign(v) * np.floor(np.abs(v) + 0.5))


def _clamp(act, scale, zero, tfl, where):
    """TF-Lite's CalculateActivationRangeQuantized (float32 x / scale, rounded half away from zero)."""
    q = lambda x: zero + int(_round_away(np.float32(x) / np.float32(scale)))    # noqa: E731
    A = tfl.ActivationFunctionType
    if act == A.NONE:
        return -128, 127
    if act == A.RELU:
        return max(-128, q(0.0)), 127
    if act == A.RELU6:
        return max(-128, q(0.0)), min(127, q(6.0))
    if act == A.RELU_N1_TO_1:
        return max(-128, q(-1.0)), min(127, q(1.0))
    raise UserError(f"{where} has the fused activation {act} (TANH or SIGN_BIT): only RELU, RELU6 and "
                    f"RELU_N1_TO_1 are supported")


def _same_pads(where, size, kernel, stride, padding, tfl):
    """Symmetric (pH, pW) of TF-Lite SAME/VALID padding; UserError when SAME pads unevenly."""
    if padding == tfl.Padding.VALID:
        return (0, 0)
    pads = []
    for n, k, s in zip(size, kernel, stride):
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        if total % 2:
            raise UserError(f"{where} pads asymmetrically (TF 'SAME' padding on a {size[0]}x{size[1]} input with "
                            f"kernel {kernel[0]}x{kernel[1]} and stride {stride[0]}: {total // 2} before, "
                            f"{total - total // 2} after); the device pads both sides equally: use an input "
                            f"size for which the padding is even (e.g. odd sizes with stride 2), or "
                            f"ZeroPadding2D(1) and padding='valid'")
        pads.append(total // 2)
    return tuple(pads)


def load_tflite(path: str, n_bias_update: int = 0, train_classifier: bool = True) -> Graph:
    """A fully int8 .tflite file as a Graph (see the module docstring)."""
    r = _Reader(path)
    tfl = r.tfl
    sg = r.sg
    tensors = {}                # TF-Lite tensor index -> our activation name (after aliases)
    shapes = {}                 # activation name -> (C, H, W)
    quant = {}                  # activation name -> (scale, zero)
    flat_of = {}                # activation name of a flattened map -> the (C, H, W) it was read from
    pads = {}                   # activation name of a PAD's output -> (its input, (pH, pW))
    ops = []
    names = set()

    def act_tensor(t, where):
        if t["type"] in ("FLOAT32", "FLOAT16"):
            raise UserError(f"{r.path} is a float model ({where} works on {t['type']} tensor '{t['name']}'): "
                            f"the device runs int8 models; convert it with full integer quantization "
                            f"(TFLiteConverter with optimizations=[tf.lite.Optimize.DEFAULT], a "
                            f"representative_dataset and inference_input_type/inference_output_type = tf.int8), "
                            f"or convert the float model (ONNX/PyTorch) here, which calibrates it")
        if t["type"] != "INT8":
            raise UserError(f"{where}: tensor '{t['name']}' is {t['type']}"
                            + (" (16x8 quantization: int16 activations)" if t["type"] == "INT16" else "")
                            + ": the device runs int8 activations; convert with int8 activations "
                              "(the default full integer quantization, not EXPERIMENTAL_TFLITE_BUILTINS_"
                              "ACTIVATIONS_INT16_WEIGHTS_INT8)")
        if t["scale"] is None or t["scale"].size != 1:
            raise UserError(f"{where}: activation '{t['name']}' has no per-tensor quantization: the file is "
                            f"not a fully quantized int8 model")
        if t["dynamic"]:
            raise UserError(f"{where}: tensor '{t['name']}' has a dynamic shape (shape_signature with -1 "
                            f"beyond the batch): convert with a fixed input size")
        return float(t["scale"][0]), int(t["zero"][0]) if t["zero"] is not None else 0

    def new_name(t):
        base = t["name"].split(";")[0] or f"t{t['index']}"
        n, k = base, 1
        while n in names:
            k += 1
            n = f"{base}_{k}"
        names.add(n)
        return n

    def nchw(shape):
        s = tuple(shape)
        if len(s) == 4:
            return (s[3], s[1], s[2])
        if len(s) == 2:
            return (s[1], 1, 1)
        raise UserError(f"tensor shape {list(s)}: only images [1, H, W, C] and vectors [1, K] are supported")

    def src(t, where):
        if t["index"] not in tensors:
            act_tensor(t, where)            # a float tensor: a float model

            raise UserError(f"{where} reads '{t['name']}', which no supported operator computes")
        return tensors[t["index"]]

    def output(t, where, q=None):
        name = new_name(t)
        tensors[t["index"]] = name
        shapes[name] = nchw(t["shape"])
        quant[name] = act_tensor(t, where) if q is None else q
        return name

    def weights(t, where, want_ndim):
        if t["type"] in ("FLOAT32", "FLOAT16"):
            act_tensor(t, where)          # raises the float-model error
        if t["type"] != "INT8":
            raise UserError(f"{where}: weight '{t['name']}' is {t['type']}: only int8 weights are supported "
                            f"(convert with full integer quantization)")
        w = r.data(t, np.int8)
        if w is None or w.ndim != want_ndim:
            raise UserError(f"{where}: weight '{t['name']}' is not a constant {want_ndim}-D tensor")
        if t["zero"] is not None and np.any(t["zero"] != 0):
            raise UserError(f"{where}: weight '{t['name']}' has non-zero zero points: only symmetric int8 "
                            f"weights are supported")
        return w

    def bias(t, n, where):
        if t is None:
            return np.zeros(n, np.int32)
        if t["type"] != "INT32":
            raise UserError(f"{where}: bias '{t['name']}' is {t['type']}: only int32 biases are supported")
        return np.array(r.data(t, np.int32), dtype=np.int32).reshape(n)

    inputs = [r.tensor(i) for i in sg.InputsAsNumpy()]
    outputs = [int(i) for i in sg.OutputsAsNumpy()]
    if len(inputs) != 1 or len(outputs) != 1:
        raise UserError(f"{path} has {len(inputs)} inputs and {len(outputs)} outputs: the device model takes "
                        f"one image and returns one tensor of logits")
    inp = inputs[0]
    float_input = inp["type"] == "FLOAT32"
    if not float_input:
        output(inp, f"the input '{inp['name']}'")
    input_name = None if float_input else tensors[inp["index"]]
    out_index = outputs[0]
    n_ops = sg.OperatorsLength()
    silu_muls = {}              # operator index of a MUL x * LOGISTIC(x) -> the LOGISTIC's (a SiLU)
    for k in range(n_ops):
        if k in silu_muls:
            continue
        op = sg.Operators(k)
        kind = r.opcode(op)
        ins = [r.tensor(i) if i >= 0 else None for i in op.InputsAsNumpy()]
        outs = [r.tensor(i) for i in op.OutputsAsNumpy()]
        out = outs[0]
        where = f"TF-Lite operator #{k} {kind} (output '{out['name']}')"
        layer = out["name"].split(";")[0]
        if kind == "QUANTIZE" and float_input and ins[0]["index"] == inp["index"]:
            input_name = output(out, where)
            continue
        if kind in _DROPPED_AT_OUTPUT and out["index"] == out_index:
            print(f"note: the final {kind} ({where}) is dropped: the device trains on the int8 logits before it")
            out_index = ins[0]["index"]
            continue
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            x = src(ins[0], where)
            xs, xz = quant[x]
            w = weights(ins[1], where, 4)
            c, h, wd = shapes[x]
            if kind == "CONV_2D":
                o = r.options(op, "Conv2DOptions")
                wt = w.transpose(0, 3, 1, 2)                  # OHWI -> OIHW
                groups = c // wt.shape[1]
            else:
                o = r.options(op, "DepthwiseConv2DOptions")
                wt = w.transpose(3, 0, 1, 2)                  # [1, kH, kW, C*M] -> [C*M, 1, kH, kW]
                groups = c
            if o.DilationHFactor() > 1 or o.DilationWFactor() > 1:
                raise UserError(f"{where} has dilation {o.DilationHFactor()}x{o.DilationWFactor()}: only "
                                f"dilation 1 is supported")
            stride = (o.StrideH(), o.StrideW())
            base = pads.get(x)
            if base is not None:                   # a PAD folded into this conv
                if o.Padding() != tfl.Padding.VALID:
                    raise UserError(f"{where} follows a PAD and pads again ('SAME'): use padding='valid' "
                                    f"after ZeroPadding2D")
                x, pad = base
                c, h, wd = shapes[x]
            else:
                pad = _same_pads(where, (h, wd), wt.shape[2:], stride, o.Padding(), tfl)
            ws = ins[1]["scale"]
            ws = np.broadcast_to(ws, (wt.shape[0],)).astype(np.float32) if ws is not None else None
            if ws is None:
                raise UserError(f"{where}: weight '{ins[1]['name']}' has no quantization scale")
            y = output(out, where)
            ys, yz = quant[y]
            amin, amax = _clamp(o.FusedActivationFunction(), ys, yz, tfl, where)
            ops.append(Conv2d(layer, x, y, np.ascontiguousarray(wt), bias(ins[2] if len(ins) > 2 else None,
                                                                             wt.shape[0], where),
                              ws.copy(), stride, pad, int(groups), xs, xz, ys, yz, amin, amax))
        elif kind == "FULLY_CONNECTED":
            x = src(ins[0], where)
            xs, xz = quant[x]
            w = weights(ins[1], where, 2)
            o = r.options(op, "FullyConnectedOptions")
            chw = flat_of.get(x, shapes[x])
            if w.shape[1] != int(np.prod(chw)):
                raise UserError(f"{where}: the weight reads {w.shape[1]} values, its input has {chw}")
            c, h, wd = chw
            if h * wd > 1:                         # columns in H, W, C order -> C, H, W
                w = w.reshape(-1, h, wd, c).transpose(0, 3, 1, 2).reshape(w.shape[0], -1)
            ws = np.broadcast_to(ins[1]["scale"], (w.shape[0],)).astype(np.float32)
            y = output(out, where)
            ys, yz = quant[y]
            amin, amax = _clamp(o.FusedActivationFunction(), ys, yz, tfl, where)
            ops.append(FullyConnected(layer, x, y, np.ascontiguousarray(w),
                                      bias(ins[2] if len(ins) > 2 else None, w.shape[0], where), ws.copy(),
                                      xs, xz, ys, yz, amin, amax))
        elif kind == "ADD":
            a, b = src(ins[0], where), src(ins[1], where)
            if shapes[a] != shapes[b]:
                raise UserError(f"{where} adds shapes {shapes[a]} and {shapes[b]}: broadcasting is not supported")
            o = r.options(op, "AddOptions")
            y = output(out, where)
            ys, yz = quant[y]
            amin, amax = _clamp(o.FusedActivationFunction(), ys, yz, tfl, where)
            ops.append(Add(layer, a, b, y, *quant[a], *quant[b], ys, yz, amin, amax))
        elif kind == "MUL":         # x * LOGISTIC(x) was taken as one SiLU table at its LOGISTIC
            a, b = src(ins[0], where), src(ins[1], where)
            if shapes[a][1:] == (1, 1) and shapes[b][1:] != (1, 1):
                a, b = b, a                 # the gate second
            if shapes[b] != (shapes[a][0], 1, 1) or a == b:
                raise UserError(f"{where} multiplies {shapes[a]} by {shapes[b]}: only a map times a per-channel "
                                f"gate [1, 1, 1, C] (squeeze-and-excitation) is supported")
            y = output(out, where)
            ys, yz = quant[y]
            amin, amax = _clamp(r.options(op, "MulOptions").FusedActivationFunction(), ys, yz, tfl, where)
            ops.append(Mul(layer, a, b, y, *quant[a], *quant[b], ys, yz, amin, amax))
        elif kind == "CONCATENATION":
            o = r.options(op, "ConcatenationOptions")
            if len(ins) != 2 or o.Axis() not in (3, -1) or o.FusedActivationFunction() != tfl.ActivationFunctionType.NONE:
                raise UserError(f"{where} joins {len(ins)} tensors along axis {o.Axis()}: two tensors along the "
                                f"channels (axis 3 of NHWC), without a fused activation, are supported")
            a, b = src(ins[0], where), src(ins[1], where)
            if shapes[a][1:] != shapes[b][1:] or a == b:
                raise UserError(f"{where} joins maps of {shapes[a]} and {shapes[b]}: two distinct maps of the "
                                f"same H and W are supported")
            y = output(out, where)
            ops.append(Concat(layer, a, b, y, *quant[a], *quant[b], *quant[y]))
        elif kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            x = src(ins[0], where)
            o = r.options(op, "Pool2DOptions")
            k2, st = (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW())
            pad = _same_pads(where, shapes[x][1:], k2, st, o.Padding(), tfl)
            if o.FusedActivationFunction() != tfl.ActivationFunctionType.NONE:
                raise UserError(f"{where} has a fused activation: only pools without one are supported")
            if kind == "AVERAGE_POOL_2D" and pad != (0, 0):
                raise UserError(f"{where} pads, and TF-Lite leaves the padding out of the average while the "
                                f"device counts it: use padding='valid'")
            if act_tensor(out, where) != quant[x]:
                raise UserError(f"{where} changes the quantization: TF-Lite pools keep their input's")
            y = output(out, where, quant[x])
            cls = MaxPool2d if kind == "MAX_POOL_2D" else AvgPool2d
            ops.append(cls(layer, x, y, k2, st, pad, *quant[x]))
        elif kind == "MEAN":
            x = src(ins[0], where)
            axes = sorted(int(a) % 4 for a in r.data(ins[1], np.int32).reshape(-1))
            if axes != [1, 2]:
                raise UserError(f"{where} averages over axes {axes}: only the mean over H and W (axes 1, 2) "
                                f"is supported")
            if act_tensor(out, where) != quant[x]:
                raise UserError(f"{where} changes the quantization (scale or zero point) while averaging: only "
                                f"a mean with the same quantization in and out is supported")
            y = output(out, where, quant[x])
            shapes[y] = (shapes[x][0], 1, 1)
            ops.append(GlobalAvgPool(layer, x, y, *quant[x]))
        elif kind == "LOGISTIC" and _silu_mul(r, sg, k, ins[0]["index"], out["index"]) is not None:
            j = _silu_mul(r, sg, k, ins[0]["index"], out["index"])     # Keras' swish: x * sigmoid(x)
            silu_muls[j] = k
            mul_out = r.tensor(sg.Operators(j).OutputsAsNumpy()[0])
            x = src(ins[0], where)
            y = output(mul_out, where)
            ops.append(make_lut(mul_out["name"].split(";")[0], x, y, "silu", (), *quant[x], *quant[y]))
        elif kind in _LUT_KINDS:
            x = src(ins[0], where)
            params = (float(r.options(op, "LeakyReluOptions").Alpha()),) if kind == "LEAKY_RELU" else ()
            y = output(out, where)
            ops.append(make_lut(layer, x, y, _LUT_KINDS[kind], params, *quant[x], *quant[y]))
        elif kind in ("RESHAPE", "SQUEEZE"):
            x = src(ins[0], where)
            n = int(np.prod(out["shape"][1:])) if len(out["shape"]) > 1 else 0
            c, h, wd = shapes[x]
            if out["shape"][0] != 1 or n != c * h * wd or (len(out["shape"]) != 2 and out["shape"][1:3] != (h, wd)):
                raise UserError(f"{where} reshapes {shapes[x]} to {list(out['shape'])}: only flattening to "
                                f"[1, C*H*W] is supported")
            if act_tensor(out, where) != quant[x]:
                raise UserError(f"{where} changes the quantization: a reshape keeps it")
            tensors[out["index"]] = x
            if len(out["shape"]) == 2 and h * wd > 1:
                flat_of[x] = (c, h, wd)
        elif kind == "PAD":
            x = src(ins[0], where)
            p = r.data(ins[1], np.int32).reshape(-1, 2)
            if p.shape[0] != 4 or p[0].any() or p[3].any() or p[1, 0] != p[1, 1] or p[2, 0] != p[2, 1]:
                raise UserError(f"{where} pads {p.tolist()}: only equal padding of H and W on both sides, "
                                f"before a conv, is supported")
            tensors[out["index"]] = out["name"]
            pads[out["name"]] = (x, (int(p[1, 0]), int(p[2, 0])))
            shapes[out["name"]] = nchw(out["shape"])
            quant[out["name"]] = quant[x]
        else:
            raise UserError(f"unsupported {where}: {_advice(kind)}")
    if input_name is None:
        raise UserError(f"the float input of {path} is not quantized by a QUANTIZE operator: convert with "
                        f"inference_input_type=tf.int8")
    if out_index not in tensors:
        raise UserError(f"the output of {path} is not computed by a supported operator")
    result = tensors[out_index]
    if not ops or ops[-1].output != result:
        raise UserError(f"the output of {path} is not its last operator's output")
    if shapes[result][1:] != (1, 1):
        raise UserError(f"the output of {path} has shape {shapes[result]} (C, H, W): the device trains a "
                        f"classifier whose output is logits [N, K]; end the model with a global pool and a "
                        f"dense layer")
    used = {op.input for op in ops} | {getattr(op, "input2", None) for op in ops}
    for name, (x, _) in pads.items():
        if name in used:
            raise UserError(f"the PAD writing '{name}' is not followed by a conv: only a PAD before a conv "
                            f"is supported")
    final = {input_name: shapes[input_name]}
    for op in ops:
        final[op.output] = shapes[op.output]
    s, z = quant[input_name]
    graph = Graph(input=input_name, output=result, shapes=final, ops=ops, input_scale=s, input_zero=z,
                  n_bias_update=int(n_bias_update), train_classifier=bool(train_classifier),
                  meta={"source": "tflite", "model": os.path.basename(path)})
    check_training(graph)
    return graph


def _silu_mul(r, sg, k, x, s):
    """The index of the MUL computing x * s, where s = LOGISTIC(x) of operator k and the MUL is s's only
    reader (a SiLU, as TF-Lite writes Keras' swish), else None."""
    readers = [j for j in range(k + 1, sg.OperatorsLength()) if s in sg.Operators(j).InputsAsNumpy()]
    if len(readers) != 1:
        return None
    op = sg.Operators(readers[0])
    if r.opcode(op) != "MUL" or sorted(int(i) for i in op.InputsAsNumpy()) != sorted([x, s]):
        return None
    if r.options(op, "MulOptions").FusedActivationFunction() != r.tfl.ActivationFunctionType.NONE:
        return None
    return readers[0]


def _advice(kind):
    if kind in ("PRELU", "ELU", "GELU", "RELU", "RELU6", "RELU_N1_TO_1"):
        return ("a separate activation operator is not supported: use ReLU/ReLU6 fused into the layer before "
                "it (the converter fuses them into CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED and ADD), or "
                "LOGISTIC, TANH, HARD_SWISH or LEAKY_RELU")
    if kind in ("CONV_3D", "TRANSPOSE_CONV", "RESIZE_BILINEAR", "STRIDED_SLICE"):
        return "the device has no such layer yet: rewrite that part with the supported operators"
    return "supported are " + ", ".join(SUPPORTED_TFLITE)
