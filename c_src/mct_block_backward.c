/* The backward of an inverted-residual block (pointwise expand k-2, depthwise k-1, pointwise
 * project k: op k carries MCT_OF_FUSED) one expanded channel at a time, float32 backward.
 *
 * The whole-tensor order keeps the float32 gradient of the expanded width (MobileNetV2-w0.35 at
 * 16x16: 48 channels, 49 KB); streamed, the two expanded gradients are one channel each. For each
 * expanded channel e: the head's input gradient of channel e (with the forward's weights), the
 * depthwise conv's backward of channel e, then the first pointwise conv's backward of channel e
 * (its share of the block input's gradient); the head's own updates come last, since its input
 * gradient needs its forward weights throughout. Every float operation is the one of the
 * op-by-op path, in the same order per element, and the stochastic rounding draws the same
 * numbers for the same elements: the result is bit-identical to it (and to host_tools/reference/oracle.py).
 */
#include "mct_internal.h"

/* The clamp mask of n elements starting at element `first` of the activation. */
static void mask_range(const uint8_t *mask, uint32_t first, uint32_t n, float *g) {
    for (uint32_t i = 0; i < n; i++) {
        const uint32_t b = first + i;
        if (!(mask[b >> 3] & (1u << (b & 7)))) {
            g[i] = 0.0f;
        }
    }
}

/* Random numbers a conv's updates draw before output channel o's (stochastic rule): one per
 * trained bias element and per trained weight, channel by channel (bias, then the row). */
static uint32_t draws_before(const mct_model_t *m, const mct_op_t *op, uint32_t o, uint32_t row_len) {
    const uint32_t n_rows = mct_tensor_trained(m, op->weight) ? mct_weight_rows(m, op->weight, row_len).n_sram : 0;
    const uint32_t bias = mct_tensor_trained(m, op->bias) ? 1u : 0u;
    return o * bias + (o < n_rows ? o : n_rows) * row_len;
}

/* Bias of channel o: the sum of its gradient over the positions, in order. */
static uint32_t update_bias_from(mct_model_t *m, const mct_op_t *op, uint32_t o, const float *g, uint32_t n,
    float lr) {
    if (!mct_tensor_trained(m, op->bias)) {
        return 0;
    }
    float total = 0.0f;
    for (uint32_t i = 0; i < n; i++) {
        total += g[i];
    }
    return mct_update_bias(m, op, o, total, lr);
}

