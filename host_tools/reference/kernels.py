"""The integer kernels of the numpy reference, bit for bit as the C kernels (c_src/mct_*_s8.c), the
float32 sequential sum its backward passes use (see oracle.py's docstring for why sequential), and
what both backward passes share: the softmax of the unclamped logits and the clamp masks."""
import numpy as np

from host_tools.model.quant import multiply_by_quantized_multiplier as mbqm, round_half_even_div

F32 = np.float32


def conv2d_s8(x, weight, bias, mult, shift, x_zero, y_zero, act_min, act_max, stride, padding, groups):
    """x int8 [C,H,W], weight int8 [O, C/groups, kh, kw] -> int8 [O, OH, OW]."""
    z = conv2d_z(x, weight, bias, mult, shift, x_zero, stride, padding, groups)
    return np.clip(z + y_zero, act_min, act_max).astype(np.int8)


def conv2d_z(x, weight, bias, mult, shift, x_zero, stride, padding, groups):
    """The conv's requantized accumulators before the zero point and the clamp (int64 [O, OH, OW])."""
    c, h, w = x.shape
    o, cpg, kh, kw = weight.shape
    sh, sw = stride
    ph, pw = padding
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (w + 2 * pw - kw) // sw + 1
    xp = np.zeros((c, h + 2 * ph, w + 2 * pw), dtype=np.int64)   # padded with x_zero (real zero)
    xp[:, ph:ph + h, pw:pw + w] = x.astype(np.int64) - x_zero
    opg = o // groups
    acc = np.zeros((o, oh, ow), dtype=np.int64)
    wt = weight.astype(np.int64)
    for gi in range(groups):
        xs = xp[gi * cpg:(gi + 1) * cpg]
        ws = wt[gi * opg:(gi + 1) * opg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
                acc[gi * opg:(gi + 1) * opg] += np.einsum("oc,chw->ohw", ws[:, :, i, j], patch)
    acc += bias.astype(np.int64)[:, None, None]
    return mbqm(acc, mult[:, None, None], shift[:, None, None])


def fc_s8(x, weight, bias, mult, shift, x_zero, y_zero, act_min, act_max):
    z = fc_z(x, weight, bias, mult, shift, x_zero)
    return np.clip(z + y_zero, act_min, act_max).astype(np.int8)


def fc_z(x, weight, bias, mult, shift, x_zero):
    acc = weight.astype(np.int64) @ (x.reshape(-1).astype(np.int64) - x_zero) + bias
    return mbqm(acc, mult, shift)


def add_s8(a, b, op):
    return np.clip(add_z(a, b, op) + op.out_zero, op.act_min, op.act_max).astype(np.int8)


def add_z(a, b, op):
    ls = op.add_left_shift
    a2 = mbqm((a.astype(np.int64) - op.in0_zero) << ls, op.add_mult[0], op.add_shift[0])
    b2 = mbqm((b.astype(np.int64) - op.in1_zero) << ls, op.add_mult[1], op.add_shift[1])
    return mbqm(a2 + b2, op.add_mult[2], op.add_shift[2])


def avgpool_global_s8(x):
    c, h, w = x.shape
    total = x.reshape(c, -1).astype(np.int64).sum(axis=1)
    return np.clip(round_half_even_div(total, h * w), -128, 127).astype(np.int8).reshape(c, 1, 1)


def windows(x, kernel, stride, padding, fill):
    """[C, OH, OW, kH*kW] view of every pooling window, padded with `fill`."""
    c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    xp = np.full((c, h + 2 * ph, w + 2 * pw), fill, dtype=np.int64)
    xp[:, ph:ph + h, pw:pw + w] = x
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    cols = [xp[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] for i in range(kh) for j in range(kw)]
    return np.stack(cols, axis=-1)


def maxpool2d_s8(x, op):
    return windows(x, op.kernel, op.stride, op.padding, -129).max(axis=-1).astype(np.int8)


def avgpool2d_s8(x, op):
    total = windows(x, op.kernel, op.stride, op.padding, op.in0_zero).sum(axis=-1)
    return round_half_even_div(total, op.kernel[0] * op.kernel[1]).astype(np.int8)


def seq_sum_rows(a):
    """Sum of each row of a float32 2-D array, left to right, as a C loop does."""
    if a.shape[1] == 0:
        return np.zeros(a.shape[0], dtype=F32)
    return np.cumsum(a, axis=1, dtype=F32)[:, -1]


def softmax_exp(table, logits, label):
    """(exp(-s * (max - z_i)) as float32 [K], max - z_label) for the unclamped logits z (integer
    steps of the output scale s), from the file's table T[d] = exp(-s d), d < 256, as the C core
    (mct_exp_neg): d = 255 q + r gives T[r] * T[255]^q, the power by squaring, low bits first."""
    z = np.asarray(logits, dtype=np.int64)
    d = z.max() - z                                 # < 2^32: z are int32
    e = table[d % 255].astype(F32)
    base = np.full(d.shape, table[255], dtype=F32)
    q = d // 255
    while q.any():
        e = np.where(q & 1, e * base, e).astype(F32)
        base = (base * base).astype(F32)
        q >>= 1
    return e, int(d[label])


def clamp_mask(model, k, op, y):
    """Where op k's clamp let the gradient through: everywhere for the last op, whose unclamped
    logits the loss reads (docs/numerics.md, "Clamps in the backward")."""
    if k == len(model.ops) - 1:
        return np.ones(y.shape, dtype=bool)
    return (y > op.act_min) & (y < op.act_max)
