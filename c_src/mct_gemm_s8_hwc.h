/* The int8 GEMM core and the requantization of the channels-last kernels (mct_pointwise_s8_hwc.c,
 * mct_conv_s8_hwc.c, mct_depthwise_s8_hwc.c).
 *
 * GEMM: raw dot products of two input rows (pixels) with two weight rows (output channels), all four
 * contiguous; x_zero is folded out by the caller (the accumulator starts at bias - x_zero * sum(w),
 * modulo 2^32), so the inner loop multiplies the raw int8 values. On DSP cores four channels per step:
 * one word load per operand row, SXTB16 into (c0, c2) and (c1, c3), two SMLADs per pixel and channel. */
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
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
#include <arm_acle.h>           /* __ssat: ARMv7-M, with or without the DSP extension */
#endif

/* The kernels' loops: MCT_LOOP (compiled at -O2, not inlined), and on hosts with SIMD vectorized by GCC
 * at -O2 too (its -O2 cost model leaves loops that need a scalar remainder unvectorized). */
#if defined(__GNUC__) && !defined(__clang__) && (defined(__SSE2__) || defined(__ARM_NEON))
#define MCT_HWC_LOOP static __attribute__((noinline, optimize("O2", "vect-cost-model=dynamic")))
#else
#define MCT_HWC_LOOP MCT_LOOP
#endif

/* acc[0..3] += (x0.w0, x0.w1, x1.w0, x1.w1) over n channels, any rows (the odd pixel or channel at
 * the end of a count passes the same row twice). */
MCT_HOT void mct_hwc_dot2x2_any(const int8_t *x0, const int8_t *x1, const int8_t *w0, const int8_t *w1, uint32_t n,
    int32_t *acc) {
    /* modulo 2^32: the start (bias - x_zero * sum(w)) and the raw products may pass the int32 range
     * on the way to a result inside it */
    uint32_t a00 = (uint32_t)acc[0], a01 = (uint32_t)acc[1], a10 = (uint32_t)acc[2], a11 = (uint32_t)acc[3];
    for (uint32_t c = 0; c < n; c++) {
        const int32_t xa = x0[c], xb = x1[c], wa = w0[c], wb = w1[c];
        a00 += (uint32_t)(xa * wa);
        a01 += (uint32_t)(xa * wb);
        a10 += (uint32_t)(xb * wa);
        a11 += (uint32_t)(xb * wb);
    }
    acc[0] = (int32_t)a00;
    acc[1] = (int32_t)a01;
    acc[2] = (int32_t)a10;
    acc[3] = (int32_t)a11;
}

/* The same for x1 = x0 + stride and w1 = w0 + stride (adjacent pixels of a row of n channels, adjacent
 * weight rows): one offset for both second rows keeps every pointer in a register on Cortex-M. */
