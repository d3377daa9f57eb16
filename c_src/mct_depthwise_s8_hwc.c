/* int8 depthwise convolution on channels-last activations (any KH x KW, strides, padding): a block of
 * channels at a time over every output pixel, the block's accumulators in registers across the taps.
 * DSP cores: four channels per word load, SXTAB16 subtracting x_zero while it unpacks (so padded taps
 * are simply skipped), SMLABB/SMLATT per channel. Portable: interior pixels multiply raw int8 values
 * (x_zero * sum(w) folded into the accumulator's start), border pixels subtract x_zero per tap; the
 * block is 16 channels where the host has SIMD (GCC/Clang vectorize the channel loop), else 4. */
#include "mct_kernels_hwc.h"
#include <stddef.h>
#include "mct_gemm_s8_hwc.h"

#if MCT_HWC_DSP
#define BLOCK 4u
#elif defined(__SSE2__) || defined(__ARM_NEON)
#define BLOCK 16u
#else
#define BLOCK 4u
#endif

/* acc[i] += sum over the taps [ky0, ky1) x [kx0, kx1) of (x - xz) * w, channels i < nb. xp and wp
 * point at tap (0, 0) of the block's first channel; rs is the input's row stride, c its pixel stride. */
MCT_HOT void taps(const int8_t *xp, uint32_t rs, uint32_t c, const int8_t *wp, uint32_t kw, uint32_t ky0,
    uint32_t ky1, uint32_t kx0, uint32_t kx1, int32_t xz, uint32_t nb, int32_t *acc) {
    for (uint32_t ky = ky0; ky < ky1; ky++) {
        const int8_t *xr = xp + (size_t)ky * rs, *wr = wp + (size_t)ky * kw * c;
        for (uint32_t kx = kx0; kx < kx1; kx++) {
            const int8_t *xt = xr + (size_t)kx * c, *wt = wr + (size_t)kx * c;
            for (uint32_t i = 0; i < nb; i++) {
                acc[i] += (xt[i] - xz) * wt[i];
            }
        }
    }
}

#if MCT_HWC_DSP
#define TAPS_MAX 49u        /* the DSP path's kernels: up to 7x7 (larger ones take the portable path) */

