"""Random quantized graphs for testing the core against the reference (any kernel, stride,
padding, groups and zero point), built directly at the Graph level."""
import numpy as np

from host_tools.model import graph as g
from host_tools.model.layout import to_device


def _conv(rng, name, inp, out, c_in, h, w, c_out, k, stride, pad, groups, x_scale, x_zero, relu):
    cpg = c_in // groups
    weight = rng.integers(-127, 128, size=(c_out, cpg, k, k), dtype=np.int64).astype(np.int8)
    w_scales = rng.uniform(0.002, 0.02, size=c_out).astype(np.float32)
    bias = rng.integers(-2000, 2000, size=c_out).astype(np.int32)
    # output scale so that the accumulator range maps onto about the int8 range
    fan = cpg * k * k
    y_scale = float(x_scale * np.median(w_scales) * 128 * np.sqrt(fan) * 0.3)
    y_zero = -128 if relu else int(rng.integers(-20, 20))
    oh = (h + 2 * pad - k) // stride + 1
    ow = (w + 2 * pad - k) // stride + 1
    op = g.Conv2d(name, inp, out, weight, bias, w_scales, (stride, stride), (pad, pad), groups,
                  x_scale, x_zero, y_scale, y_zero, act_min=y_zero if relu else -128, act_max=127)
    return op, (c_out, oh, ow), y_scale, y_zero