/* Op k is the head; its output's gradient has had its clamp mask applied (mct_backward_op). */
int mct_block_backward_f32(mct_model_t *m, uint16_t k, float lr) {
    mct_op_t pw1, dw, pw2;
    mct_act_t x, ex, dx, y;         /* block input, expanded (pw1 out), depthwise out, head out */
    mct_op_decode(m, k - 2, &pw1);
    mct_op_decode(m, k - 1, &dw);
    mct_op_decode(m, k, &pw2);
    mct_act_decode(m, pw1.in0, &x);
    mct_act_decode(m, pw1.out, &ex);
    mct_act_decode(m, dw.out, &dx);
    mct_act_decode(m, pw2.out, &y);
    const uint32_t hw_e = (uint32_t)ex.h * ex.w, hw_d = (uint32_t)dx.h * dx.w;
    float *gy = mct_act_grad(m, &y);
    float *gd = mct_act_grad(m, &dx);           /* one channel of the depthwise output's gradient */
    float *ge = mct_act_grad(m, &ex);           /* one channel of the expansion's, or NULL */
    float *gx = ge != NULL ? (float *)mct_input_grad(m, k - 2, pw1.in0) : NULL;
    const mct_rows_t w2 = mct_weight_rows(m, pw2.weight, dx.c);
    const mct_rows_t wd = mct_weight_rows(m, dw.weight, (uint32_t)dw.kh * dw.kw);
    const mct_rows_t w1 = mct_weight_rows(m, pw1.weight, x.c);
    const float *ws2 = (const float *)mct_tensor(m, pw2.wscale);
    const float *wsd = (const float *)mct_tensor(m, dw.wscale);
    const float *ws1 = (const float *)mct_tensor(m, pw1.wscale);
    const uint8_t *mask_d = mct_act_mask(m, &dx), *mask_e = mct_act_mask(m, &ex);
    /* stochastic rounding: the op-by-op order draws the head's numbers, then the depthwise
     * conv's, then the first conv's; each channel below starts where that order would be */
    const int stochastic = (m->train_flags & MCT_TRAIN_RULE_MASK) == MCT_RULE_STOCHASTIC;
    const uint32_t start = m->rng_counter;
    const uint32_t at_dw = start + draws_before(m, &pw2, y.c, dx.c);
    const uint32_t at_pw1 = at_dw + draws_before(m, &dw, dx.c, (uint32_t)dw.kh * dw.kw);
    const uint32_t end = at_pw1 + draws_before(m, &pw1, ex.c, x.c);
    /* one channel of the depthwise conv, for the input-gradient kernel */
    mct_op_t dw1 = dw;
    mct_act_t ex1 = ex, dx1 = dx;
    dw1.groups = 1;
    ex1.c = dx1.c = 1;
    ex1.size = hw_e;
    dx1.size = hw_d;
    for (uint32_t e = 0; e < dx.c; e++) {
        /* the head's input gradient, channel e: sum over o of W2[o, e] * (gy[o] * ws2[o]) */
        memset(gd, 0, 4u * hw_d);
        for (uint32_t o = 0; o < y.c; o++) {
            const float w = (float)mct_row(&w2, o)[e];
            const float *g = gy + (size_t)o * hw_d;
            for (uint32_t i = 0; i < hw_d; i++) {
                gd[i] += w * (g[i] * ws2[o]);
            }
        }
        mask_range(mask_d, e * hw_d, hw_d, gd);
        if (stochastic) {
            m->rng_counter = at_dw + draws_before(m, &dw, e, (uint32_t)dw.kh * dw.kw);
        }
        m->skipped_updates += update_bias_from(m, &dw, e, gd, hw_d, lr);
        if (ge != NULL) {
            memset(ge, 0, 4u * hw_e);
            mct_conv2d_input_grad_f32(&dw1, &ex1, &dx1, 0, mct_row(&wd, e), gd, wsd[e], ge);
        }
        if (e < wd.n_sram) {
            m->skipped_updates += mct_update_conv_weight(m, &dw, &ex, mct_act_data(m, &ex), &dx, e, gd, lr);
        }
        if (ge == NULL) {
            continue;
        }
        mask_range(mask_e, e * hw_e, hw_e, ge);
        if (stochastic) {
            m->rng_counter = at_pw1 + draws_before(m, &pw1, e, x.c);
        }
        m->skipped_updates += update_bias_from(m, &pw1, e, ge, hw_e, lr);
        if (gx != NULL) {
            mct_conv2d_input_grad_f32(&pw1, &x, &ex, e, mct_row(&w1, e), ge, ws1[e], gx);
        }
        if (e < w1.n_sram) {
            m->skipped_updates += mct_update_conv_weight(m, &pw1, &x, mct_act_data(m, &x), &ex, e, ge, lr);
        }
    }
    if (stochastic) {
        m->rng_counter = start;
    }
    for (uint32_t o = 0; o < y.c; o++) {
        const float *g = gy + (size_t)o * hw_d;
        m->skipped_updates += update_bias_from(m, &pw2, o, g, hw_d, lr);
        if (o < w2.n_sram) {
            m->skipped_updates += mct_update_conv_weight(m, &pw2, &dx, mct_act_data(m, &dx), &y, o, g, lr);
        }
    }
    if (stochastic) {
        m->rng_counter = end;
    }
    return MCT_OK;
}
