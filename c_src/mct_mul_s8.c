/* Broadcast multiply by a per-channel gate (squeeze-and-excitation: x * gate, gate C x 1 x 1):
 * y = clamp(requant((x - zx) * (g[c] - zg)) + zy), the multiplier x_scale * g_scale / y_scale (TF-Lite's
 * MUL), pixel by pixel in the channels-last layout. */
#include "mct_internal.h"
#include "mct_requant.h"

void mct_mul_s8(const mct_op_t *op, uint16_t c, const mct_view_t *x, const int8_t *gate, const mct_view_t *y) {
    for (uint32_t r = 0; r < y->h; r++) {
        const int32_t row = y->y0 + (int32_t)r;
        const int8_t *xr = x->data + (size_t)(row - x->y0) * x->row_stride + (size_t)(y->x0 - x->x0) * c;
        int8_t *yr = y->data + (size_t)r * y->row_stride;
        for (uint32_t i = 0; i < (uint32_t)y->w * c; i++) {
            const int32_t p = (xr[i] - op->in0_zero) * (gate[i % c] - op->in1_zero);
            yr[i] = mct_requant_s8(p, op->add_mult[0], op->add_shift[0], op->out_zero, op->act_min, op->act_max);
        }
    }
}

/* The loader's check (mct_load.c): the gate produced before, C x 1 x 1 against the tensor's C x H x W,
 * the output the tensor's shape, a valid multiplier. */
int mct_mul_check(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *x, const mct_act_t *gate,
    const mct_act_t *out) {
    if (op->in1 == op->in0 || gate->c != x->c || gate->h != 1 || gate->w != 1 || out->c != x->c ||
        out->h != x->h || out->w != x->w) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_SHAPE, 0);
    }
    if (!mct_isfinite(op->in1_scale) || op->in1_scale <= 0.0f) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_SCALE, 1);
    }
    if (op->add_mult[0] < 0 || op->add_shift[0] < -31 || op->add_shift[0] > 30) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_MULTIPLIER, 0);
    }
    return MCT_OK;
}
