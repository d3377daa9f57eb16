"""numpy reference of the channel concatenation (op type 8): c_src/mct_concat_s8.c and
c_src/mct_backward_concat.c, bit for bit. Activations here are channel-planar (C, H, W), as in oracle.py."""
import numpy as np

from host_tools.model.quant import multiply_by_quantized_multiplier as mbqm

F32 = np.float32
I64 = np.int64


def concat_s8(a, b, op):
    """[rq0(a), rq1(b)] along channels: each input requantized to the output's scale and zero point."""
    ls = op.add_left_shift
    parts = [np.clip(mbqm((x.astype(I64) - z) << ls, op.add_mult[j], op.add_shift[j]) + op.out_zero, -128, 127)
             for j, (x, z) in enumerate(((a, op.in0_zero), (b, op.in1_zero)))]
    return np.concatenate(parts).astype(np.int8)


def slices(m, op):
    """(input activation, its slice of the channel-planar output gradient) for both inputs."""
    na = int(np.prod(m.acts[op.in0][:3]))
    return ((op.in0, slice(0, na)), (op.in1, slice(na, None)))


def concat_input_grad_f32(ref, grads, written, k, op, gout):
    """Each input's gradient += its slice of the output's."""
    for a, s in slices(ref.m, op):
        gin = ref._grad_in(grads, written, k, a)
        if gin is not None:
            gin += gout[s]


def concat_input_grad_int(ib, op, gout, e_g):
    """The integer backward: each slice as an add's unweighted contribution (int_backward.py)."""
    for a, s in slices(ib.r.m, op):
        gin = ib._grad_in(a)
        if gin is not None:
            gin += ib._plain_value(gout[s], ib._plain_shift(a, gout[s], e_g, 1, 1), 1)
            ib._normalize(a)
