/* Backward of the lookup-table activation (mct_lut_s8.c): the input gradient is the output's times
 * the derivative table D (float32 [256], real units, 0 where the int8 output saturates) at the
 * saved input, element by element. Nothing is trained. */
#include "mct_internal.h"

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

typedef struct {
    const float *d;
    const int8_t *x;
    const mct_act_t *in;
} deriv_ctx_t;

/* D[x] at the channel-planar gradient's index i */
static float deriv_at(const void *ctx, uint32_t i) {
    const deriv_ctx_t *w = (const deriv_ctx_t *)ctx;
    return w->d[w->x[mct_flat_to_hwc(w->in, i)] + 128];
}

/* Integer backward: the weighted contributions G * D[x] (mct_weighted_grad_int). */
int mct_backward_lut_int(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in, const int32_t *g) {
    int32_t *gin = (int32_t *)mct_input_grad(m, k, op->in0);
    if (gin == NULL) {
        return MCT_OK;
    }
    const deriv_ctx_t w = { (const float *)mct_tensor(m, op->wscale), mct_act_data(m, in), in };
    mct_weighted_grad_int(m, op->in0, g, in->size, mct_gexp(m)[op->out], deriv_at, &w, gin);
    return MCT_OK;
}
