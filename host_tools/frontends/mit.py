"""The MIT on-device-training int8 models (mcunet-5fps, mbv2-w0.35, proxyless-w0.3) -> Graph.

Each folder holds `model.json` (structure and scalars; arrays as {"npz": KEY, ...}) and
`weights.npz`; the arithmetic is in shared/models/mit/README.md. The mapping is exact, no
re-quantization:

- every conv keeps its int8 weight, int32 bias, w_scales, x_scale/x_zero, y_scale/y_zero; padding
  (k-1)//2 with the padded value x_zero (our Conv2d pads with x_zero, i.e. real zero); the clamp is
  always [-128, 127]: on activated layers y_zero = -128 and y_scale = 6/255 (or less), so that clamp
  *is* ReLU6; linear layers (pointwise2, classifier) clamp to the int8 range too.
- residual: Add(a = block input with the residual's x_scale/x_zero, b = pointwise2's output with its
  y_scale/y_zero, y = the residual's y_scale/y_zero).
- global average pool: one scale/zero in and out (the last block's output quantization).
- classifier: the 1x1 conv on the pooled map -> FullyConnected with weight [K, C].
- input: int8 = pixel - 128, input_scale = 1/127.5, input_zero = 0 (first_conv's x_scale/x_zero).

`mit_reference_forward` computes the README's arithmetic directly from model.json in float64
(round half to even), independently of the Graph, to check the loader and count the one-step
differences of a fixed-point engine.
"""
import json
import os
from typing import Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F

from host_tools.errors import UserError
from host_tools.model.graph import Add, Conv2d, FullyConnected, GlobalAvgPool, Graph

__all__ = ["load_mit", "mit_reference_forward", "load_mit_json", "MIT_MODELS"]

MIT_MODELS = ("mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3")


