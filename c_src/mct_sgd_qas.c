/* SGD updates applied in place as soon as a gradient is known, with Quantization-Aware Scaling.
 *
 * With W = s_W * W_int and b = s_W * s_x * b_int, QAS scales the int gradients by s_W^-2 (weights)
 * and s_W^-2 s_x^-2 (biases), which makes the int update equal to a float SGD step on the real
 * values. Each trained tensor keeps a float32 master (in int units) so that steps smaller than one
 * int8 step accumulate instead of rounding away; the int copy the forward reads is its rounding. */
#include "mct_internal.h"

/* Round half away from zero, then clamp: trunc(x + copysign(0.5, x)). */
static int32_t round_clamp(float x, float lo, float hi) {
    float r = x + (x >= 0.0f ? 0.5f : -0.5f);
    if (r < lo) {
        r = lo;
    } else if (r > hi) {
        r = hi;
    }
    return (int32_t)r;
}

/* master - step, kept only when finite: a step that is not (an absurd learning rate, a gradient
 * that overflowed or a NaN) leaves the element as it was and is counted. Returns 1 when skipped. */
static inline uint32_t step_master(float *master, float step) {
    const float v = *master - step;
    if (!mct_isfinite(v)) {
        return 1;
    }
    *master = v;
    return 0;
}

/* Bias of output channel o, whose gradient (real units) is `grad`. Returns the updates skipped. */
uint32_t mct_update_bias(const mct_model_t *m, const mct_op_t *op, uint32_t o, float grad, float lr) {
    float *master = mct_master(m, op->bias);
    if (master == NULL) {
        return 0;
    }
    int32_t *b = (int32_t *)mct_tensor(m, op->bias);
    const float ws = ((const float *)mct_tensor(m, op->wscale))[o];
    const float step = m->qas ? (lr * grad) / (ws * op->in0_scale) : (lr * grad) * (ws * op->in0_scale);
    const uint32_t skipped = step_master(&master[o], step);
    b[o] = round_clamp(master[o], -2147483520.0f, 2147483520.0f);
    return skipped;
}

/* Fully connected weights: the trained rows (first output channels) only. */
uint32_t mct_update_fc_weight(const mct_model_t *m, const mct_op_t *op, uint32_t n_in, const int8_t *x,
    const float *gpre, float lr) {
    float *master = mct_master(m, op->weight);
    uint32_t skipped = 0;
    if (master == NULL) {
        return 0;
    }
    const mct_rows_t w = mct_weight_rows(m, op->weight, n_in);
    const float *ws = (const float *)mct_tensor(m, op->wscale);
    for (uint32_t o = 0; o < w.n_sram; o++) {
        float c = (lr * gpre[o]) * op->in0_scale;
        c = m->qas ? c / ws[o] : c * ws[o];
        float *mo = master + (size_t)o * n_in;
        int8_t *wo = w.sram + (size_t)o * n_in;
        for (uint32_t i = 0; i < n_in; i++) {
            skipped += step_master(&mo[i], c * (float)(x[i] - op->in0_zero));
            wo[i] = (int8_t)round_clamp(mo[i], -127.0f, 127.0f);
        }
    }
    return skipped;
}

/* Conv weights of output channel o (a trained one), from its gradient g_row and the saved input x:
 * each weight is updated as soon as its own gradient sum is known. */
uint32_t mct_update_conv_weight(const mct_model_t *m, const mct_op_t *op, const mct_act_t *in,
    const int8_t *x, const mct_act_t *out, uint32_t o, const float *g_row, float lr) {
    const uint32_t cpg = in->c / op->groups, opg = out->c / op->groups;
    const uint32_t row_len = cpg * op->kh * op->kw;
    const mct_rows_t w = mct_weight_rows(m, op->weight, row_len);
    uint32_t skipped = 0;
    if (o >= w.n_sram) {
        return 0;
    }
    const float ws = ((const float *)mct_tensor(m, op->wscale))[o];
    const int8_t *xg = x + (size_t)(o / opg) * cpg * in->h * in->w;
    float *mo = mct_master(m, op->weight) + (size_t)o * row_len;
    int8_t *wo = w.sram + (size_t)o * row_len;
    for (uint32_t c = 0; c < cpg; c++) {
        for (int32_t ky = 0; ky < op->kh; ky++) {
            for (int32_t kx = 0; kx < op->kw; kx++) {
                const uint32_t i = (c * op->kh + ky) * op->kw + kx;
                float step = (lr * mct_conv2d_weight_grad_f32(op, in, xg, out, c, ky, kx, g_row)) * op->in0_scale;
                step = m->qas ? step / ws : step * ws;
                skipped += step_master(&mo[i], step);
                wo[i] = (int8_t)round_clamp(mo[i], -127.0f, 127.0f);
            }
        }
    }
    return skipped;
}
