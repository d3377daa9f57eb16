/* int8 depthwise convolution (groups == C_in == C_out: one input channel per output channel), any
 * kernel, stride and padding, fused bias, requantization and clamp; on windows (mct_view_t) like
 * mct_conv2d_s8, and bit-exact with it.
 *
 * Per channel, the outputs whose kernel window lies inside the input (the interior: all but a
 * border of about k/2) take a loop with no bounds checks, on the raw int8 input with the zero point
 * folded in: sum (x - x_zero) * w == sum x * w - x_zero * sum w. 3x3 windows are unrolled, two
 * outputs at a time at stride 1 (they share two of their three input columns); on cores with the
 * DSP extension (__ARM_FEATURE_DSP, not MCT_PORTABLE) each kernel row of those two outputs is one
 * word load, two SXTB16 and four SMLAD. The border outputs clip their window to the input.
 * -DMCT_REFERENCE_KERNELS (the benchmarks' baseline) sends every depthwise conv to mct_conv2d_s8. */
#include "mct_internal.h"
#include "mct_requant.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(MCT_PORTABLE)
#define MCT_DW_SIMD 1
#include <arm_acle.h>
#endif

/* One output whose window is clipped to the input rows [ky0, ky1) x columns [kx0, kx1) of the
 * kernel; xp at the window's first tap inside the input. */
static int32_t clipped(const int8_t *xp, uint32_t rs, const int8_t *w, int32_t kw, int32_t ky0, int32_t ky1,
    int32_t kx0, int32_t kx1, int32_t xz) {
    int32_t acc = 0;
    for (int32_t ky = ky0; ky < ky1; ky++) {
        const int8_t *xr = xp + (size_t)(ky - ky0) * rs;
        const int8_t *wr = w + ky * kw;
        for (int32_t kx = kx0; kx < kx1; kx++) {
            acc += (xr[kx - kx0] - xz) * wr[kx];
        }
    }
    return acc;
}

/* Interior outputs of one row, general kernel: n outputs, the first window at xp, windows sw apart. */
MCT_LOOP void interior(const int8_t *xp, uint32_t rs, int32_t sw, const int8_t *w, int32_t kh, int32_t kw,
    uint32_t n, uint32_t xzw, const mct_rq_t *q, int8_t *y) {
    for (uint32_t i = 0; i < n; i++, xp += sw) {
        int32_t acc = 0;
        for (int32_t ky = 0; ky < kh; ky++) {
            const int8_t *xr = xp + (size_t)ky * rs;
            const int8_t *wr = w + ky * kw;
            for (int32_t kx = 0; kx < kw; kx++) {
                acc += xr[kx] * wr[kx];
            }
        }
        mct_rq_run(q, &acc, 1, xzw, y + i);
    }
}

#ifdef MCT_DW_SIMD
static inline uint32_t load32(const int8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);       /* an unaligned word load (LDR) on Cortex-M3/M4/M7 */
    return v;
}
#endif

/* Interior outputs of one row, 3x3: n outputs, the first window at xp, windows sw apart. */
MCT_LOOP void interior3x3(const int8_t *xp, uint32_t rs, int32_t sw, const int8_t *w, uint32_t n, uint32_t xzw,
    const mct_rq_t *q, int8_t *y) {
    const int8_t *x0 = xp, *x1 = xp + rs, *x2 = xp + 2 * (size_t)rs;
    uint32_t i = 0;
    if (sw == 1) {
#ifdef MCT_DW_SIMD
        /* per kernel row: x = [a b c d] gives (a, c) and (b, d); out0 = a w0 + b w1 + c w2 =
         * smlad((a,c),(w0,w2)) + smlad((b,d),(w1,0)), out1 = b w0 + c w1 + d w2 =
         * smlad((b,d),(w0,w2)) + smlad((a,c),(0,w1)) */
        uint32_t w02[3], w1l[3], w1h[3];
        for (int r = 0; r < 3; r++) {
            w02[r] = ((uint32_t)(uint8_t)w[3 * r] | ((uint32_t)(uint8_t)w[3 * r + 2] << 16));
            w02[r] = __sxtb16(w02[r]);
            w1l[r] = __sxtb16((uint32_t)(uint8_t)w[3 * r + 1]);
            w1h[r] = w1l[r] << 16;
        }
        for (; i + 1 < n; i += 2, x0 += 2, x1 += 2, x2 += 2) {
            int32_t a0 = 0, a1 = 0;
            uint32_t v = load32(x0);
            int16x2_t ac = __sxtb16(v), bd = __sxtb16((v >> 8) | (v << 24));
            a0 = __smlad(ac, w02[0], __smlad(bd, w1l[0], a0));
            a1 = __smlad(bd, w02[0], __smlad(ac, w1h[0], a1));
            v = load32(x1);
            ac = __sxtb16(v);
            bd = __sxtb16((v >> 8) | (v << 24));
            a0 = __smlad(ac, w02[1], __smlad(bd, w1l[1], a0));
            a1 = __smlad(bd, w02[1], __smlad(ac, w1h[1], a1));
            v = load32(x2);
            ac = __sxtb16(v);
            bd = __sxtb16((v >> 8) | (v << 24));
            a0 = __smlad(ac, w02[2], __smlad(bd, w1l[2], a0));
            a1 = __smlad(bd, w02[2], __smlad(ac, w1h[2], a1));
            const int32_t two[2] = { a0, a1 };
            mct_rq_run(q, two, 2, xzw, y + i);
        }
#else
        const int32_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6], w7 = w[7],
            w8 = w[8];
        for (; i + 1 < n; i += 2, x0 += 2, x1 += 2, x2 += 2) {
            int32_t a = x0[1], b = x0[2];
            int32_t a0 = x0[0] * w0 + a * w1 + b * w2;
            int32_t a1 = a * w0 + b * w1 + x0[3] * w2;
            a = x1[1];
            b = x1[2];
            a0 += x1[0] * w3 + a * w4 + b * w5;
            a1 += a * w3 + b * w4 + x1[3] * w5;
            a = x2[1];
            b = x2[2];
            a0 += x2[0] * w6 + a * w7 + b * w8;
            a1 += a * w6 + b * w7 + x2[3] * w8;
            const int32_t two[2] = { a0, a1 };
            mct_rq_run(q, two, 2, xzw, y + i);
        }
#endif
    }
    const int32_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6], w7 = w[7], w8 = w[8];
    for (; i < n; i++, x0 += sw, x1 += sw, x2 += sw) {
        const int32_t acc = x0[0] * w0 + x0[1] * w1 + x0[2] * w2 + x1[0] * w3 + x1[1] * w4 + x1[2] * w5 +
            x2[0] * w6 + x2[1] * w7 + x2[2] * w8;
        mct_rq_run(q, &acc, 1, xzw, y + i);
    }
}

