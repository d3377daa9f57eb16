/* The backward of an inverted-residual block (pointwise expand k-2, depthwise k-1, pointwise
 * project k: op k carries MCT_OF_FUSED) one expanded channel at a time, float32 backward.
 *
 * The whole-tensor order keeps the float32 gradient of the expanded width (MobileNetV2-w0.35 at
 * 16x16: 48 channels, 49 KB); streamed, the two expanded gradients are one channel each. For each
 * expanded channel e: the head's input gradient of channel e (with the forward's weights), the
 * depthwise conv's backward of channel e, then the first pointwise conv's backward of channel e
 * (its share of the block input's gradient); the head's weight updates come last, since its input
 * gradient needs its forward weights throughout (the biases of its untrained rows come first, before
 * those rows of its gradient are scaled in place by w_scale). Every float operation is the one of the
 * op-by-op path, in the same order per element, and the stochastic rounding draws the same
 * numbers for the same elements: the result is bit-identical to it (and to host_tools/reference/oracle.py).
 */
#include "mct_backward_dw_f32.h"
#include "mct_backward_pw_f32.h"
#include "mct_backward_vldm_f32.h"     /* mct_zero_f32 */
#include "mct_kernels_hwc.h"
#include "mct_requant.h"

/* How a conv's updates draw random numbers (stochastic rule): one per trained bias element and per
 * trained weight, channel by channel (bias, then the row); its first n_rows rows are trained. Looked
 * up once per op. */
typedef struct {
    uint32_t bias, n_rows, row_len;
} draws_t;

static draws_t draws_of(const mct_model_t *m, const mct_op_t *op, uint32_t row_len) {
    const draws_t d = {mct_tensor_trained(m, op->bias) ? 1u : 0u,
        mct_tensor_trained(m, op->weight) ? mct_weight_rows(m, op->weight, row_len).n_sram : 0u, row_len};
    return d;
}

/* Random numbers the updates draw before output channel o's. */
static inline uint32_t draws_before(const draws_t *d, uint32_t o) {
    return o * d->bias + (o < d->n_rows ? o : d->n_rows) * d->row_len;
}

/* Bias of channel o: the sum of its gradient over the positions, in order. */
static uint32_t update_bias_from(mct_model_t *m, const mct_op_t *op, uint32_t o, const float *g, uint32_t n,
    float lr) {
    if (!mct_tensor_trained(m, op->bias)) {
        return 0;
    }
    float total = 0.0f;
MCT_UNROLL(8)
    for (uint32_t i = 0; i < n; i++) {
        total += g[i];
    }
    return mct_update_bias(m, op, o, total, lr);
}

/* Expansion outputs recomputed at a time (int8, on the stack). */
#define RECOMPUTE_CHUNK 256u

/* The expansion's clamp mask of channels [e, e + n) (n <= 4; their weight rows contiguous), recomputed
 * (MCT_OF_RECOMPUTE): their outputs, from the block input x that the first conv's weight gradient keeps
 * anyway and the weights and bias the forward used (channel e's are updated after this), by the
 * forward's own kernel (the reference build: the reference requantization, which every kernel matches
 * bit for bit); g ([n][hw]) is zeroed where the forward's output was clamped, as its mask would. */
static void clamp_recomputed(const mct_model_t *m, const mct_op_t *pw1, const mct_act_t *x, const mct_rows_t *w1,
    uint32_t e, uint32_t n, uint32_t hw, float *g) {
    const int8_t *xp = mct_act_data(m, x), *w = mct_row(w1, e);
    const int32_t *bias = (const int32_t *)mct_tensor(m, pw1->bias) + e;
    const int32_t *mult = (const int32_t *)mct_tensor(m, pw1->mult) + e;
    const int32_t *shift = (const int32_t *)mct_tensor(m, pw1->shift) + e;
    const uint32_t cin = x->c, step = RECOMPUTE_CHUNK / n;
    /* act_min < v < act_max as in mct_clamp_mask_save */
    const int32_t lo = pw1->act_min + 1, width = pw1->act_max - pw1->act_min - 1;
    const uint32_t span = width > 0 ? (uint32_t)width : 0u;
    int8_t y[RECOMPUTE_CHUNK];          /* [pixel][n] */
    for (uint32_t p0 = 0; p0 < hw; p0 += step) {
        const uint32_t np = hw - p0 < step ? hw - p0 : step;
#if MCT_REFERENCE
        for (uint32_t p = 0; p < np; p++) {
            const int8_t *xq = xp + (size_t)(p0 + p) * cin;
            for (uint32_t j = 0; j < n; j++) {
                int32_t acc = 0;        /* fits int32: fan-in checked on load */
                for (uint32_t i = 0; i < cin; i++) {
                    acc += (xq[i] - pw1->in0_zero) * w[(size_t)j * cin + i];
                }
                y[p * n + j] = mct_requant_s8((int64_t)bias[j] + acc, mult[j], shift[j], pw1->out_zero, pw1->act_min,
                    pw1->act_max);
            }
        }
#else
        const mct_hwc_quant_t q = { pw1->in0_zero, pw1->out_zero, pw1->act_min, pw1->act_max, bias, mult, shift };
        mct_pointwise_s8_hwc(xp + (size_t)p0 * cin, np, cin, w, n, &q, y, n);
#endif
        for (uint32_t j = 0; j < n; j++) {
            float *gj = g + (size_t)j * hw + p0;
            for (uint32_t p = 0; p < np; p++) {
                if ((uint32_t)(y[p * n + j] - lo) >= span) {
                    gj[p] = 0.0f;
                }
            }
        }
    }
}

