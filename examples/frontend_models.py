"""One small Fashion-MNIST classifier in every format `host_tools convert` reads, for the docs' and
the tests' front-end examples.

FrontNet (1x28x28 -> 10 classes: conv, depthwise conv, pointwise conv, a residual block, global
average pool, linear) is trained briefly in PyTorch, then written as:

  frontnet.pt         state_dict: examples/frontend_models.py:FrontNet (torch.fx) or
                      :CheckedFrontNet (its forward() checks the input shape: torch.export)
  frontnet.pt2        an ExportedProgram (torch.export.save) of CheckedFrontNet
  frontnet_ts.pt      a TorchScript archive (torch.jit.trace)
  frontnet.onnx       ONNX opset 17 as tf2onnx writes a Keras model: NHWC input and a Transpose,
                      MatMul + Add for the dense layer, a final Softmax (written with onnx.helper)
  frontnet.tflite     fully int8 TF-Lite, quantized as the TF-Lite converter does (per-channel
                      symmetric weights, asymmetric per-tensor activations, int8 input and output,
                      a final SOFTMAX), written with the flatbuffer schema (examples/tflite_writer.py)
  calib.npz, val.npz  x: float32 [N, 1, 28, 28] in [0, 1], y: labels (Fashion-MNIST train / test)
  train.npz           a few hundred training images for `host_tools check` / training

Fashion-MNIST comes from Debian's dataset-fashion-mnist package; without it, random images with
random labels are used (the formats are the same, the accuracy meaningless).

    python examples/frontend_models.py build/frontends
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


class FrontNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.dw, self.bn2 = nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8)
        self.pw, self.bn3 = nn.Conv2d(8, 16, 1), nn.BatchNorm2d(16)
        self.res, self.bn4 = nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)          # 8 x 14 x 14
        x = F.relu6(self.bn2(self.dw(x)))
        x = F.max_pool2d(F.relu(self.bn3(self.pw(x))), 2)             # 16 x 7 x 7
        x = F.relu(x + self.bn4(self.res(x)))
        return self.fc(x.mean((2, 3)))


class CheckedFrontNet(FrontNet):
    """FrontNet whose forward() checks its input, as many published models do: torch.fx cannot trace
    it (the check reads the input's shape), torch.export can."""

    def forward(self, x):
        if x.dim() != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(f"FrontNet takes [N, 1, 28, 28] images, not {tuple(x.shape)}")
        return super().forward(x)


LAYERS = (("conv1", "bn1"), ("dw", "bn2"), ("pw", "bn3"), ("res", "bn4"))


def load_data(n_train=3000, n_val=500, seed=0):
    sys.path.insert(0, os.path.dirname(HERE))
    from host_tools.datasets import FASHION_MNIST_DIR, load_fashion_mnist
    rng = np.random.default_rng(seed)
    if os.path.isdir(FASHION_MNIST_DIR):
        xs, ys = load_fashion_mnist("train")
        xv, yv = load_fashion_mnist("test")
        i, j = rng.choice(len(xs), n_train, replace=False), rng.choice(len(xv), n_val, replace=False)
        f = lambda a: (a.astype(np.float32) / 255)[:, None]     # noqa: E731
        return f(xs[i]), ys[i].astype(np.int64), f(xv[j]), yv[j].astype(np.int64)
    print(f"note: {FASHION_MNIST_DIR} is missing (apt-get install dataset-fashion-mnist): random images")
    return (rng.random((n_train, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, n_train),
            rng.random((n_val, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, n_val))


def train(x, y, epochs=2, seed=0):
    torch.manual_seed(seed)
    model = FrontNet()
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        for k in range(0, len(xt), 64):
            idx = perm[k:k + 64]
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


# ----------------------------------------------------------------------------------------------
# float weights with batch norm folded (what the ONNX and TF-Lite files hold)

def folded(model):
    out = {}
    for conv, bn in LAYERS:
        c, b = getattr(model, conv), getattr(model, bn)
        k = (b.weight / torch.sqrt(b.running_var + b.eps)).detach().double()
        out[conv] = ((c.weight.detach().double() * k.view(-1, 1, 1, 1)).numpy(),
                     ((c.bias.detach().double() - b.running_mean.double()) * k + b.bias.detach().double()).numpy())
    out["fc"] = (model.fc.weight.detach().double().numpy(), model.fc.bias.detach().double().numpy())
    return out


def folded_forward(p, x):
    """Every tensor the int8 file quantizes, in float64 (NCHW), from the folded weights."""
    conv = lambda n, t, g=1: F.conv2d(t, torch.from_numpy(p[n][0]), torch.from_numpy(p[n][1]),  # noqa: E731
                                      padding=p[n][0].shape[2] // 2, groups=g)
    t = {"input": torch.from_numpy(np.asarray(x, np.float64))}
    t["conv1"] = F.relu(conv("conv1", t["input"]))
    t["pool1"] = F.max_pool2d(t["conv1"], 2)
    t["dw"] = F.relu6(conv("dw", t["pool1"], 8))
    t["pw"] = F.relu(conv("pw", t["dw"]))
    t["pool2"] = F.max_pool2d(t["pw"], 2)
    t["res"] = conv("res", t["pool2"])
    t["add"] = F.relu(t["pool2"] + t["res"])
    t["mean"] = t["add"].mean((2, 3), keepdim=True)
    t["fc"] = t["mean"].flatten(1) @ torch.from_numpy(p["fc"][0]).T + torch.from_numpy(p["fc"][1])
    return {k: v.numpy() for k, v in t.items()}


# ----------------------------------------------------------------------------------------------
# ONNX, as tf2onnx writes a Keras model

def write_onnx(model, path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    inits, nodes = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), name))
        return name

    def node(op, ins, name, **attrs):
        nodes.append(helper.make_node(op, ins, [name], name=name, **attrs))
        return name

    def conv_bn(x, conv, bn, group=1):
        c, b = getattr(model, conv), getattr(model, bn)
        y = node("Conv", [x, init(f"{conv}/kernel", c.weight.detach()), init(f"{conv}/bias", c.bias.detach())],
                 f"{conv}/Conv2D", pads=[c.padding[0]] * 4, group=group, kernel_shape=list(c.kernel_size))
        return node("BatchNormalization", [y] + [init(f"{bn}/{k}", v.detach()) for k, v in
                                                  (("gamma", b.weight), ("beta", b.bias),
                                                   ("moving_mean", b.running_mean),
                                                   ("moving_variance", b.running_var))],
                    f"{bn}/FusedBatchNormV3", epsilon=b.eps)

    x = node("Transpose", ["input_1"], "input_1/transpose", perm=[0, 3, 1, 2])
    x = node("Relu", [conv_bn(x, "conv1", "bn1")], "conv1/Relu")
    x = node("MaxPool", [x], "pool1/MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    x = node("Clip", [conv_bn(x, "dw", "bn2", 8), init("relu6/min", 0.0), init("relu6/max", 6.0)], "dw/Relu6")
    x = node("Relu", [conv_bn(x, "pw", "bn3")], "pw/Relu")
    x = node("MaxPool", [x], "pool2/MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    x = node("Relu", [node("Add", [x, conv_bn(x, "res", "bn4")], "add/add")], "add/Relu")
    x = node("GlobalAveragePool", [x], "gap/Mean")
    x = node("Flatten", [x], "flatten/Reshape")
    x = node("MatMul", [x, init("dense/kernel", model.fc.weight.detach().T)], "dense/MatMul")
    x = node("Add", [x, init("dense/bias", model.fc.bias.detach())], "dense/BiasAdd")
    node("Softmax", [x], "dense/Softmax", axis=1)
    graph = helper.make_graph(nodes, "frontnet", [helper.make_tensor_value_info("input_1", TensorProto.FLOAT,
                                                                                ["N", 28, 28, 1])],
                              [helper.make_tensor_value_info("dense/Softmax", TensorProto.FLOAT, ["N", 10])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="frontend_models.py")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)


# ----------------------------------------------------------------------------------------------
# TF-Lite int8, quantized as the TF-Lite converter does

def _act_q(lo, hi):
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = (hi - lo) / 255.0
    return scale, int(np.clip(round(-128 - lo / scale), -128, 127))


def write_tflite(model, calib, path):
    sys.path.insert(0, HERE)
    from tflite_writer import TFLiteWriter
    p = folded(model)
    acts = folded_forward(p, calib)
    q = {"input": (1 / 255, -128)}
    for name in ("conv1", "dw", "pw", "res", "add", "fc"):
        q[name] = _act_q(acts[name].min(), acts[name].max())
    q["pool1"], q["pool2"], q["mean"] = q["conv1"], q["pw"], q["add"]
    w = TFLiteWriter()
    ids = {}

    def act(name, shape):
        ids[name] = w.tensor(name, shape, "int8", *q[name])
        return ids[name]

    def weights(name, wt, b, x_scale, depthwise=False):
        flat = np.abs(wt.reshape(len(wt), -1)).max(1)
        ws = np.where(flat > 0, flat / 127, 1 / 127).astype(np.float32)
        wq = np.clip(np.round(wt / ws.reshape(-1, *[1] * (wt.ndim - 1))), -127, 127).astype(np.int8)
        bq = np.round(b / (ws.astype(np.float64) * x_scale)).astype(np.int32)
        if wt.ndim == 4:
            wq = wq.transpose(1, 2, 3, 0) if depthwise else wq.transpose(0, 2, 3, 1)   # [1,kh,kw,C] / OHWI
        wid = w.tensor(f"{name}/weights", wq.shape, "int8", ws, np.zeros(len(ws)), wq, axis=3 if depthwise else 0)
        bid = w.tensor(f"{name}/bias", bq.shape, "int32", ws.astype(np.float64) * x_scale, np.zeros(len(ws)), bq)
        return wid, bid

    x = w.tensor("input", [1, 28, 28, 1], "int8", *q["input"])
    shp = lambda n: [1] + list(acts[n].shape[2:]) + [acts[n].shape[1]]  # noqa: E731
    wid, bid = weights("conv1", *p["conv1"], q["input"][0])
    w.op("CONV_2D", [x, wid, bid], [act("conv1", shp("conv1"))], "Conv2DOptions", padding="SAME", act="RELU")
    w.op("MAX_POOL_2D", [ids["conv1"]], [act("pool1", shp("pool1"))], "Pool2DOptions", filter=(2, 2), stride=(2, 2))
    wid, bid = weights("dw", *p["dw"], q["pool1"][0], depthwise=True)
    w.op("DEPTHWISE_CONV_2D", [ids["pool1"], wid, bid], [act("dw", shp("dw"))], "DepthwiseConv2DOptions",
         padding="SAME", act="RELU6")
    wid, bid = weights("pw", *p["pw"], q["dw"][0])
    w.op("CONV_2D", [ids["dw"], wid, bid], [act("pw", shp("pw"))], "Conv2DOptions", padding="SAME", act="RELU")
    w.op("MAX_POOL_2D", [ids["pw"]], [act("pool2", shp("pool2"))], "Pool2DOptions", filter=(2, 2), stride=(2, 2))
    wid, bid = weights("res", *p["res"], q["pool2"][0])
    w.op("CONV_2D", [ids["pool2"], wid, bid], [act("res", shp("res"))], "Conv2DOptions", padding="SAME")
    w.op("ADD", [ids["pool2"], ids["res"]], [act("add", shp("add"))], "AddOptions", act="RELU")
    axes = w.tensor("mean/axes", [2], "int32", data=np.array([1, 2], np.int32))
    w.op("MEAN", [ids["add"], axes], [act("mean", [1, 1, 1, 16])], "ReducerOptions", keep_dims=True)
    new_shape = w.tensor("flatten/shape", [2], "int32", data=np.array([1, 16], np.int32))
    flat = w.tensor("flatten", [1, 16], "int8", *q["mean"])
    w.op("RESHAPE", [ids["mean"], new_shape], [flat], "ReshapeOptions", shape=[1, 16])
    # the dense layer: one weight scale for the whole tensor, as the converter writes it by default
    fw, fb = p["fc"]
    fs = np.float32(np.abs(fw).max() / 127)
    fwq = np.clip(np.round(fw / fs), -127, 127).astype(np.int8)
    fbq = np.round(fb / (np.float64(fs) * q["mean"][0])).astype(np.int32)
    fwid = w.tensor("dense/weights", fwq.shape, "int8", fs, 0, fwq)
    fbid = w.tensor("dense/bias", fbq.shape, "int32", np.float64(fs) * q["mean"][0], 0, fbq)
    w.op("FULLY_CONNECTED", [flat, fwid, fbid], [act("fc", [1, 10])], "FullyConnectedOptions")
    probs = w.tensor("softmax", [1, 10], "int8", 1 / 256, -128)
    w.op("SOFTMAX", [ids["fc"]], [probs], "SoftmaxOptions")
    w.save(path, inputs=[x], outputs=[probs])


# ----------------------------------------------------------------------------------------------

def write_all(out, n_train=3000, epochs=2, n_val=500):
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    xs, ys, xv, yv = load_data(n_train, n_val)
    model = train(xs, ys, epochs)
    with torch.no_grad():
        acc = float((model(torch.from_numpy(xv)).argmax(1).numpy() == yv).mean())
    torch.save(model.state_dict(), os.path.join(out, "frontnet.pt"))
    checked = CheckedFrontNet()
    checked.load_state_dict(model.state_dict())
    checked.eval()
    torch.export.save(torch.export.export(checked, (torch.from_numpy(xv[:2]),)), os.path.join(out, "frontnet.pt2"))
    torch.jit.trace(model, torch.from_numpy(xv[:2])).save(os.path.join(out, "frontnet_ts.pt"))
    write_onnx(model, os.path.join(out, "frontnet.onnx"))
    write_tflite(model, xs[:500], os.path.join(out, "frontnet.tflite"))
    np.savez(os.path.join(out, "calib.npz"), x=xs[:500], y=ys[:500])
    np.savez(os.path.join(out, "train.npz"), x=xs[500:800], y=ys[500:800])
    np.savez(os.path.join(out, "val.npz"), x=xv, y=yv)
    print(f"FrontNet: float top-1 {acc * 100:.1f}% on {len(xv)} test images; wrote frontnet.pt, .pt2, _ts.pt, "
          f".onnx, .tflite, calib.npz, train.npz, val.npz to {out}")
    return model


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", nargs="?", default="build/frontends")
    p.add_argument("--train-images", type=int, default=3000)
    p.add_argument("--epochs", type=int, default=2)
    a = p.parse_args(argv)
    write_all(a.out, a.train_images, a.epochs)


if __name__ == "__main__":
    main()
