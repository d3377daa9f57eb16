/* SGD updates applied in place as soon as a gradient is known, with Quantization-Aware Scaling.
 *
 * With W = s_W * W_int and b = s_W * s_x * b_int, QAS scales the int gradients by s_W^-2 (weights)
 * and s_W^-2 s_x^-2 (biases), which makes the int update equal to a float SGD step on the real
 * values. The step (float32, in int units) reaches the int copy the forward reads through the
 * model's update rule (mct_update_rule.c): a float32 master, an 8-bit fraction, stochastic or
 * nearest rounding. */
#include "mct_backward_pw_f32.h"

/* Bias of output channel o, whose gradient (real units) is `grad`. Returns the updates skipped. */
uint32_t mct_update_bias(mct_model_t *m, const mct_op_t *op, uint32_t o, float grad, float lr) {
    if (!mct_tensor_trained(m, op->bias)) {
        return 0;
    }
    uint32_t skipped = 0;
    int32_t *b = (int32_t *)mct_tensor(m, op->bias);
    const float ws = ((const float *)mct_tensor(m, op->wscale))[o];
    const float step = m->qas ? (lr * grad) / (ws * op->in0_scale) : (lr * grad) * (ws * op->in0_scale);
    b[o] = mct_apply_step(m, b[o], mct_shadow(m, op->bias), o, step, -MCT_BIAS_LIMIT, MCT_BIAS_LIMIT, &skipped);
    return skipped;
}

/* Fully connected weights: the trained rows (first output channels) only; x channels last, the
 * weights' columns in flatten order (c, pixel), walked in that order. */
uint32_t mct_update_fc_weight(mct_model_t *m, const mct_op_t *op, const mct_act_t *in, const int8_t *x,
    const float *gpre, float lr) {
    const uint32_t n_in = in->size;
    uint32_t skipped = 0;
    if (!mct_tensor_trained(m, op->weight)) {
        return 0;
    }
    const mct_rows_t w = mct_weight_rows(m, op->weight, n_in);
    const float *ws = (const float *)mct_tensor(m, op->wscale);
    void *shadow = mct_shadow(m, op->weight);
    for (uint32_t o = 0; o < w.n_sram; o++) {
        float c = (lr * gpre[o]) * op->in0_scale;
        c = m->qas ? c / ws[o] : c * ws[o];
        int8_t *wo = w.sram + (size_t)o * n_in;
        const uint32_t base = o * n_in, hw = n_in / in->c;
        for (uint32_t ch = 0, i = 0; ch < in->c; ch++) {
            for (uint32_t p = 0; p < hw; p++, i++) {
                wo[i] = (int8_t)mct_apply_step(m, wo[i], shadow, base + i,
                    c * (float)(x[(size_t)p * in->c + ch] - op->in0_zero), -127, 127, &skipped);
            }
        }
    }
    return skipped;
}

/* Pointwise conv weights [c0, c0 + n) of output channel o (a trained one), from their gradient sums
 * total[0..n) (units of x's integer steps), in channel order. Returns the updates skipped. */
uint32_t mct_update_pw_weights(mct_model_t *m, const mct_op_t *op, uint32_t o, uint32_t row_len, uint32_t c0,
    uint32_t n, const float *total, float lr) {
    const mct_rows_t w = mct_weight_rows(m, op->weight, row_len);
    const float ws = ((const float *)mct_tensor(m, op->wscale))[o];
    void *shadow = mct_shadow(m, op->weight);
    int8_t *wo = w.sram + (size_t)o * row_len;
    return mct_apply_steps_s8(m, wo + c0, shadow, o * row_len + c0, n, total, lr, op->in0_scale, ws, m->qas);
}

/* Conv weights of output channel o (a trained one), from its gradient g_row and the saved input x:
 * each weight is updated as soon as its own gradient sum is known. */
uint32_t mct_update_conv_weight(mct_model_t *m, const mct_op_t *op, const mct_act_t *in,
    const int8_t *x, const mct_act_t *out, uint32_t o, const float *g_row, float lr) {
    const uint32_t cpg = in->c / op->groups, opg = out->c / op->groups;
    const uint32_t row_len = cpg * op->kh * op->kw;
    const mct_rows_t w = mct_weight_rows(m, op->weight, row_len);
    uint32_t skipped = 0;
    if (o >= w.n_sram) {
        return 0;
    }
    const float ws = ((const float *)mct_tensor(m, op->wscale))[o];
    const int8_t *xg = x + (size_t)(o / opg) * cpg;       /* the group's first channel, channels last */
    void *shadow = mct_shadow(m, op->weight);
    const uint32_t base = o * row_len;
    int8_t *wo = w.sram + (size_t)o * row_len;
    if (mct_pointwise_op(op)) {
        /* each weight's gradient is the same sum in the same order (pixels in turn), a chunk of
         * input channels at a time so that each pixel's channels are read together */
        const uint32_t hw = (uint32_t)out->h * out->w;
        float total[MCT_BWD_CHUNK];
        for (uint32_t c0 = 0; c0 < cpg; c0 += MCT_BWD_CHUNK) {
            const uint32_t n = cpg - c0 < MCT_BWD_CHUNK ? cpg - c0 : MCT_BWD_CHUNK;
            mct_pw_weight_grad_f32(hw, n, xg + c0, in->c, op->in0_zero, g_row, total);
            skipped += mct_update_pw_weights(m, op, o, row_len, c0, n, total, lr);
        }
        return skipped;
    }
    for (uint32_t c = 0; c < cpg; c++) {
        for (int32_t ky = 0; ky < op->kh; ky++) {
            for (int32_t kx = 0; kx < op->kw; kx++) {
                const uint32_t i = (c * op->kh + ky) * op->kw + kx;
                float step = (lr * mct_conv2d_weight_grad_f32(op, in, xg, out, c, ky, kx, g_row)) * op->in0_scale;
                step = m->qas ? step / ws : step * ws;
                wo[i] = (int8_t)mct_apply_step(m, wo[i], shadow, base + i, step, -127, 127, &skipped);
            }
        }
    }
    return skipped;
}
