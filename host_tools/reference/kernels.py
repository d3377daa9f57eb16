"""The integer kernels of the numpy reference, bit for bit as the C kernels (c_src/mct_*_s8.c), and
the float32 sequential sum its backward passes use (see oracle.py's docstring for why sequential)."""
import numpy as np

from host_tools.model.quant import multiply_by_quantized_multiplier as mbqm, round_half_even_div

F32 = np.float32


def conv2d_s8(x, weight, bias, mult, shift, x_zero, y_zero, act_min, act_max, stride, padding, groups):
    """x int8 [C,H,W], weight int8 [O, C/groups, kh, kw] -> int8 [O, OH, OW]."""
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
    y = mbqm(acc, mult[:, None, None], shift[:, None, None]) + y_zero
    return np.clip(y, act_min, act_max).astype(np.int8)


def fc_s8(x, weight, bias, mult, shift, x_zero, y_zero, act_min, act_max):
    acc = weight.astype(np.int64) @ (x.reshape(-1).astype(np.int64) - x_zero) + bias
    y = mbqm(acc, mult, shift) + y_zero
    return np.clip(y, act_min, act_max).astype(np.int8)


def add_s8(a, b, op):
    ls = op.add_left_shift
    a2 = mbqm((a.astype(np.int64) - op.in0_zero) << ls, op.add_mult[0], op.add_shift[0])
    b2 = mbqm((b.astype(np.int64) - op.in1_zero) << ls, op.add_mult[1], op.add_shift[1])
    y = mbqm(a2 + b2, op.add_mult[2], op.add_shift[2]) + op.out_zero
    return np.clip(y, op.act_min, op.act_max).astype(np.int8)


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
