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
    """The integer backward: the weighted contributions G * D[x] (mul.weighted_grad_int)."""
    from host_tools.reference.mul import weighted_grad_int
    weighted_grad_int(ib, op.in0, gout, e_g, ib.r.t(op.wscale).astype(F32)[x.reshape(-1).astype(I64) + 128])
