"""numpy reference of the gate multiply (op type 9, squeeze-and-excitation's x * gate, gate C x 1 x 1):
c_src/mct_mul_s8.c and c_src/mct_backward_mul.c, bit for bit. Activations here are channel-planar
(C, H, W), as in oracle.py."""
import numpy as np

from host_tools.model.quant import multiply_by_quantized_multiplier as mbqm
from host_tools.reference.kernels import seq_sum_rows

F32 = np.float32
I64 = np.int64


def mul_z(x, gate, op):
    """requant((x - zx) * (gate[c] - zg)), before the output's zero point and clamp."""
    p = (x.astype(I64) - op.in0_zero) * (gate.astype(I64).reshape(-1, 1, 1) - op.in1_zero)
    return mbqm(p, op.add_mult[0], op.add_shift[0])


def _gate_real(gate, op):
    return gate.reshape(-1).astype(I64) - op.in1_zero


def mul_input_grads_f32(ref, grads, written, k, op, gpre):
    """The tensor's gradient += g * gate[c]; the gate's += sum over p of g * x (float32, in order)."""
    x, gate = ref.acts[op.in0], ref.acts[op.in1]
    c = x.shape[0]
    g = gpre.reshape(c, -1)
    gx = ref._grad_in(grads, written, k, op.in0)
    if gx is not None:
        gx += (g * (_gate_real(gate, op).astype(F32) * F32(op.in1_scale))[:, None]).reshape(-1)
    gg = ref._grad_in(grads, written, k, op.in1)
    if gg is not None:
        xr = (x.reshape(c, -1).astype(I64) - op.in0_zero).astype(F32) * F32(op.in0_scale)
        gg += seq_sum_rows((g * xr).astype(F32))


def weighted_grad_int(ib, a, gout, e_g, w):
    """gin (activation a's) += G * w, w float32 per element (mct_weighted_grad_int): P = G * mant(w)
    with exponent e_g + exp(w); the contributions in one exponent e_t, |T| < 2^28, aligned with the
    input's gradient, then added and renormalized."""
    from host_tools.reference.int_backward import bitlen, f32_split, shift_round
    gin = ib._grad_in(a)
    if gin is None:
        return
    mant, ex = f32_split(np.asarray(w, dtype=F32))
    p = np.asarray(gout, dtype=I64) * mant
    live = p != 0
    if live.any():
        e_t = int((bitlen(p) + ex)[live].max()) + e_g - 28
    else:
        e_t = e_g if ib.gexp[a] is None else ib.gexp[a]
    e_t = ib._align(a, e_t)
    gin += shift_round(p, e_t - e_g - ex)
    ib._normalize(a)


def mul_input_grads_int(ib, op, gout, e_g):
    """The integer backward: the tensor's as weighted contributions (weight gate[c]); the gate's
    S[c] = sum over p of G * (x - zx), exact, below 2^39 after a shift k0, times mant(x_scale)."""
    from host_tools.reference.int_backward import bitlen, f32_split, shift_round
    x, gate = ib.r.acts[op.in0], ib.r.acts[op.in1]
    c = x.shape[0]
    hw = x.size // c
    gr = _gate_real(gate, op).astype(F32) * F32(op.in1_scale)
    weighted_grad_int(ib, op.in0, gout, e_g, np.repeat(gr, hw))
    gg = ib._grad_in(op.in1)
    if gg is None:
        return
    s = (np.asarray(gout, dtype=I64).reshape(c, hw) * (x.reshape(c, hw).astype(I64) - op.in0_zero)).sum(axis=1)
    mant, e = (int(v) for v in f32_split(F32(op.in0_scale)))
    big = int(np.abs(s).max())
    k0 = max(int(bitlen(big)) - 39, 0)
    e_p = e_g + e + k0
    if big:
        e_t = int(bitlen(int(shift_round(big, k0)) * mant)) + e_p - 28
    else:
        e_t = e_p if ib.gexp[op.in1] is None else ib.gexp[op.in1]
    e_t = ib._align(op.in1, e_t)
    gg += shift_round(shift_round(s, k0) * mant, e_t - e_p)
    ib._normalize(op.in1)