static inline int32_t imax(int32_t a, int32_t b) {
    return a > b ? a : b;
}
static inline int32_t imin(int32_t a, int32_t b) {
    return a < b ? a : b;
}

void mct_depthwise_conv_s8(const mct_op_t *op, const mct_act_t *in, const mct_view_t *x, const mct_act_t *out,
    const mct_view_t *y, const mct_rows_t *weight, const int32_t *bias, const int32_t *mult, const int32_t *shift) {
#ifdef MCT_REFERENCE_KERNELS
    /* the baseline build of the benchmarks: the general kernel, as before this one existed */
    mct_conv2d_s8(op, in, x, out, y, weight, bias, mult, shift);
    return;
#endif
    (void)out;
    const int32_t kh = op->kh, kw = op->kw, sh = op->sh, sw = op->sw, xz = op->in0_zero;
    const uint32_t rs = x->row_stride;
    /* the columns of y whose windows lie inside the input's columns: [c0, c1) */
    uint32_t c0 = y->w, c1 = y->w;
    for (uint32_t col = 0; col < y->w; col++) {
        const int32_t ix0 = (y->x0 + (int32_t)col) * sw - op->pw;
        if (ix0 >= 0 && ix0 + kw <= (int32_t)in->w) {
            c0 = c0 < col ? c0 : col;
            c1 = col + 1;
        }
    }
    c1 = c1 > c0 ? c1 : c0;
    for (uint32_t c = 0; c < in->c; c++) {
        const int8_t *w = mct_row(weight, c);
        int32_t wsum = 0;
        for (int32_t i = 0; i < kh * kw; i++) {
            wsum += w[i];
        }
        const uint32_t xzw = (uint32_t)xz * (uint32_t)wsum;
        mct_rq_t q;
        mct_rq_init(&q, bias[c], mct_acc_bound((uint64_t)kh * kw, xz), mult[c], shift[c], op->out_zero,
            op->act_min, op->act_max);
        const int8_t *xc = x->data + (size_t)c * x->ch_stride;
        int8_t *yc = y->data + (size_t)c * y->ch_stride;
        for (uint32_t r = 0; r < y->h; r++) {
            const int32_t iy0 = (y->y0 + (int32_t)r) * sh - op->ph;
            const int32_t ky0 = imax(0, -iy0), ky1 = imin(kh, (int32_t)in->h - iy0);
            const int inside = ky0 == 0 && ky1 == kh;
            const uint32_t lo = inside ? c0 : y->w, hi = inside ? c1 : y->w;
            int8_t *yr = yc + (size_t)r * y->row_stride;
            if (lo < hi) {
                const int8_t *xp = xc + (size_t)(iy0 - x->y0) * rs +
                    (size_t)((y->x0 + (int32_t)lo) * sw - op->pw - x->x0);
                if (kh == 3 && kw == 3) {
                    interior3x3(xp, rs, sw, w, hi - lo, xzw, &q, yr + lo);
                } else {
                    interior(xp, rs, sw, w, kh, kw, hi - lo, xzw, &q, yr + lo);
                }
            }
            for (uint32_t col = 0; col < y->w; col++) {
                if (col == lo && lo < hi) {
                    col = hi - 1;       /* the interior is done */
                    continue;
                }
                const int32_t ix0 = (y->x0 + (int32_t)col) * sw - op->pw;
                const int32_t kx0 = imax(0, -ix0), kx1 = imin(kw, (int32_t)in->w - ix0);
                int32_t acc = 0;
                if (ky0 < ky1 && kx0 < kx1) {
                    const int8_t *xp = xc + (size_t)(iy0 + ky0 - x->y0) * rs + (size_t)(ix0 + kx0 - x->x0);
                    acc = clipped(xp, rs, w, kw, ky0, ky1, kx0, kx1, xz);
                }
                mct_rq_run(&q, &acc, 1, 0, yr + col);
            }
        }
    }
}
