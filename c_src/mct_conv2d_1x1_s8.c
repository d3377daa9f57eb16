/* int8 pointwise convolution (1x1, stride 1, no padding): most of a MobileNet's MACs.
 *
 * sum_c (x - x_zero) * w  ==  sum_c x * w  -  x_zero * sum_c w  exactly, so the inner loop works on
 * the raw int8 input. Two pixels of one output channel at a time: on cores with the DSP extension
 * (Cortex-M4/M7/M33, __ARM_FEATURE_DSP) two channels per SMLAD, CMSIS-NN style; elsewhere, or
 * built with -DMCT_PORTABLE, the portable loop below. Both are bit-exact with mct_conv2d_s8 and
 * the host reference. */
#include "mct_internal.h"
#include "mct_requant.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(MCT_PORTABLE)
#include <arm_acle.h>

/* Two pixels (p, p+1) of output channel o: acc0, acc1 += sum_c x[c, p(+1)] * w[c]. */
static void dot2(const int8_t *x, uint32_t hw, const int8_t *w, uint32_t n, int32_t *acc0, int32_t *acc1) {
    int32_t a0 = *acc0, a1 = *acc1;
    uint32_t c = 0;
    for (; c + 1 < n; c += 2) {
        uint16_t lo, hi, wp;
        memcpy(&lo, x + (size_t)c * hw, 2);            /* x[c, p], x[c, p+1] */
        memcpy(&hi, x + (size_t)(c + 1) * hw, 2);      /* x[c+1, p], x[c+1, p+1] */
        memcpy(&wp, w + c, 2);                         /* w[c], w[c+1] */
        const uint32_t xs = (uint32_t)lo | ((uint32_t)hi << 16);
        const int16x2_t xp0 = __sxtb16(xs);                    /* (x[c,p],   x[c+1,p])   */
        const int16x2_t xp1 = __sxtb16((xs >> 8) | (xs << 24));   /* (x[c,p+1], x[c+1,p+1]) */
        const int16x2_t wv = __sxtb16((uint32_t)wp | ((uint32_t)wp << 8));   /* (w[c], w[c+1]) */
        a0 = __smlad(xp0, wv, a0);
        a1 = __smlad(xp1, wv, a1);
    }
    for (; c < n; c++) {
        a0 += x[(size_t)c * hw] * w[c];
        a1 += x[(size_t)c * hw + 1] * w[c];
    }
    *acc0 = a0;
    *acc1 = a1;
}
#else
static void dot2(const int8_t *x, uint32_t hw, const int8_t *w, uint32_t n, int32_t *acc0, int32_t *acc1) {
    int32_t a0 = *acc0, a1 = *acc1;
    for (uint32_t c = 0; c < n; c++) {
        a0 += x[(size_t)c * hw] * w[c];
        a1 += x[(size_t)c * hw + 1] * w[c];
    }
    *acc0 = a0;
    *acc1 = a1;
}
#endif

/* acc = bias - x_zero * sum(w) + dot in 64 bits: a trained bias may sit at its clamp (+-2^31) */
static inline int8_t finish(const mct_op_t *op, int64_t acc, int32_t mult, int32_t shift) {
    return mct_requant_s8(acc, mult, shift, op->out_zero, op->act_min, op->act_max);
}

/* Output channel o over n consecutive pixels: x at their first input pixel, channels ch apart. */
static void pixels(const mct_op_t *op, const int8_t *x, uint32_t ch, uint32_t n, const int8_t *w, uint32_t cpg,
    int64_t base, int32_t mult, int32_t shift, int8_t *y) {
    uint32_t p = 0;
    for (; p + 1 < n; p += 2) {
        int32_t a0 = 0, a1 = 0;     /* raw dot products fit int32: fan-in checked on load */
        dot2(x + p, ch, w, cpg, &a0, &a1);
        y[p] = finish(op, base + a0, mult, shift);
        y[p + 1] = finish(op, base + a1, mult, shift);
    }
    if (p < n) {
        int32_t a = 0;
        for (uint32_t c = 0; c < cpg; c++) {
            a += x[(size_t)c * ch + p] * w[c];
        }
        y[p] = finish(op, base + a, mult, shift);
    }
}

void mct_conv2d_1x1_s8(const mct_op_t *op, const mct_act_t *in, const mct_view_t *x, const mct_act_t *out,
    const mct_view_t *y, const mct_rows_t *weight, const int32_t *bias, const int32_t *mult, const int32_t *shift) {
    const uint32_t cpg = in->c / op->groups, opg = out->c / op->groups;
    /* input and output windows with the same pixels in the same order: one run of h*w pixels */
    const int one_run = mct_view_contiguous(x) && mct_view_contiguous(y) && x->y0 == y->y0 && x->x0 == y->x0 &&
        x->h == y->h && x->w == y->w;
    const uint32_t rows = one_run ? 1 : y->h, run = one_run ? y->h * y->w : y->w;
    for (uint32_t o = 0; o < out->c; o++) {
        const int8_t *xg = x->data + (size_t)(o / opg) * cpg * x->ch_stride;
        const int8_t *w = mct_row(weight, o);
        int32_t wsum = 0;
        for (uint32_t c = 0; c < cpg; c++) {
            wsum += w[c];
        }
        const int64_t base = (int64_t)bias[o] - (int64_t)op->in0_zero * wsum;
        for (uint32_t r = 0; r < rows; r++) {
            const int8_t *xr = xg + (size_t)(y->y0 + (int32_t)r - x->y0) * x->row_stride + (size_t)(y->x0 - x->x0);
            pixels(op, xr, x->ch_stride, run, w, cpg, base, mult[o], shift[o],
                y->data + (size_t)o * y->ch_stride + (size_t)r * y->row_stride);
        }
    }
}
