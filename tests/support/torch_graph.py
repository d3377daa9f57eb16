"""The dequantized graph of a loaded model in PyTorch: float ops whose values are the reference's
int8 results (straight-through), so autograd gives the float gradient of the same point."""
import numpy as np
import torch
import torch.nn.functional as F

from host_tools.model import graph as g


def deq(q, scale, zero):
    return (torch.as_tensor(np.asarray(q, dtype=np.float64)) - zero) * scale


def autograd_grads(ref, x, label, luts=None):
    """Gradients (real units) of the cross-entropy w.r.t. the trained tensors, by torch autograd.
    luts: output activation -> the torch function of each lookup-table op."""
    m = ref.m
    ref.forward(x)
    acts = {m.input: deq(ref.acts[m.input], m.input_scale, m.input_zero)}
    params = {}
    for op in m.ops:
        a = acts[op.in0]
        if op.type in (g.CONV2D, g.FC):
            o = m.tensors[op.bias].size
            ws = torch.as_tensor(m.tensors[op.wscale].astype(np.float64))
            w = torch.as_tensor(m.tensors[op.weight].astype(np.float64)).reshape(o, -1) * ws[:, None]
            b = torch.as_tensor(m.tensors[op.bias].astype(np.float64)) * ws * op.in0_scale
            w.requires_grad_(bool(m.trainable[op.weight]))
            b.requires_grad_(bool(m.trainable[op.bias]))
            params[op.weight], params[op.bias] = w, b
            if op.type == g.CONV2D:
                c, h, ww = m.acts[op.in0][:3]
                y = F.conv2d(a.reshape(1, c, h, ww), w.reshape(o, c // op.groups, *op.kernel), b,
                             stride=op.stride, padding=op.padding, groups=op.groups)[0]
            else:
                y = F.linear(a.reshape(-1), w, b)
        elif op.type == g.ADD:
            y = a + acts[op.in1]
        elif op.type == g.MAXPOOL2D:
            y = F.max_pool2d(a[None], op.kernel, op.stride, op.padding)[0]
        elif op.type == g.LUT:
            y = luts[op.out](a)
        elif op.type == g.MUL:
            y = a * acts[op.in1]
        elif op.type == g.CONCAT:
            y = torch.cat([a, acts[op.in1]])
        elif op.type == g.AVGPOOL2D:
            y = F.avg_pool2d(a[None], op.kernel, op.stride, op.padding, count_include_pad=True)[0]
        else:
            y = a.mean(dim=(1, 2), keepdim=True)
        last = op.out == m.output           # the loss reads the unclamped logits (ref.logits)
        if op.type not in (g.AVGPOOL, g.MAXPOOL2D, g.AVGPOOL2D, g.CONCAT) and not last:
            lo = (op.act_min - op.out_zero) * op.out_scale
            hi = (op.act_max - op.out_zero) * op.out_scale
            y = torch.clamp(y, lo, hi)
        q = (deq(ref.logits, op.out_scale, 0) if last else deq(ref.acts[op.out], op.out_scale, op.out_zero)).reshape(y.shape)
        acts[op.out] = q + (y - y.detach())       # value of the int8 graph, gradient of the float op
    logits = acts[m.output].reshape(1, -1)
    loss = F.cross_entropy(logits, torch.tensor([label]))
    trained = [t for t, p in params.items() if m.trainable[t]]
    grads = torch.autograd.grad(loss, [params[t] for t in trained], allow_unused=True)
    return {t: (gr.numpy() if gr is not None else np.zeros(params[t].shape)) for t, gr in zip(trained, grads)}
