"""numpy reference of the lookup-table activation (op type 7): c_src/mct_lut_s8.c and
c_src/mct_backward_lut.c, bit for bit. Elementwise, so independent of the activation layout."""
import numpy as np

F32 = np.float32
I64 = np.int64


def lut_s8(table, x):
    """y = table[x + 128]."""
    return table[x.astype(np.int64) + 128].astype(np.int8)


def lut_input_grad_f32(deriv, x, gout, gin):
    """gin += gout * D[x + 128], one float32 product and one float32 sum per element."""
    gin += (gout * deriv[x.reshape(-1).astype(np.int64) + 128]).astype(F32)


def lut_input_grad_int(ib, op, gout, e_g, x):
    """The integer backward (int_backward.IntBackward ib): P = G * mant(D[x]) with exponent
    e_g + exp(D[x]); the contributions T = P in one exponent e_t, |T| < 2^28, aligned with the
    input's gradient, then added and renormalized."""
    from host_tools.reference.int_backward import bitlen, f32_split, shift_round
    gin = ib._grad_in(op.in0)
    if gin is None:
        return
    mant, ex = f32_split(ib.r.t(op.wscale).astype(F32)[x.reshape(-1).astype(I64) + 128])
    p = np.asarray(gout, dtype=I64) * mant
    live = p != 0
    if live.any():
        e_t = int((bitlen(p) + ex)[live].max()) + e_g - 28
    else:
        e_t = e_g if ib.gexp[op.in0] is None else ib.gexp[op.in0]
    e_t = ib._align(op.in0, e_t)
    gin += shift_round(p, e_t - e_g - ex)
    ib._normalize(op.in0)
