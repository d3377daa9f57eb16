/* Backward of the lookup-table activation (mct_lut_s8.c): the input gradient is the output's times
 * the derivative table D (float32 [256], real units, 0 where the int8 output saturates) at the
 * saved input, element by element. Nothing is trained. */
#include "mct_internal.h"

#define GEXP_UNSET (-32768)     /* as mct_backward_int.c: no exponent yet */

int mct_backward_lut_f32(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in,
    const mct_act_t *out, float *gout, float lr) {
    (void)lr;
    float *gin = (float *)mct_input_grad(m, k, op->in0);
    if (gin == NULL) {
        return MCT_OK;
    }
    const float *d = (const float *)mct_tensor(m, op->wscale);
    const int8_t *x = mct_act_data(m, in);
    const uint32_t hw = (uint32_t)in->h * in->w;
    (void)out;
    for (uint32_t c = 0; c < in->c; c++) {          /* gradients channel-planar, activations channels last */
        for (uint32_t p = 0; p < hw; p++) {
            gin[c * hw + p] += gout[c * hw + p] * d[x[(size_t)p * in->c + c] + 128];
        }
    }
    return MCT_OK;
}

/* Integer backward: P = G * mant(D[x]) (exponent e_g + exp(D[x]), exact in 64 bits); the
 * contributions T are P in one exponent e_t with |T| < 2^28 (one per input element), aligned with
 * the input's gradient buffer, added, then the buffer is renormalized. */
int mct_backward_lut_int(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in, const int32_t *g) {
    int32_t *gin = (int32_t *)mct_input_grad(m, k, op->in0);
    if (gin == NULL) {
        return MCT_OK;
    }
    const float *d = (const float *)mct_tensor(m, op->wscale);
    const int8_t *x = mct_act_data(m, in);
    const int32_t e_g = mct_gexp(m)[op->out];
    int32_t top = INT32_MIN;
    for (uint32_t i = 0; i < in->size; i++) {       /* i: the channel-planar gradient's index */
        int32_t mant, e;
        mct_f32_split(d[x[mct_flat_to_hwc(in, i)] + 128], &mant, &e);
        const int64_t p = (int64_t)g[i] * mant;
        if (p != 0) {
            const int32_t l = mct_bitlen64(p < 0 ? (uint64_t)0 - (uint64_t)p : (uint64_t)p) + e;
            top = l > top ? l : top;
        }
    }
    const int16_t have = mct_gexp(m)[op->in0];
    const int32_t e_t = mct_align_grad(m, op->in0, top != INT32_MIN ? top + e_g - 28 : (have == GEXP_UNSET ? e_g : have));
    for (uint32_t i = 0; i < in->size; i++) {
        int32_t mant, e;
        mct_f32_split(d[x[mct_flat_to_hwc(in, i)] + 128], &mant, &e);
        gin[i] += (int32_t)mct_shift_round((int64_t)g[i] * mant, e_t - e_g - e);
    }
    mct_normalize_grad(m, op->in0);
    return MCT_OK;
}
