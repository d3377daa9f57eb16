/* Backward of the gate multiply (mct_mul_s8.c), after the clamp mask: in real units
 * dx[c, p] = g[c, p] * gate[c] and dgate[c] = sum over p of g[c, p] * x[c, p] (gradients channel-planar,
 * activations channels last). Nothing is trained. */
#include "mct_internal.h"

#define GEXP_UNSET (-32768)     /* as mct_backward_int.c: no exponent yet */

typedef struct {
    const mct_model_t *m;
    const mct_op_t *op;
    uint32_t hw;
} weight_ctx_t;

/* gate[c] in real units (float32), the x gradient's weight */
static float gate_real(const mct_model_t *m, const mct_op_t *op, uint32_t c) {
    mct_act_t gate;
    mct_act_decode(m, op->in1, &gate);
    return (float)(mct_act_data(m, &gate)[c] - op->in1_zero) * op->in1_scale;
}

int mct_backward_mul_f32(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in,
    const mct_act_t *out, float *gout, float lr) {
    (void)out;
    (void)lr;
    const int8_t *x = mct_act_data(m, in);
    const uint32_t hw = (uint32_t)in->h * in->w;
    float *gx = (float *)mct_input_grad(m, k, op->in0);
    for (uint32_t c = 0; gx != NULL && c < in->c; c++) {
        const float s = gate_real(m, op, c);
        for (uint32_t p = 0; p < hw; p++) {
            gx[c * hw + p] += gout[c * hw + p] * s;
        }
    }
    float *gg = (float *)mct_input_grad(m, k, op->in1);
    for (uint32_t c = 0; gg != NULL && c < in->c; c++) {
        float acc = 0.0f;
        for (uint32_t p = 0; p < hw; p++) {
            acc += gout[c * hw + p] * ((float)(x[(size_t)p * in->c + c] - op->in0_zero) * op->in0_scale);
        }
        gg[c] += acc;
    }
    return MCT_OK;
}

static float gate_weight(const void *ctx, uint32_t i) {
    const weight_ctx_t *w = (const weight_ctx_t *)ctx;
    return gate_real(w->m, w->op, i / w->hw);
}

/* The gate's sum over p of G * (x - zx) for channel c: exact in 64 bits (|G| < 2^31, 255, 2^16). */
static int64_t gate_sum(const mct_op_t *op, const mct_act_t *in, const int8_t *x, const int32_t *g, uint32_t c) {
    const uint32_t hw = (uint32_t)in->h * in->w;
    int64_t s = 0;
    for (uint32_t p = 0; p < hw; p++) {
        s += (int64_t)g[c * hw + p] * (x[(size_t)p * in->c + c] - op->in0_zero);
    }
    return s;
}

static uint64_t abs64u(int64_t v) {
    return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

/* Integer backward: dx as the lookup table's weighted contributions (mct_weighted_grad_int) with the
 * float32 weight gate[c]; dgate[c] = S[c] * mant(x_scale), S[c] the exact sum above brought below
 * 2^39 first, in one exponent with |T| < 2^28, aligned with the gate's gradient buffer. */
int mct_backward_mul_int(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in, const int32_t *g) {
    const int32_t e_g = mct_gexp(m)[op->out];
    int32_t *gx = (int32_t *)mct_input_grad(m, k, op->in0);
    if (gx != NULL) {
        const weight_ctx_t w = { m, op, (uint32_t)in->h * in->w };
        mct_weighted_grad_int(m, op->in0, g, in->size, e_g, gate_weight, &w, gx);
    }
    int32_t *gg = (int32_t *)mct_input_grad(m, k, op->in1);
    if (gg == NULL) {
        return MCT_OK;
    }
    const int8_t *x = mct_act_data(m, in);
    int32_t mant, e;
    mct_f32_split(op->in0_scale, &mant, &e);
    uint64_t big = 0;
    for (uint32_t c = 0; c < in->c; c++) {
        const uint64_t a = abs64u(gate_sum(op, in, x, g, c));
        big = a > big ? a : big;
    }
    const int32_t k0 = mct_bitlen64(big) > 39 ? mct_bitlen64(big) - 39 : 0;
    const int32_t e_p = e_g + e + k0;      /* P[c] = round(S[c] / 2^k0) * mant, exponent e_p */
    const int16_t have = mct_gexp(m)[op->in1];
    const int32_t top = big ? mct_bitlen64(abs64u(mct_shift_round((int64_t)big, k0) * mant)) + e_p : INT32_MIN;
    const int32_t e_t = mct_align_grad(m, op->in1, top != INT32_MIN ? top - 28 : (have == GEXP_UNSET ? e_p : have));
    for (uint32_t c = 0; c < in->c; c++) {
        gg[c] += (int32_t)mct_shift_round(mct_shift_round(gate_sum(op, in, x, g, c), k0) * mant, e_t - e_p);
    }
    mct_normalize_grad(m, op->in1);
    return MCT_OK;
}
