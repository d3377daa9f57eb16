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

void mct_conv2d_1x1_s8(const mct_op_t *op, const mct_act_t *in, const int8_t *x, const mct_act_t *out,
    int8_t *y, const mct_rows_t *weight, const int32_t *bias, const int32_t *mult, const int32_t *shift) {
    const uint32_t cpg = in->c / op->groups, opg = out->c / op->groups;
    const uint32_t hw = (uint32_t)in->h * in->w;
    for (uint32_t o = 0; o < out->c; o++) {
        const int8_t *xg = x + (size_t)(o / opg) * cpg * hw;
        const int8_t *w = mct_row(weight, o);
        int32_t wsum = 0;
        for (uint32_t c = 0; c < cpg; c++) {
            wsum += w[c];
        }
        const int64_t base = (int64_t)bias[o] - (int64_t)op->in0_zero * wsum;
        int8_t *yo = y + (size_t)o * hw;
        uint32_t p = 0;
        for (; p + 1 < hw; p += 2) {
            int32_t a0 = 0, a1 = 0;     /* raw dot products fit int32: fan-in checked on load */
            dot2(xg + p, hw, w, cpg, &a0, &a1);
            yo[p] = finish(op, base + a0, mult[o], shift[o]);
            yo[p + 1] = finish(op, base + a1, mult[o], shift[o]);
        }
        if (p < hw) {
            int32_t a = 0;
            for (uint32_t c = 0; c < cpg; c++) {
                a += xg[(size_t)c * hw + p] * w[c];
            }
            yo[p] = finish(op, base + a, mult[o], shift[o]);
        }
    }
}