def random_graph(rng, n_bias_update=None, with_add=True, size=None, classes=None, pools=True, weights=True):
    c = int(rng.integers(1, 5))
    h = w = int(size or rng.integers(5, 12))
    shapes = {"x": (c, h, w)}
    x_scale, x_zero = 1 / 255, int(rng.integers(-128, 0))
    ops = []
    cur, cs, zs = "x", x_scale, x_zero
    n_layers = int(rng.integers(2, 5))
    for i in range(n_layers):
        c_in, hh, ww = shapes[cur]
        k = int(rng.choice([1, 3, 5])) if hh >= 5 else 1
        stride = int(rng.choice([1, 2]))
        pad = int(rng.integers(0, k // 2 + 1))
        depthwise = i > 0 and rng.random() < 0.4
        groups = c_in if depthwise else (2 if c_in % 2 == 0 and rng.random() < 0.3 else 1)
        c_out = c_in if depthwise else int(rng.integers(2, 9)) * groups
        op, shape, cs2, zs2 = _conv(rng, f"conv{i}", cur, f"a{i}", c_in, hh, ww, c_out, k, stride, pad,
                                    groups, cs, zs, relu=rng.random() < 0.6)
        ops.append(op)
        shapes[f"a{i}"] = shape
        prev, prev_scale, prev_zero = cur, cs, zs
        cur, cs, zs = f"a{i}", cs2, zs2
        if pools and shape[1] >= 3 and rng.random() < 0.35:
            k = int(rng.choice([2, 3]))
            st = int(rng.choice([1, 2]))
            pd = int(rng.integers(0, k // 2 + 1))
            cls = g.MaxPool2d if rng.random() < 0.5 else g.AvgPool2d
            c_, h_, w_ = shape
            pshape = (c_, (h_ + 2 * pd - k) // st + 1, (w_ + 2 * pd - k) // st + 1)
            ops.append(cls(f"pool{i}", cur, f"p{i}", (k, k), (st, st), (pd, pd), cs, zs))
            shapes[f"p{i}"] = pshape
            cur, shape = f"p{i}", pshape
            continue
        if with_add and shapes[prev] == shape and rng.random() < 0.7:
            y_scale = float(max(prev_scale, cs) * rng.uniform(1.0, 2.0))
            yz = int(rng.integers(-10, 10))
            ops.append(g.Add(f"add{i}", prev, cur, f"s{i}", prev_scale, prev_zero, cs, zs, y_scale, yz))
            shapes[f"s{i}"] = shape
            cur, cs, zs = f"s{i}", y_scale, yz
    c_last, hh, ww = shapes[cur]
    if rng.random() < 0.6:
        ops.append(g.GlobalAvgPool("pool", cur, "pooled", cs, zs))
        shapes["pooled"] = (c_last, 1, 1)
        cur = "pooled"
    n_in = int(np.prod(shapes[cur]))
    n_cls = int(classes or rng.integers(2, 11))
    w_scales = rng.uniform(0.005, 0.03, size=n_cls).astype(np.float32)
    fc = g.FullyConnected("fc", cur, "logits",
                          rng.integers(-127, 128, size=(n_cls, n_in)).astype(np.int8),
                          rng.integers(-500, 500, size=n_cls).astype(np.int32), w_scales,
                          cs, zs, float(cs * np.median(w_scales) * 128 * np.sqrt(n_in) * 0.3),
                          int(rng.integers(-10, 10)))
    ops.append(fc)
    shapes["logits"] = (n_cls, 1, 1)
    n_convs = sum(op.kind == g.CONV2D for op in ops)
    if n_bias_update is None:
        n_bias_update = int(rng.integers(0, n_convs + 1))
    weight_update = {}
    if weights:
        for i in range(n_convs):
            if rng.random() < 0.5:
                weight_update[i] = float(rng.choice([0.125, 0.25, 0.5, 1.0]))
    return g.Graph("x", "logits", shapes, ops, x_scale, x_zero, min(n_bias_update, n_convs), True,
                   weight_update=weight_update)


def random_model(seed, graph_attrs=None, **kw):
    """(rng, file bytes, loaded model) of random_graph(rng, **kw) with graph_attrs set on the graph
    (an update rule, a backward, ...); rng continues after the graph for the inputs."""
    from host_tools.model import mct_format
    rng = np.random.default_rng(seed)
    graph = random_graph(rng, **kw)
    for name, value in (graph_attrs or {}).items():
        setattr(graph, name, value)
    data = mct_format.to_bytes(graph)
    return rng, data, mct_format.load(data)


def random_input(rng, model):
    """One int8 input for a loaded model, in the device's order (drawn as a (C, H, W) tensor)."""
    return to_device(rng.integers(-128, 128, size=model.input_shape).astype(np.int8))


def random_block_graph(rng, n_blocks=None, size=None, width=None):
    """A MobileNetV2-like graph: a stem conv, inverted-residual blocks (pointwise expand with a
    clamp, depthwise kxk stride 1 or 2 with a clamp, linear pointwise project, a residual add where
    the shapes allow), global average pool, classifier; a random sparse scheme. width: the stem's
    output channels (the first block's input)."""
    c = int(rng.integers(1, 4))
    h = w = int(size or rng.integers(6, 13))
    shapes = {"x": (c, h, w)}
    x_scale, x_zero = 1 / 255, int(rng.integers(-128, 0))
    ops = []
    c0 = int(width or rng.integers(2, 7))
    op, shape, cs, zs = _conv(rng, "stem", "x", "a", c, h, w, c0, 3, int(rng.choice([1, 2])), 1, 1,
                              x_scale, x_zero, relu=True)
    ops.append(op)
    shapes["a"] = shape
    cur = "a"
    for b in range(int(n_blocks or rng.integers(1, 4))):
        c_in, hh, ww = shapes[cur]
        e = c_in * int(rng.integers(2, 5))
        k = int(rng.choice([3, 5])) if hh >= 5 else 3
        stride = int(rng.choice([1, 2])) if hh >= 4 else 1
        c_out = c_in if rng.random() < 0.6 else int(rng.integers(2, 9))
        block_in, in_scale, in_zero = cur, cs, zs
        if b == 0 and rng.random() < 0.3:
            e, expanded = c_in, cur        # no expansion: the stem feeds the depthwise conv (MobileNetV2's block 0)
        else:
            op, s1, cs, zs = _conv(rng, f"b{b}.pw1", cur, f"b{b}.e", c_in, hh, ww, e, 1, 1, 0, 1, cs, zs, relu=True)
            ops.append(op)
            shapes[f"b{b}.e"] = s1
            expanded = f"b{b}.e"
        op, s2, cs, zs = _conv(rng, f"b{b}.dw", expanded, f"b{b}.d", e, hh, ww, e, k, stride, k // 2, e, cs, zs,
                               relu=True)
        ops.append(op)
        shapes[f"b{b}.d"] = s2
        op, s3, cs, zs = _conv(rng, f"b{b}.pw2", f"b{b}.d", f"b{b}.p", e, *s2[1:], c_out, 1, 1, 0, 1, cs, zs,
                               relu=False)
        ops.append(op)
        shapes[f"b{b}.p"] = s3
        cur = f"b{b}.p"
        if shapes[block_in] == s3:
            y_scale = float(max(in_scale, cs) * rng.uniform(1.0, 2.0))
            yz = int(rng.integers(-10, 10))
            ops.append(g.Add(f"b{b}.add", block_in, cur, f"b{b}.s", in_scale, in_zero, cs, zs, y_scale, yz))
            shapes[f"b{b}.s"] = s3
            cur, cs, zs = f"b{b}.s", y_scale, yz
    c_last = shapes[cur][0]
    ops.append(g.GlobalAvgPool("pool", cur, "pooled", cs, zs))
    shapes["pooled"] = (c_last, 1, 1)
    n_cls = int(rng.integers(2, 11))
    w_scales = rng.uniform(0.005, 0.03, size=n_cls).astype(np.float32)
    ops.append(g.FullyConnected("fc", "pooled", "logits",
                                rng.integers(-127, 128, size=(n_cls, c_last)).astype(np.int8),
                                rng.integers(-500, 500, size=n_cls).astype(np.int32), w_scales,
                                cs, zs, float(cs * np.median(w_scales) * 128 * np.sqrt(c_last) * 0.3),
                                int(rng.integers(-10, 10))))
    shapes["logits"] = (n_cls, 1, 1)
    n_convs = sum(op.kind == g.CONV2D for op in ops)
    weight_update = {i: float(rng.choice([0.125, 0.25, 0.5, 1.0])) for i in range(n_convs) if rng.random() < 0.4}
    return g.Graph("x", "logits", shapes, ops, x_scale, x_zero, int(rng.integers(0, n_convs + 1)), True,
                   weight_update=weight_update)
