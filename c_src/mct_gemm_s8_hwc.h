/* The int8 GEMM core of the channels-last kernels (mct_pointwise_s8_hwc.c, mct_conv_s8_hwc.c): raw dot
 * products of two input rows (pixels) with two weight rows (output channels), both contiguous.
 * x_zero is folded out by the caller (acc starts at -x_zero * sum(w), modulo 2^32), so the inner loop
 * multiplies the raw int8 values: on DSP cores four input channels per step with two word loads per
 * operand, SXTB16 into (c0, c2) and (c1, c3), and two SMLADs per pixel and channel. */
#ifndef MCT_GEMM_S8_HWC_H
#define MCT_GEMM_S8_HWC_H

#include <stdint.h>
#include <string.h>
#include "mct_requant.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(MCT_PORTABLE)
#define MCT_HWC_DSP 1
#include <arm_acle.h>

static inline uint32_t mct_hwc_rd32(const int8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);               /* one LDR: ARMv7-M loads unaligned words */
    return v;
}
/* SXTB16 of the odd bytes, one instruction (ACLE has no rotated form). */
static inline int16x2_t mct_sxtb16_ror8(uint32_t x) {
    int16x2_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
#else
#define MCT_HWC_DSP 0
#endif

/* acc[0..3] += (x0.w0, x0.w1, x1.w0, x1.w1) over n channels. */
MCT_HOT void mct_hwc_dot2x2(const int8_t *x0, const int8_t *x1, const int8_t *w0, const int8_t *w1, uint32_t n,
    int32_t *acc) {
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    uint32_t c = 0;
#if MCT_HWC_DSP
    for (; c + 4 <= n; c += 4) {
        const uint32_t xa = mct_hwc_rd32(x0 + c), xb = mct_hwc_rd32(x1 + c);
        const int16x2_t xa02 = __sxtb16(xa), xa13 = mct_sxtb16_ror8(xa);
        const int16x2_t xb02 = __sxtb16(xb), xb13 = mct_sxtb16_ror8(xb);
        uint32_t wv = mct_hwc_rd32(w0 + c);
        int16x2_t w02 = __sxtb16(wv), w13 = mct_sxtb16_ror8(wv);
        a00 = __smlad(xa02, w02, a00);
        a00 = __smlad(xa13, w13, a00);
        a10 = __smlad(xb02, w02, a10);
        a10 = __smlad(xb13, w13, a10);
        wv = mct_hwc_rd32(w1 + c);
        w02 = __sxtb16(wv);
        w13 = mct_sxtb16_ror8(wv);
        a01 = __smlad(xa02, w02, a01);
        a01 = __smlad(xa13, w13, a01);
        a11 = __smlad(xb02, w02, a11);
        a11 = __smlad(xb13, w13, a11);
    }
#endif
    for (; c < n; c++) {
        const int32_t xa = x0[c], xb = x1[c], wa = w0[c], wb = w1[c];
        a00 += xa * wa;
        a01 += xa * wb;
        a10 += xb * wa;
        a11 += xb * wb;
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

/* x_zero * sum(w[0..n)), modulo 2^32: what the raw dot products carry too much. */
static inline uint32_t mct_hwc_xzw(const int8_t *w, uint32_t n, int32_t x_zero) {
    int32_t s = 0;
    for (uint32_t c = 0; c < n; c++) {
        s += w[c];
    }
    return (uint32_t)x_zero * (uint32_t)s;
}

#endif