static inline int16x2_t sxtab16_ror8(int16x2_t a, uint32_t x) {
    int16x2_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

/* One tap of four channels: (x - x_zero) by SXTAB16, times the unpacked weights (w02: channels 0 and 2,
 * w13: 1 and 3). One asm block: the compiler keeps the tap's eight instructions together instead of
 * hoisting every tap's unpacking ahead of the products (which spills at -O2). */
static inline void tap4(uint32_t xv, int16x2_t xz2, int16x2_t w02, int16x2_t w13, int32_t *a0, int32_t *a1,
    int32_t *a2, int32_t *a3) {
    int32_t e, o;
    __asm__("sxtab16 %[e], %[z], %[x]\n\t"
            "sxtab16 %[o], %[z], %[x], ror #8\n\t"
            "smlabb %[a0], %[e], %[w02], %[a0]\n\t"
            "smlatt %[a2], %[e], %[w02], %[a2]\n\t"
            "smlabb %[a1], %[o], %[w13], %[a1]\n\t"
            "smlatt %[a3], %[o], %[w13], %[a3]"
            : [a0] "+r"(*a0), [a1] "+r"(*a1), [a2] "+r"(*a2), [a3] "+r"(*a3), [e] "=&r"(e), [o] "=&r"(o)
            : [x] "r"(xv), [z] "r"(xz2), [w02] "r"(w02), [w13] "r"(w13));
}

/* The taps [ky0, ky1) x [kx0, kx1) of four channels; wq: the block's weights unpacked, two words a tap. */
MCT_HOT void taps4(const int8_t *xp, uint32_t rs, uint32_t c, const int16x2_t *wq, uint32_t kw, uint32_t ky0,
    uint32_t ky1, uint32_t kx0, uint32_t kx1, int16x2_t xz2, int32_t *acc) {
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (uint32_t ky = ky0; ky < ky1; ky++) {
        const int8_t *xt = xp + (size_t)ky * rs + (size_t)kx0 * c;
        const int16x2_t *wt = wq + 2 * (ky * kw + kx0);
        for (uint32_t kx = kx0; kx < kx1; kx++, xt += c, wt += 2) {
            tap4(mct_hwc_rd32(xt), xz2, wt[0], wt[1], &a0, &a1, &a2, &a3);
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* n consecutive interior output pixels (the whole 3x3 window inside the input) of four channels, step
 * bytes apart in the input and ystep in the output: per tap one word load of the input, SXTAB16 (x -
 * x_zero), and the weights already unpacked (wq: (c0, c2) and (c1, c3) of each tap), four SMLAxy. */
MCT_LOOP void run3x3(const int8_t *xp, uint32_t rs, uint32_t c, uint32_t step, uint32_t n, const int16x2_t *wq,
    int16x2_t xz2, const int32_t *bias, const mct_hwc_rqc_t *rc, int32_t lo, int32_t hi, int8_t *y, uint32_t ystep) {
    for (; n; n--, xp += step, y += ystep) {
        int32_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
        const int8_t *xr = xp;
#pragma GCC unroll 3
        for (uint32_t r = 0; r < 3; r++, xr += rs) {
#pragma GCC unroll 3
            for (uint32_t k = 0; k < 3; k++) {
                tap4(mct_hwc_rd32(xr + k * c), xz2, wq[2 * (3 * r + k)], wq[2 * (3 * r + k) + 1], &a0, &a1, &a2, &a3);
            }
        }
        y[0] = mct_hwc_rq_lean(&rc[0], a0, lo, hi);
        y[1] = mct_hwc_rq_lean(&rc[1], a1, lo, hi);
        y[2] = mct_hwc_rq_lean(&rc[2], a2, lo, hi);
        y[3] = mct_hwc_rq_lean(&rc[3], a3, lo, hi);
    }
}
#endif

static inline uint32_t first_tap(int32_t at) {
    return at < 0 ? (uint32_t)-at : 0;
}
static inline uint32_t end_tap(int32_t at, uint32_t k, uint32_t n) {
    return at + (int32_t)k > (int32_t)n ? (uint32_t)((int32_t)n - at) : k;
}

/* Channels c0 .. c0 + nb - 1 over every output pixel. */
MCT_LOOP void block(const int8_t *x, const mct_hwc_geom_t *g, const int8_t *w, const mct_hwc_quant_t *q,
    uint32_t c0, uint32_t nb, int8_t *y) {
    const uint32_t c = g->in_c, rs = g->in_w * c, taps_n = g->kh * g->kw;
    mct_rq_t rq[BLOCK];
    mct_hwc_rqc_t rc[BLOCK];
    int32_t start[BLOCK];       /* an interior pixel's accumulator start: bias - x_zero * sum(w) */
    int lean = 1;
    for (uint32_t i = 0; i < nb; i++) {
        const uint64_t bound = mct_acc_bound(taps_n, q->x_zero);
        mct_rq_init(&rq[i], q->bias[c0 + i], bound, q->mult[c0 + i], q->shift[c0 + i], q->y_zero, q->act_min,
            q->act_max);
        lean = mct_hwc_rq_prepare(&rc[i], &rq[i], q->bias[c0 + i], bound) && lean;
        int32_t s = 0;
        for (uint32_t t = 0; t < taps_n && (!MCT_HWC_DSP || nb != BLOCK); t++) {
            s += w[(size_t)t * c + c0 + i];
        }
        start[i] = (int32_t)((uint32_t)q->bias[c0 + i] - (uint32_t)q->x_zero * (uint32_t)s);
    }
#if MCT_HWC_DSP
    const int16x2_t xz2 = (int16x2_t)(((uint32_t)-q->x_zero & 0xFFFFu) * 0x10001u);
#endif
#if MCT_HWC_DSP
    /* four channels: the weights unpacked once; a 3x3 kernel on the lean path: interior runs by run3x3 */
    const int quad = nb == BLOCK && taps_n <= TAPS_MAX;
    const int runs = quad && lean && g->kh == 3 && g->kw == 3;
    int16x2_t wq[2 * TAPS_MAX];
    if (quad) {
        for (uint32_t t = 0; t < taps_n; t++) {
            const uint32_t v = mct_hwc_rd32(w + (size_t)t * c + c0);
            wq[2 * t] = __sxtb16((int8x4_t)v);
            wq[2 * t + 1] = mct_sxtb16_ror8(v);
        }
    }
    /* the last output column whose window lies inside the input (when pad_w + in_w >= 3) */
    const int32_t last_in = ((int32_t)g->in_w - 3 + (int32_t)g->pad_w) / (int32_t)g->stride_w;
#endif
    int8_t *yp = y + c0;
    for (uint32_t oy = 0; oy < g->out_h; oy++) {
        const int32_t iy = (int32_t)(oy * g->stride_h) - (int32_t)g->pad_h;
        const uint32_t ky0 = first_tap(iy), ky1 = end_tap(iy, g->kh, g->in_h);
        for (uint32_t ox = 0; ox < g->out_w;) {
            const int32_t ix = (int32_t)(ox * g->stride_w) - (int32_t)g->pad_w;
            const uint32_t kx0 = first_tap(ix), kx1 = end_tap(ix, g->kw, g->in_w);
            /* tap (0, 0) of this pixel: outside the input where padded, only taps inside are read */
            const int8_t *xp = x + (ptrdiff_t)iy * (ptrdiff_t)rs + (ptrdiff_t)ix * (ptrdiff_t)c + c0;
            const int inside = ky0 == 0 && kx0 == 0 && ky1 == g->kh && kx1 == g->kw;
#if MCT_HWC_DSP
            if (runs && inside) {
                const uint32_t n = (uint32_t)(last_in < (int32_t)g->out_w - 1 ? last_in : (int32_t)g->out_w - 1) + 1 - ox;
                run3x3(xp, rs, c, g->stride_w * c, n, wq, xz2, q->bias + c0, rc, q->act_min, q->act_max, yp, c);
                ox += n;
                yp += (size_t)n * c;
                continue;
            }
#endif
            int32_t acc[BLOCK];
#if MCT_HWC_DSP
            if (quad) {
                for (uint32_t i = 0; i < BLOCK; i++) {
                    acc[i] = q->bias[c0 + i];
                }
                taps4(xp, rs, c, wq, g->kw, ky0, ky1, kx0, kx1, xz2, acc);
            } else
#endif
            if (nb == BLOCK && inside) {
                for (uint32_t i = 0; i < BLOCK; i++) {
                    acc[i] = start[i];
                }
                taps(xp, rs, c, w + c0, g->kw, 0, g->kh, 0, g->kw, 0, BLOCK, acc);
            } else {
                for (uint32_t i = 0; i < nb; i++) {
                    acc[i] = q->bias[c0 + i];
                }
                taps(xp, rs, c, w + c0, g->kw, ky0, ky1, kx0, kx1, q->x_zero, nb, acc);
            }
            for (uint32_t i = 0; i < nb; i++) {
                yp[i] = mct_hwc_rq(&rc[i], &rq[i], lean, acc[i]);
            }
            ox++;
            yp += c;
        }
    }
}

void mct_depthwise_s8_hwc(const int8_t *x, const mct_hwc_geom_t *g, const int8_t *w, const mct_hwc_quant_t *q,
    int8_t *y) {
    for (uint32_t c0 = 0; c0 < g->in_c; c0 += BLOCK) {
        block(x, g, w, q, c0, g->in_c - c0 < BLOCK ? g->in_c - c0 : BLOCK, y);
    }
}