MCT_HOT void mct_hwc_dot2x2(const int8_t *x, const int8_t *w, uint32_t n, uint32_t stride, int32_t *acc) {
#if MCT_HWC_DSP
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    const int8_t *end = x + (n & ~3u);
    while (x != end) {
        const uint32_t xa = mct_hwc_rd32(x), xb = mct_hwc_rd32(x + stride);
        const uint32_t wa = mct_hwc_rd32(w), wb = mct_hwc_rd32(w + stride);
        x += 4;
        w += 4;
        const int16x2_t xa02 = __sxtb16(xa), xa13 = mct_sxtb16_ror8(xa);
        const int16x2_t xb02 = __sxtb16(xb), xb13 = mct_sxtb16_ror8(xb);
        int16x2_t w02 = __sxtb16(wa), w13 = mct_sxtb16_ror8(wa);
        a00 = __smlad(xa02, w02, a00);
        a00 = __smlad(xa13, w13, a00);
        a10 = __smlad(xb02, w02, a10);
        a10 = __smlad(xb13, w13, a10);
        w02 = __sxtb16(wb);
        w13 = mct_sxtb16_ror8(wb);
        a01 = __smlad(xa02, w02, a01);
        a01 = __smlad(xa13, w13, a01);
        a11 = __smlad(xb02, w02, a11);
        a11 = __smlad(xb13, w13, a11);
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
    mct_hwc_dot2x2_any(x, x + stride, w, w + stride, n & 3u, acc);
#else
    mct_hwc_dot2x2_any(x, x + stride, w, w + stride, n, acc);
#endif
}

#if MCT_HWC_DSP
/* Two weight rows unpacked for mct_hwc_dot2x2_u: per four input channels, row 0's (c0, c2), (c1, c3),
 * then row 1's; n4 groups of four. */
static inline void mct_hwc_unpack2(const int8_t *w0, const int8_t *w1, uint32_t n4, int16x2_t *wq) {
    for (uint32_t i = 0; i < n4; i++, w0 += 4, w1 += 4, wq += 4) {
        const uint32_t a = mct_hwc_rd32(w0), b = mct_hwc_rd32(w1);
        wq[0] = __sxtb16(a);
        wq[1] = mct_sxtb16_ror8(a);
        wq[2] = __sxtb16(b);
        wq[3] = mct_sxtb16_ror8(b);
    }
}
/* The same with each weight doubled (int8 * 2 fits int16): the dot products come out doubled, as the
 * requantization's SMMLAR takes them. sum[0], sum[1]: the two rows' sums (for the zero point). */
static inline void mct_hwc_unpack2_twice(const int8_t *w0, const int8_t *w1, uint32_t n4, int16x2_t *wq,
    int32_t *sum) {
    int32_t s0 = 0, s1 = 0;
    for (uint32_t i = 0; i < n4; i++, w0 += 4, w1 += 4, wq += 4) {
        const uint32_t a = mct_hwc_rd32(w0), b = mct_hwc_rd32(w1);
        const int16x2_t a02 = __sxtb16(a), a13 = mct_sxtb16_ror8(a), b02 = __sxtb16(b), b13 = mct_sxtb16_ror8(b);
        s0 = __smlad(__sadd16(a02, a13), (int16x2_t)0x00010001, s0);
        s1 = __smlad(__sadd16(b02, b13), (int16x2_t)0x00010001, s1);
        wq[0] = __sadd16(a02, a02);
        wq[1] = __sadd16(a13, a13);
        wq[2] = __sadd16(b02, b02);
        wq[3] = __sadd16(b13, b13);
    }
    sum[0] = s0;
    sum[1] = s1;
}

/* One step of mct_hwc_dot2x2_u (four input channels) in asm, its operands named: accumulators a00 a01
 * a10 a11, x (advanced by 4) and x + s, wq (advanced by 16), scratch xa xb e f w0 w1. */
#define MCT_HWC_DOT2X2_U_STEP \
    "ldr %[xb], [%[x], %[s]]\n\t" \
    "ldr %[xa], [%[x]], #4\n\t" \
    "ldrd %[w0], %[w1], [%[wq]], #8\n\t" \
    "sxtb16 %[e], %[xa]\n\t" \
    "sxtb16 %[xa], %[xa], ror #8\n\t" \
    "smlad %[a00], %[e], %[w0], %[a00]\n\t" \
    "smlad %[a00], %[xa], %[w1], %[a00]\n\t" \
    "sxtb16 %[f], %[xb]\n\t" \
    "sxtb16 %[xb], %[xb], ror #8\n\t" \
    "smlad %[a10], %[f], %[w0], %[a10]\n\t" \
    "smlad %[a10], %[xb], %[w1], %[a10]\n\t" \
    "ldrd %[w0], %[w1], [%[wq]], #8\n\t" \
    "smlad %[a01], %[e], %[w0], %[a01]\n\t" \
    "smlad %[a01], %[xa], %[w1], %[a01]\n\t" \
    "smlad %[a11], %[f], %[w0], %[a11]\n\t" \
    "smlad %[a11], %[xb], %[w1], %[a11]\n\t"
/* mct_hwc_dot2x2 over the first 4 * n4 channels, the weights unpacked once (mct_hwc_unpack2): per four
 * channels two input words unpacked and two doubleword loads of weights for eight SMLADs, 18
 * instructions for 16 MACs with the loop. In asm: GCC neither pairs the weight loads into LDRD nor keeps
 * the fourteen values in registers. */
MCT_HOT void mct_hwc_dot2x2_u(const int8_t *x, uint32_t stride, const int16x2_t *wq, uint32_t n4, int32_t *acc) {
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    for (; n4; n4--) {
        uint32_t xa, xb, e, f, w0, w1;
        __asm__(MCT_HWC_DOT2X2_U_STEP
                : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [x] "+r"(x), [wq] "+r"(wq),
                  [xa] "=&r"(xa), [xb] "=&r"(xb), [e] "=&r"(e), [f] "=&r"(f), [w0] "=&r"(w0), [w1] "=&r"(w1)
                : [s] "r"(stride)
                : "memory");
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

#endif

/* x_zero * sum(w[0..n)), modulo 2^32: what the raw dot products carry too much. A kernel pays this
 * for every output channel of every call (row-streamed calls: every row), so a word at a time: on
 * DSP cores two SMLADs, on other cores that load unaligned words (M3, hosts) the bytes offset to
 * unsigned (XOR 0x80) and summed in two 16-bit lanes (SWAR: at most 510 per word and lane, so 128
 * words per lane sum), then 128 per byte taken off again; byte by byte on Cortex-M0 (no unaligned
 * loads: a word would cost four byte loads). */
static inline uint32_t mct_hwc_xzw(const int8_t *w, uint32_t n, int32_t x_zero) {
    int32_t s = 0;
    const int8_t *end = w + (n & ~3u), *last = w + n;
#if MCT_HWC_DSP
    for (; w != end; w += 4) {              /* four weights in three instructions */
        const uint32_t v = mct_hwc_rd32(w);
        s = __smlad(__sxtb16(v), (int16x2_t)0x00010001, s);
        s = __smlad(mct_sxtb16_ror8(v), (int16x2_t)0x00010001, s);
    }
#elif !defined(__ARM_ARCH_6M__)
    while (w != end) {
        const uint32_t bytes = (uint32_t)(end - w) < 4u * 128u ? (uint32_t)(end - w) : 4u * 128u;
        const int8_t *stop = w + bytes;
        uint32_t lanes = 0;                 /* (byte 0 + byte 2, byte 1 + byte 3) sums, unsigned */
        for (; w != stop; w += 4) {
            uint32_t v;
            memcpy(&v, w, 4);
            v ^= 0x80808080u;
            lanes += (v & 0x00FF00FFu) + ((v >> 8) & 0x00FF00FFu);
        }
        s += (int32_t)((lanes & 0xFFFFu) + (lanes >> 16)) - 128 * (int32_t)bytes;
    }
#else
    (void)end;
#endif
    for (; w != last; w++) {
        s += *w;
    }
    return (uint32_t)x_zero * (uint32_t)s;
}

/* x_zero * sum of n weights `stride` apart (a depthwise channel's taps), modulo 2^32. */
static inline uint32_t mct_hwc_xzw_strided(const int8_t *w, uint32_t n, uint32_t stride, int32_t x_zero) {
    int32_t s = 0;
    for (uint32_t t = 0; t < n; t++) {
        s += w[(size_t)t * stride];
    }
    return (uint32_t)x_zero * (uint32_t)s;
}

/* One output channel's requantization on the lean path: y = clamp(requant(v) + zero) for v = bias + acc
 * with |v| < 2^30 and a right shift (shift <= -1), the common case. requant = rdbpot(srdhm(v, M), e):
 * srdhm(v, M) = floor((v * M + 2^30) / 2^31) (mct_requant.h), which is SMMULR(2v, M) on DSP cores, and
 * rdbpot(z, e) = (z + 2^(e-1) + (z < 0 ? -1 : 0)) >> e (ties away from zero). The zero point rides in
 * the rounding term (adding zero * 2^e before the shift adds zero after it): y = clamp((z + round +
 * (z < 0 ? -1 : 0)) >> e) with round = 2^(e-1) + zero * 2^e, inside int32 for e <= 21 and |zero| <= 256
 * (|z| <= 2^30). Bit-exact with mct_rq_s8. */
typedef struct {
    int32_t mult, round, right;
} mct_hwc_rqc_t;

/* c straight from a channel's quantization; 0 where the channel is off the lean path (then its outputs
 * take mct_rq_s8). The conditions are mct_rq_init's fast path (mult >= 0, |bias| + acc_bound in range,
 * the clamp relative to the zero point in int32) and the lean path's (a right shift of 1 to 21,
 * |zero| <= 256, |v| < 2^30). */
static inline int mct_hwc_rq_constants(mct_hwc_rqc_t *c, int32_t bias, uint64_t acc_bound, int32_t mult,
    int32_t shift, int32_t zero, int32_t lo, int32_t hi) {
    const uint64_t mag = (uint64_t)(bias < 0 ? -(int64_t)bias : (int64_t)bias) + acc_bound;
    const int fold = shift <= -1 && shift >= -21 && zero >= -256 && zero <= 256;
    c->mult = mult;
    c->right = fold ? -shift : 0;
    c->round = fold ? (int32_t)(((uint32_t)1 << (c->right - 1)) + (uint32_t)zero * ((uint32_t)1 << c->right)) : 0;
    return !MCT_REFERENCE && fold && mult >= 0 && mag < ((uint64_t)1 << 30) && (int64_t)lo - zero >= INT32_MIN &&
        (int64_t)hi - zero <= INT32_MAX;
}

/* Prepares c from q (built by mct_rq_init with the same bias and acc_bound). */
static inline int mct_hwc_rq_prepare(mct_hwc_rqc_t *c, const mct_rq_t *q, int32_t bias, uint64_t acc_bound) {
    return mct_hwc_rq_constants(c, bias, acc_bound, q->mult, q->shift, q->zero, q->out_lo, q->out_hi);
}

/* The same without mct_rq_init, whose 64-bit set-up a row-streamed call would pay for every channel on
 * every row: c, and of q only the clamp (out_lo, out_hi: all that the lean path reads of it); where
 * this returns 0, the caller builds q with mct_rq_init. */
static inline int mct_hwc_rq_lean_init(mct_hwc_rqc_t *c, mct_rq_t *q, int32_t bias, uint64_t acc_bound,
    int32_t mult, int32_t shift, int32_t zero, int32_t lo, int32_t hi) {
    q->out_lo = lo;
    q->out_hi = hi;
    return mct_hwc_rq_constants(c, bias, acc_bound, mult, shift, zero, lo, hi);
}

/* mct_hwc_rq_lean_init's conditions split for a kernel that prepares many channels per call (the
 * pointwise kernel, once per output channel and call: a row-streamed layer, once per row): the layer's
 * part once, here (acc_bound, zero point, clamp), which returns the bound that |bias| must stay below
 * (0: no channel takes the lean path), and the channel's part, mct_hwc_rq_channel, in 32 bits. */
static inline uint32_t mct_hwc_rq_bias_limit(uint64_t acc_bound, int32_t zero, int32_t lo, int32_t hi) {
    if (MCT_REFERENCE || acc_bound >= ((uint64_t)1 << 30) || zero < -256 || zero > 256 ||
        (int64_t)lo - zero < INT32_MIN || (int64_t)hi - zero > INT32_MAX) {
        return 0;
    }
    return (uint32_t)(((uint64_t)1 << 30) - acc_bound);
}

/* c for one channel given the layer's limit: mct_hwc_rq_lean_init's answer (c is meaningful where it
 * returns 1, zeros elsewhere). */
static inline int mct_hwc_rq_channel(mct_hwc_rqc_t *c, uint32_t limit, int32_t bias, int32_t mult, int32_t shift,
    int32_t zero) {
    const uint32_t right = (uint32_t)-shift, mag = bias < 0 ? 0u - (uint32_t)bias : (uint32_t)bias;
    if (right - 1u >= 21u || mult < 0 || mag >= limit) {        /* a right shift of 1 to 21 */
        c->mult = c->round = c->right = 0;
        return 0;
    }
    c->mult = mult;
    c->right = (int32_t)right;
    c->round = (int32_t)(((uint32_t)1 << (right - 1)) + (uint32_t)zero * ((uint32_t)1 << right));
    return 1;
}

MCT_HOT int8_t mct_hwc_rq_lean(const mct_hwc_rqc_t *c, int32_t v, int32_t lo, int32_t hi) {
#if MCT_HWC_DSP
    /* z + round in one SMMLAR; the sign of v for that of z: they differ only where z = 0 > v, and there
     * the -1 changes nothing ((2^(e-1) - 1 + zero * 2^e) >> e = zero for e >= 1) */
    int32_t zr;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(zr) : "r"(v * 2), "r"(c->mult), "r"(c->round));
    const int32_t r = (zr + (v >> 31)) >> c->right;
#else
    const int32_t z = (int32_t)((mct_mul64(v, c->mult) + ((int64_t)1 << 30)) >> 31);
    const int32_t r = (z + c->round + (z >> 31)) >> c->right;
#endif
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
    if (__builtin_constant_p(lo) && __builtin_constant_p(hi) && lo == -128 && hi == 127) {
        return (int8_t)__ssat(r, 8);            /* the full int8 range: one SSAT */
    }
#endif
    return (int8_t)(r < lo ? lo : (r > hi ? hi : r));
}

/* v = bias + acc: the lean path (which reads q's clamp only), or the reference path of mct_rq_s8. */
/* lean: 2 the lean path with the output range [-128, 127], 1 the lean path, 0 mct_rq_s8. */
MCT_HOT int8_t mct_hwc_rq(const mct_hwc_rqc_t *c, const mct_rq_t *q, int lean, int32_t v) {
    if (lean == 2) {
        return mct_hwc_rq_lean(c, v, -128, 127);
    }
    return lean ? mct_hwc_rq_lean(c, v, q->out_lo, q->out_hi) : mct_rq_s8(q, (int32_t)((uint32_t)v - (uint32_t)q->bias));
}

#if MCT_HWC_DSP
/* Two adjacent output channels of a pointwise GEMM prepared once for many calls (mct_pointwise_s8_hwc.c;
 * the first conv's im2col runs its chunks of columns through it): cin a multiple of 4 up to 256, the
 * lean requantization with the output range [-128, 127] for both (c[0], c[1]: mct_hwc_rq_channel's).
 * area: MCT_HWC_PAIR_WORDS(cin) words, the channels' weights unpacked and doubled, then their
 * constants; w0: the first channel's row, the second's right after it; bias0, bias1: their biases.
 * mct_hwc_pair_run: pairs of pixels (x, x + cin) onward, outputs y[0], y[1], y[ystep], y[ystep + 1]
 * onward by 2 * ystep. */
#define MCT_HWC_PAIR_WORDS(cin) ((cin) + 13u)
void mct_hwc_pair_prepare(int32_t *area, const int8_t *w0, uint32_t cin, int32_t bias0, int32_t bias1,
    int32_t x_zero, const mct_hwc_rqc_t *c);
void mct_hwc_pair_run(const int8_t *x, uint32_t pairs, uint32_t cin, int32_t *area, int8_t *y, uint32_t ystep);
#endif

#endif