def load_mit_json(path):
    """(model dict with arrays substituted, path) from a model folder."""
    if not os.path.isdir(path):
        raise UserError(f"{path} is not a folder: give the folder holding model.json and weights.npz")
    mj, wz = os.path.join(path, "model.json"), os.path.join(path, "weights.npz")
    for p in (mj, wz):
        if not os.path.exists(p):
            raise UserError(f"{p} is missing: a MIT int8 model folder holds model.json and weights.npz")
    with open(mj) as f:
        model = json.load(f)
    with np.load(wz) as npz:
        arrays = {k: npz[k] for k in npz.files}

    def subst(obj):
        if isinstance(obj, dict):
            if "npz" in obj and "dtype" in obj:
                a = arrays[obj["npz"]].astype(obj["dtype"])
                return a.reshape(obj["shape"])
            return {k: subst(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [subst(v) for v in obj]
        return obj

    model = subst(model)
    for key in ("first_conv", "blocks", "classifier"):
        if key not in model:
            raise UserError(f"{mj} has no '{key}': not a MIT int8 model description")
    if model.get("feature_mix"):
        raise UserError(f"{mj} has a feature_mix layer, which this loader does not handle")
    return model


def _conv_list(model):
    """[(name, conv dict)] and the residual structure, in forward order."""
    convs = [("first_conv", model["first_conv"])]
    for i, b in enumerate(model["blocks"]):
        if b.get("se"):
            raise UserError(f"block {i} has a squeeze-excite layer, which is not supported")
        for k in ("pointwise1", "depthwise", "pointwise2"):
            if b.get(k):
                convs.append((f"blocks.{i}.{k}", b[k]))
    return convs


def _mk_conv(name, inp, out, c):
    p = c["params"]
    k = tuple(int(v) for v in c["kernel_size"])
    s = int(c["stride"])
    return Conv2d(name=name, input=inp, output=out, weight=np.ascontiguousarray(p["weight"], dtype=np.int8),
                  bias=np.ascontiguousarray(p["bias"], dtype=np.int32),
                  w_scales=np.ascontiguousarray(p["w_scales"], dtype=np.float32), stride=(s, s),
                  padding=((k[0] - 1) // 2, (k[1] - 1) // 2), groups=int(c["groups"]),
                  x_scale=float(p["x_scale"]), x_zero=int(p["x_zero"]), y_scale=float(p["y_scale"]),
                  y_zero=int(p["y_zero"]), act_min=-128, act_max=127)


def load_mit(path: str, num_classes: Optional[int] = None, n_bias_update: int = 0,
             train_classifier: bool = True) -> Graph:
    """Load a MIT int8 model folder as a Graph (exact; see the module docstring).

    num_classes=K replaces the 1000-way ImageNet classifier by a fresh K-way FullyConnected for
    transfer learning: weights 0 and bias 0 (all logits start equal, the device learns them);
    w_scales = the median of the old classifier's w_scales for every row (a typical trained weight
    step, so that QAS-scaled updates have the magnitude the paper's models train with); input
    quantization = the pooled features'; output y_scale = 8/128, y_zero = 0, i.e. logits in
    [-8, +7.94] (enough for a softmax to reach >99.9 % confidence without saturating int8).
    """
    m = load_mit_json(path)
    ops = []
    shapes: Dict[str, tuple] = {}
    fc0 = m["first_conv"]
    size = int(fc0["in_shape"])
    shapes["input"] = (int(fc0["in_channel"]), size, size)

    def add_conv(name, inp, c):
        out = name
        ops.append(_mk_conv(name, inp, out, c))
        shapes[out] = (int(c["out_channel"]), int(c["out_shape"]), int(c["out_shape"]))
        return out

    cur = add_conv("first_conv", "input", fc0)
    for i, b in enumerate(m["blocks"]):
        if b.get("se"):
            raise UserError(f"{path}: block {i} has a squeeze-excite layer, which is not supported")
        block_in = cur
        for k in ("pointwise1", "depthwise", "pointwise2"):
            if b.get(k):
                cur = add_conv(f"blocks.{i}.{k}", cur, b[k])
        r = b.get("residual")
        if r:
            rp = r["params"]
            pw2 = b["pointwise2"]["params"]
            name = f"blocks.{i}.add"
            ops.append(Add(name=name, input=block_in, input2=cur, output=name,
                           a_scale=float(rp["x_scale"]), a_zero=int(rp["x_zero"]),
                           b_scale=float(pw2["y_scale"]), b_zero=int(pw2["y_zero"]),
                           y_scale=float(rp["y_scale"]), y_zero=int(rp["y_zero"])))
            shapes[name] = shapes[cur]
            cur = name
    last = ops[-1]
    s, z = (last.y_scale, last.y_zero)
    ops.append(GlobalAvgPool(name="pool", input=cur, output="pool", scale=s, zero=z))
    shapes["pool"] = (shapes[cur][0], 1, 1)

    cl = m["classifier"]
    p = cl["params"]
    c_in = shapes["pool"][0]
    if num_classes is None:
        w = np.asarray(p["weight"], dtype=np.int8).reshape(int(cl["out_channel"]), -1)
        if w.shape[1] != c_in:
            raise UserError(f"{path}: the classifier reads {w.shape[1]} features, the pool gives {c_in}")
        fc = FullyConnected(name="classifier", input="pool", output="classifier", weight=w,
                            bias=np.asarray(p["bias"], dtype=np.int32),
                            w_scales=np.asarray(p["w_scales"], dtype=np.float32),
                            x_scale=float(p["x_scale"]), x_zero=int(p["x_zero"]),
                            y_scale=float(p["y_scale"]), y_zero=int(p["y_zero"]))
    else:
        k = int(num_classes)
        if k < 2 or k > 100000:
            raise UserError(f"--num-classes {num_classes}: give a number of classes >= 2")
        med = float(np.median(np.asarray(p["w_scales"], dtype=np.float64)))
        fc = FullyConnected(name="classifier", input="pool", output="classifier",
                            weight=np.zeros((k, c_in), np.int8), bias=np.zeros(k, np.int32),
                            w_scales=np.full(k, med, np.float32), x_scale=float(p["x_scale"]),
                            x_zero=int(p["x_zero"]), y_scale=8.0 / 128, y_zero=0)
    ops.append(fc)
    shapes["classifier"] = (fc.weight.shape[0], 1, 1)

    n_conv = sum(isinstance(op, Conv2d) for op in ops)
    if not 0 <= n_bias_update <= n_conv:
        raise UserError(f"n_bias_update={n_bias_update} but {path} has {n_conv} conv layers: use 0..{n_conv}")
    name = os.path.basename(os.path.normpath(path))
    return Graph(input="input", output="classifier", shapes=shapes, ops=ops,
                 input_scale=float(fc0["params"]["x_scale"]), input_zero=int(fc0["params"]["x_zero"]),
                 n_bias_update=int(n_bias_update), train_classifier=bool(train_classifier),
                 meta={"source": "mit-int8", "model": name,
                       "classifier": "original" if num_classes is None else f"new {num_classes}-way"})


# ----------------------------------------------------------------------------------------------
# float64 reference of the README's arithmetic, straight from model.json

def _mit_conv(x, c):
    """x: float64 tensor of int8 values [N, C, H, W]."""
    p = c["params"]
    k = tuple(int(v) for v in c["kernel_size"])
    pad = ((k[0] - 1) // 2, (k[1] - 1) // 2)
    w = torch.from_numpy(np.asarray(p["weight"], dtype=np.float64))
    if w.dim() == 2:
        w = w[:, :, None, None]
    acc = F.conv2d(x - float(p["x_zero"]), w, torch.from_numpy(np.asarray(p["bias"], dtype=np.float64)),
                   int(c.get("stride", 1)), pad, 1, int(c.get("groups", 1)))
    scale = float(p["x_scale"]) * np.asarray(p["w_scales"], dtype=np.float64) / float(p["y_scale"])
    y = torch.round(acc * torch.from_numpy(scale).view(1, -1, 1, 1)) + float(p["y_zero"])
    return y.clamp(-128, 127)


def mit_reference_forward(path: str, x_int8: np.ndarray, keep_all: bool = False):
    """The MIT arithmetic in float64 (round half to even) on int8 input [N, 3, H, W] (pixel - 128).
    Returns int8 logits [N, 1000], or with keep_all a dict of every layer's int8 output named as in
    load_mit ('first_conv', 'blocks.i.depthwise', 'blocks.i.add', 'pool', 'classifier', ...)."""
    m = load_mit_json(path)
    x = torch.from_numpy(np.asarray(x_int8, dtype=np.float64))
    if x.dim() == 3:
        x = x[None]
    outs = {}
    x = outs["first_conv"] = _mit_conv(x, m["first_conv"])
    for i, b in enumerate(m["blocks"]):
        inp = x
        for k in ("pointwise1", "depthwise", "pointwise2"):
            if b.get(k):
                x = outs[f"blocks.{i}.{k}"] = _mit_conv(x, b[k])
        if b.get("residual"):
            rp, cp = b["residual"]["params"], b["pointwise2"]["params"]
            y = torch.round(((inp - rp["x_zero"]) * rp["x_scale"] + (x - cp["y_zero"]) * cp["y_scale"])
                            / rp["y_scale"]) + rp["y_zero"]
            x = outs[f"blocks.{i}.add"] = y.clamp(-128, 127)
    x = outs["pool"] = torch.round(x.mean(dim=(2, 3), keepdim=True))
    x = outs["classifier"] = _mit_conv(x, dict(m["classifier"], stride=1, groups=1))
    if keep_all:
        return {k: v.numpy().astype(np.int8) for k, v in outs.items()}
    return outs["classifier"].numpy().astype(np.int8).reshape(x.shape[0], -1)