/* No stochastic rounding: leave the stream's position alone. */
#define NO_POSITION 0xFFFFFFFFu

/* Output channels [o, o + n) (n = 1, 2 or 4) of the block's first conv, from their gradients g
 * ([n][hw]): each channel's bias, then its trained weights, each update at its place in the stream
 * of the op-by-op order (at: where the op's draws start, or NO_POSITION). When all n are trained,
 * their weight gradients are summed together, a chunk of input channels at a time. */
static uint32_t update_rows(mct_model_t *m, const mct_op_t *op, const draws_t *d, const mct_act_t *in,
    const mct_act_t *out, uint32_t o, uint32_t n, const float *g, uint32_t at, float lr) {
    const uint32_t hw = (uint32_t)out->h * out->w, row_len = in->c, n_rows = d->n_rows;
    const int together = n > 1 && o + n - 1 < n_rows;
    const int8_t *x = mct_act_data(m, in);
    uint32_t skipped = 0;
    for (uint32_t j = 0; j < n; j++) {
        if (at != NO_POSITION) {
            m->rng_counter = at + draws_before(d, o + j);
        }
        skipped += update_bias_from(m, op, o + j, g + (size_t)j * hw, hw, lr);
        if (!together && o + j < n_rows) {      /* one channel at a time */
            skipped += mct_update_conv_weight(m, op, in, x, out, o + j, g + (size_t)j * hw, lr);
        }
    }
    if (!together) {
        return skipped;
    }
    float t[4 * MCT_BWD_QUAD_CHUNK];                    /* [n][chunk] */
    int8_t *rows = mct_weight_rows(m, op->weight, row_len).sram + (size_t)o * row_len;
    void *shadow = mct_shadow(m, op->weight);
    const float *ws = (const float *)mct_tensor(m, op->wscale) + o;
    const uint32_t chunk = n == 4 ? MCT_BWD_QUAD_CHUNK : 2u * MCT_BWD_QUAD_CHUNK;
    for (uint32_t c0 = 0; c0 < row_len; c0 += chunk) {
        const uint32_t k = row_len - c0 < chunk ? row_len - c0 : chunk;
        if (n == 4) {
            mct_pw_weight_grad4_f32(hw, k, x + c0, in->c, op->in0_zero, g, t, chunk);
        } else {
            mct_pw_weight_grad2_f32(hw, k, x + c0, in->c, op->in0_zero, g, g + hw, t, t + chunk);
        }
        for (uint32_t j = 0; j < n; j++) {
            if (at != NO_POSITION) {
                m->rng_counter = at + draws_before(d, o + j) + d->bias + c0;
            }
            skipped += mct_apply_steps_s8(m, rows + (size_t)j * row_len + c0, shadow, (o + j) * row_len + c0, k,
                t + (size_t)j * chunk, lr, op->in0_scale, ws[j], m->qas);
        }
    }
    return skipped;
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
    const mct_rows_t w1 = mct_weight_rows(m, pw1.weight, x.c);
    const float *ws2 = (const float *)mct_tensor(m, pw2.wscale);
    const float *ws1 = (const float *)mct_tensor(m, pw1.wscale);
    const uint8_t *mask_d = mct_act_mask(m, &dx), *mask_e = mct_act_mask(m, &ex);
    /* stochastic rounding: the op-by-op order draws the head's numbers, then the depthwise
     * conv's, then the first conv's; each channel below starts where that order would be */
    const int stochastic = (m->train_flags & MCT_TRAIN_RULE_MASK) == MCT_RULE_STOCHASTIC;
    const draws_t d2 = draws_of(m, &pw2, dx.c), dd = draws_of(m, &dw, (uint32_t)dw.kh * dw.kw),
                  d1 = draws_of(m, &pw1, x.c);
    const uint32_t start = m->rng_counter;
    const uint32_t at_dw = start + draws_before(&d2, y.c);
    const uint32_t at_pw1 = at_dw + draws_before(&dd, dx.c);
    const uint32_t end = at_pw1 + draws_before(&d1, ex.c);
    /* the head's channels whose weights are not trained need their gradient only for their bias
     * and as g * w_scale (the factor of every input-gradient product): update the bias now, then
     * scale those rows in place, once instead of once per expanded channel */
    const uint32_t n2 = w2.n_sram;
    for (uint32_t o = n2; o < y.c; o++) {
        float *g = gy + (size_t)o * hw_d;
        if (stochastic) {
            m->rng_counter = start + draws_before(&d2, o);
        }
        m->skipped_updates += update_bias_from(m, &pw2, o, g, hw_d, lr);
        for (uint32_t i = 0; i < hw_d; i++) {
            g[i] = g[i] * ws2[o];
        }
    }
    /* two or four expanded channels at a time where their gradients fit on the stack: each
     * pointwise product then serves them all from one load of its operand (the same operations per
     * element); the head's and the depthwise conv's go two at a time */
    float tile[MCT_BWD_TILE];
    const int pairs = ge != NULL && mct_pointwise_op(&pw1) && pw1.groups == 1 && 2u * (hw_d + hw_e) <= MCT_BWD_TILE;
    const int quads = pairs && 2u * hw_d + 4u * hw_e <= MCT_BWD_TILE;
    for (uint32_t e = 0, n; e < dx.c; e += n) {
        n = quads && e + 3 < dx.c ? 4u : (pairs && e + 1 < dx.c ? 2u : 1u);
        float *gen = n > 1 ? tile + 2u * hw_d : ge;     /* [n][hw_e], or NULL */
        for (uint32_t h = 0, n2h; h < n; h += n2h) {
            n2h = n - h >= 2 ? 2u : 1u;
            const uint32_t eh = e + h;
            float *gdn = n > 1 ? tile : gd;             /* [n2h][hw_d] */
            /* the head's input gradient, channels eh..: sum over o of W2[o, eh] * (gy[o] * ws2[o]) */
            mct_zero_f32(gdn, n2h * hw_d);
            if (n2h == 2) {
                mct_pw_input_grad_col2_f32(hw_d, &w2, eh, 0, n2, gy, ws2, gdn, gdn + hw_d);
                mct_pw_input_grad_col2_f32(hw_d, &w2, eh, n2, y.c, gy, NULL, gdn, gdn + hw_d);
            } else {
                mct_pw_input_grad_col_f32(hw_d, &w2, eh, 0, n2, gy, ws2, gdn);
                mct_pw_input_grad_col_f32(hw_d, &w2, eh, n2, y.c, gy, NULL, gdn);
            }
            for (uint32_t j = 0; j < n2h; j++) {        /* the depthwise conv's backward, channel by channel */
                const uint32_t c = eh + j;
                float *gdc = gdn + (size_t)j * hw_d, *gec = gen != NULL ? gen + (size_t)(h + j) * hw_e : NULL;
                mct_clamp_mask_range_f32(mask_d, c * hw_d, hw_d, gdc);
                if (stochastic) {
                    m->rng_counter = at_dw + draws_before(&dd, c);
                }
                if (gec != NULL) {
                    mct_zero_f32(gec, hw_e);
                }
                m->skipped_updates += mct_dw_channel_backward_f32(m, &dw, &ex, &dx, c, gdc, gec, lr);
                if (gec != NULL && mask_e != NULL) {
                    mct_clamp_mask_range_f32(mask_e, c * hw_e, hw_e, gec);
                }
            }
        }
        if (ge == NULL) {
            continue;
        }
        if (mask_e == NULL) {       /* recomputed: the rows of SRAM and of Flash apart */
            const uint32_t split = e < w1.n_sram && w1.n_sram < e + n ? w1.n_sram - e : n;
            clamp_recomputed(m, &pw1, &x, &w1, e, split, hw_e, gen);
            if (split < n) {
                clamp_recomputed(m, &pw1, &x, &w1, e + split, n - split, hw_e, gen + (size_t)split * hw_e);
            }
        }
        /* the first conv's backward of channels e..e+n-1: its share of the block input's gradient
         * (channel e's products first for every element), then its updates */
        if (gx != NULL && n == 4) {
            const int8_t *const rows[4] = {mct_row(&w1, e), mct_row(&w1, e + 1), mct_row(&w1, e + 2),
                mct_row(&w1, e + 3)};
            mct_pw_input_grad4_f32(hw_e, x.c, rows, gen, ws1 + e, gx);
        } else if (gx != NULL && n == 2) {
            mct_pw_input_grad2_f32(hw_e, x.c, mct_row(&w1, e), mct_row(&w1, e + 1), gen, gen + hw_e, ws1[e],
                ws1[e + 1], gx);
        } else if (gx != NULL) {
            mct_conv2d_input_grad_f32(&pw1, &x, &ex, e, mct_row(&w1, e), gen, ws1[e], gx);
        }
        m->skipped_updates += update_rows(m, &pw1, &d1, &x, &ex, e, n, gen, stochastic ? at_pw1 : NO_POSITION, lr);
    }
    if (stochastic) {
        m->rng_counter = start;
    }
    for (uint32_t o = 0; o < n2; o++) {
        const float *g = gy + (size_t)o * hw_d;
        m->skipped_updates += update_bias_from(m, &pw2, o, g, hw_d, lr);
        m->skipped_updates += mct_update_conv_weight(m, &pw2, &dx, mct_act_data(m, &dx), &y, o, g, lr);
    }
    if (stochastic) {
        m->rng_counter = end;
    }
    return MCT_OK;
}
