"""Reorder a conv's output channels in a .mct file without changing what the model computes.

The format trains the FIRST output channels of a partially trained conv. Putting the channels one
wants trained first (here: the largest weights) is a permutation of the conv's output channels,
carried through to every reader of its output (depthwise convs, pools and lookup-table
activations pass it on; a regular conv or the classifier permutes its input channels). Integer arithmetic: the forward pass is unchanged
bit for bit. A grouped or depthwise conv, or one whose output reaches an add (a residual) or the
logits, is not reordered.
"""
import struct
import zlib
from typing import Optional

import numpy as np

from host_tools.model import graph as g
from host_tools.model import mct_format as fmt

# output channel c reads input channel c only: a permutation passes through
PER_CHANNEL_TYPES = (g.AVGPOOL, g.MAXPOOL2D, g.AVGPOOL2D, g.LUT)


def magnitude_order(model: fmt.Model, conv_op: int) -> np.ndarray:
    """Output channels of op conv_op, largest L1 norm of the real weights first."""
    op = model.ops[conv_op]
    o = model.tensors[op.bias].size
    w = np.abs(model.tensors[op.weight].reshape(o, -1).astype(np.float64)).sum(axis=1)
    return np.argsort(-w * model.tensors[op.wscale], kind="stable")


def reorder(data: bytes, conv_op: int, perm) -> Optional[bytes]:
    """The file with op conv_op's output channels in the order `perm` (new channel j = old perm[j]),
    or None where the permutation cannot be carried through (see the module docstring)."""
    m = fmt.load(data)
    tensors = {}                                   # tensor index -> new array

    def per_channel(op):
        for t in (op.weight, op.bias, op.mult, op.shift, op.wscale):
            arr = tensors.get(t, m.tensors[t])
            tensors[t] = arr.reshape(len(perm), -1)[perm].reshape(-1)

    def readers(a):
        if a == m.output:
            return None
        out = []
        for k, op in enumerate(m.ops):
            if op.in0 == a or op.in1 == a:
                if op.type in (g.ADD, g.CONCAT, g.MUL):
                    return None
                out.append(k)
        return out

    def carry(a) -> bool:
        ks = readers(a)
        if ks is None:
            return False
        for k in ks:
            op = m.ops[k]
            c_in = m.acts[op.in0][0]
            if op.type in PER_CHANNEL_TYPES:
                if not carry(op.out):
                    return False
            elif op.type == g.CONV2D and op.groups == 1:
                o = m.tensors[op.bias].size
                w = m.tensors[op.weight].reshape(o, c_in, -1)
                tensors[op.weight] = w[:, perm].reshape(-1)
            elif op.type == g.CONV2D and op.groups == c_in == m.tensors[op.bias].size:
                per_channel(op)                    # depthwise: channel c reads channel c
                if not carry(op.out):
                    return False
            elif op.type == g.FC:
                c, h, w_ = m.acts[op.in0][:3]
                o = m.tensors[op.bias].size
                tensors[op.weight] = m.tensors[op.weight].reshape(o, c, h * w_)[:, perm].reshape(-1)
            else:
                return False
        return True

    op = m.ops[conv_op]
    if op.type != g.CONV2D or sorted(perm) != list(range(m.tensors[op.bias].size)):
        raise ValueError("perm must be a permutation of a conv's output channels")
    if op.groups != 1:
        return None                                # a grouped conv reads its own input channels
    perm = np.asarray(perm)
    per_channel(op)
    if not carry(op.out):
        return None
    out = bytearray(data)
    for t, arr in tensors.items():
        off = m.tensor_offsets[t]
        raw = np.ascontiguousarray(arr, dtype=m.tensors[t].dtype).astype(m.tensors[t].dtype.newbyteorder("<"))
        out[off:off + raw.nbytes] = raw.tobytes()
    struct.pack_into("<I", out, 12, zlib.crc32(out[16:]) & 0xFFFFFFFF)
    return bytes(out)
