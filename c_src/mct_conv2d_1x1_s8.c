/* int8 pointwise convolution (1x1, stride 1, no padding): most of a MobileNet's MACs.
 *
 * sum_c (x - x_zero) * w  ==  sum_c x * w  -  x_zero * sum_c w  exactly, so the inner loop works on
 * the raw int8 input. Four pixels of two output channels at a time (each input value loaded once for
 * eight products), then four (two) pixels of one channel: on cores with the DSP extension
 * (Cortex-M4/M7/M33, __ARM_FEATURE_DSP) two input channels per SMLAD, CMSIS-NN style; elsewhere, or
 * built with -DMCT_PORTABLE, the portable loops. Both are bit-exact with mct_conv2d_s8 and
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
/* (lo half of a, lo half of b) and (hi half of a, hi half of b): PKHBT, PKHTB (no ACLE intrinsic). */
static inline uint32_t pack_lo(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
/* SXTB16 of x rotated right by 8 (the odd bytes), in one instruction. */
static inline uint32_t sxtb16_ror8(uint32_t x) {
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
static inline uint32_t pack_hi(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__("pkhtb %0, %2, %1, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* Four pixels p..p+3: acc[i] = sum_c x[c, p+i] * w[c]; per two channels two word loads, each
 * unpacked by SXTB16 into (pixels p, p+2) and (p+1, p+3), regrouped by channel pair (PKHBT/PKHTB)
 * for four SMLADs. */
MCT_LOOP void dot4(const int8_t *x, uint32_t hw, const int8_t *w, uint32_t n, int32_t *acc) {
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    uint32_t c = 0;
    for (; c + 1 < n; c += 2) {
        uint32_t xa, xb;
        uint16_t wp;
        memcpy(&xa, x + (size_t)c * hw, 4);            /* x[c, p..p+3] */
        memcpy(&xb, x + (size_t)(c + 1) * hw, 4);      /* x[c+1, p..p+3] */
        memcpy(&wp, w + c, 2);
        const int16x2_t wv = __sxtb16((uint32_t)wp | ((uint32_t)wp << 8));   /* (w[c], w[c+1]) */
        const uint32_t a02 = (uint32_t)__sxtb16(xa), b02 = (uint32_t)__sxtb16(xb);
        const uint32_t a13 = sxtb16_ror8(xa), b13 = sxtb16_ror8(xb);
        a0 = __smlad((int16x2_t)pack_lo(a02, b02), wv, a0);     /* (x[c,p], x[c+1,p]) */
        a1 = __smlad((int16x2_t)pack_lo(a13, b13), wv, a1);
        a2 = __smlad((int16x2_t)pack_hi(a02, b02), wv, a2);
        a3 = __smlad((int16x2_t)pack_hi(a13, b13), wv, a3);
    }
    for (; c < n; c++) {
        const int8_t *xc = x + (size_t)c * hw;
        a0 += xc[0] * w[c];
        a1 += xc[1] * w[c];
        a2 += xc[2] * w[c];
        a3 += xc[3] * w[c];
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#else
/* Four pixels p..p+3: acc[i] = sum_c x[c, p+i] * w[c] (one weight load for four products). */
MCT_LOOP void dot4(const int8_t *x, uint32_t hw, const int8_t *w, uint32_t n, int32_t *acc) {
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (uint32_t c = 0; c < n; c++, x += hw) {
        const int32_t wc = w[c];
        a0 += x[0] * wc;
        a1 += x[1] * wc;
        a2 += x[2] * wc;
        a3 += x[3] * wc;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

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

/* Four pixels of two output channels (weights w0, w1): acc[i] and acc[4 + i]; each input value
 * loaded once for both. Plain C on every core: in this channel-planar layout an SMLAD version spends
 * what it saves on unpacking and regrouping (SXTB16, PKHBT/PKHTB) and on spilled accumulators (make
 * bench-mcu measured more instructions than this loop on qemu-m7). */
MCT_LOOP void dot4x2(const int8_t *x, uint32_t hw, const int8_t *w0, const int8_t *w1, uint32_t n, int32_t *acc) {
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
    for (uint32_t c = 0; c < n; c++, x += hw) {
        const int32_t v = w0[c], u = w1[c];
        int32_t t = x[0];
        a0 += t * v;
        b0 += t * u;
        t = x[1];
        a1 += t * v;
        b1 += t * u;
        t = x[2];
        a2 += t * v;
        b2 += t * u;
        t = x[3];
        a3 += t * v;
        b3 += t * u;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    acc[4] = b0;
    acc[5] = b1;
    acc[6] = b2;
    acc[7] = b3;
}

/* Output channel o over n consecutive pixels: x at their first input pixel, channels ch apart.
 * acc = dot - x_zero * sum(w) fits int32 (fan-in checked on load), so it is computed modulo 2^32. */
static void pixels(const int8_t *x, uint32_t ch, uint32_t n, const int8_t *w, uint32_t cpg, uint32_t xzw,
    const mct_rq_t *q, int8_t *y) {
    uint32_t p = 0;
    for (; p + 3 < n && !MCT_REFERENCE; p += 4) {
        int32_t a[4];               /* raw dot products fit int32: fan-in checked on load */
        dot4(x + p, ch, w, cpg, a);
        mct_rq_run(q, a, 4, xzw, y + p);
    }
    for (; p + 1 < n; p += 2) {
        int32_t a[2] = { 0, 0 };    /* raw dot products fit int32: fan-in checked on load */
        dot2(x + p, ch, w, cpg, &a[0], &a[1]);
        mct_rq_run(q, a, 2, xzw, y + p);
    }
    if (p < n) {
        int32_t a = 0;
        for (uint32_t c = 0; c < cpg; c++) {
            a += x[(size_t)c * ch + p] * w[c];
        }
        mct_rq_run(q, &a, 1, xzw, y + p);
    }
}

/* Output channel pairs: not on Cortex-M0 (ARMv6-M: eight low registers, the pair loop spills) nor in
 * the reference build. */
#if defined(__ARM_ARCH_6M__) || MCT_REFERENCE
#define PAIRS 0
#else
#define PAIRS 1
#endif

/* Output channels o and o + 1 (same group) over n consecutive pixels: four pixels of both at a time
 * (dot4x2), the rest channel by channel. */
static void pixels2(const int8_t *x, uint32_t ch, uint32_t n, const int8_t *w0, const int8_t *w1, uint32_t cpg,
    const uint32_t *xzw, const mct_rq_t *q, int8_t *y0, int8_t *y1) {
    uint32_t p = 0;
    for (; p + 3 < n; p += 4) {
        int32_t a[8];
        dot4x2(x + p, ch, w0, w1, cpg, a);
        mct_rq_run(&q[0], a, 4, xzw[0], y0 + p);
        mct_rq_run(&q[1], a + 4, 4, xzw[1], y1 + p);
    }
    if (p < n) {
        pixels(x + p, ch, n - p, w0, cpg, xzw[0], &q[0], y0 + p);
        pixels(x + p, ch, n - p, w1, cpg, xzw[1], &q[1], y1 + p);
    }
}

void mct_conv2d_1x1_s8(const mct_op_t *op, const mct_act_t *in, const mct_view_t *x, const mct_act_t *out,
    const mct_view_t *y, const mct_rows_t *weight, const int32_t *bias, const int32_t *mult, const int32_t *shift) {
    const uint32_t cpg = in->c / op->groups, opg = out->c / op->groups;
    /* input and output windows with the same pixels in the same order: one run of h*w pixels */
    const int one_run = mct_view_contiguous(x) && mct_view_contiguous(y) && x->y0 == y->y0 && x->x0 == y->x0 &&
        x->h == y->h && x->w == y->w;
    const uint32_t rows = one_run ? 1 : y->h, run = one_run ? y->h * y->w : y->w;
    for (uint32_t o = 0; o < out->c;) {
        const int8_t *xg = x->data + (size_t)(o / opg) * cpg * x->ch_stride;
        /* two output channels at a time where both read the same group */
        const uint32_t k = (o + 1 < out->c && (o + 1) / opg == o / opg && PAIRS) ? 2 : 1;
        const int8_t *w[2];
        uint32_t xzw[2];
        mct_rq_t q[2];
        for (uint32_t j = 0; j < k; j++) {
            w[j] = mct_row(weight, o + j);
            int32_t wsum = 0;
            for (uint32_t c = 0; c < cpg; c++) {
                wsum += w[j][c];
            }
            xzw[j] = (uint32_t)op->in0_zero * (uint32_t)wsum;
            mct_rq_init(&q[j], bias[o + j], mct_acc_bound(cpg, op->in0_zero), mult[o + j], shift[o + j], op->out_zero,
                op->act_min, op->act_max);
        }
        for (uint32_t r = 0; r < rows; r++) {
            const int8_t *xr = xg + (size_t)(y->y0 + (int32_t)r - x->y0) * x->row_stride + (size_t)(y->x0 - x->x0);
            int8_t *yr = y->data + (size_t)o * y->ch_stride + (size_t)r * y->row_stride;
            if (k == 2) {
                pixels2(xr, x->ch_stride, run, w[0], w[1], cpg, xzw, q, yr, yr + y->ch_stride);
            } else {
                pixels(xr, x->ch_stride, run, w[0], cpg, xzw[0], &q[0], yr);
            }
        }
        o += k;
    }
}
