/* Fixed-point requantization (gemmlowp/TFLite rules), mirrored by host_tools/model/quant.py.
 *
 * mct_requant / mct_requant_s8 are the reference, step by step. The kernels use mct_rq_t: the same
 * arithmetic with a channel's constants prepared once (mct_rq_init) and one long multiply per output
 * (mct_rq_s8, mct_rq_apply), bit-exact with the reference (tests/test_requant.py checks it
 * exhaustively over shifts and edge values). Built with -DMCT_REFERENCE_KERNELS, the kernels take the
 * reference for every output (the baseline of make bench-mcu). */
#ifndef MCT_REQUANT_H
#define MCT_REQUANT_H

#include <stdint.h>
#include "mct_config.h"

/* The per-output steps below are a few instructions each: inlined even at -Os (the firmware's),
 * where a call would cost as much as the work. */
#if defined(__GNUC__)
#define MCT_HOT static inline __attribute__((always_inline))
#else
#define MCT_HOT static inline
#endif

/* -DMCT_REFERENCE_KERNELS: the baseline build of the benchmarks (make bench-mcu), the kernels as they
 * were before the fast paths: requantization step by step, every conv window clipped with the zero
 * point subtracted per tap, depthwise convs through the general kernel, pointwise two pixels at a time. */
#ifdef MCT_REFERENCE_KERNELS
#define MCT_REFERENCE 1
#else
#define MCT_REFERENCE 0
#endif

/* The kernels' inner loops: compiled for speed even in a -Os firmware, and not inlined into their
 * callers, so that their accumulators and weights keep registers of their own. */
#if defined(__GNUC__) && !defined(__clang__)
#define MCT_LOOP static __attribute__((noinline, optimize("O2")))
#else
#define MCT_LOOP static
#endif

/* round(a * b / 2^31), ties away from zero; saturates the one overflowing case. */
static inline int32_t mct_srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* x / 2^exponent, rounded to nearest, ties away from zero. */
static inline int32_t mct_rdbpot(int32_t x, int exponent) {
    int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* round(x * mult * 2^(shift - 31)); shift in [-31, 30] (checked when the model is loaded, and
 * clamped here too: a bytearray model modified after loading must not make a shift undefined). */
static inline int32_t mct_requant(int64_t x, int32_t mult, int32_t shift) {
    shift = shift > 30 ? 30 : (shift < -31 ? -31 : shift);
    int left = shift > 0 ? shift : 0;
    int right = shift > 0 ? 0 : -shift;
    int64_t v = x * ((int64_t)1 << left);
    if (v > INT32_MAX) {
        v = INT32_MAX;
    } else if (v < INT32_MIN) {
        v = INT32_MIN;
    }
    return mct_rdbpot(mct_srdhm((int32_t)v, mult), right);
}

static inline int8_t mct_clamp_s8(int32_t v, int32_t lo, int32_t hi) {
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

/* An int8 output: clamp(requant(acc) + zero) without int32 overflow (requant may be near INT32_MAX). */
static inline int8_t mct_requant_s8(int64_t acc, int32_t mult, int32_t shift, int32_t zero, int32_t lo, int32_t hi) {
    const int64_t v = (int64_t)mct_requant(acc, mult, shift) + zero;
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

/* (int64_t)a * b from four 16 x 16 -> 32 products, for cores whose only multiply is 32-bit (Cortex-M0
 * and M0+, ARMv6-M), where the compiler would call __aeabi_lmul, a whole 64 x 64 multiply. */
MCT_HOT int64_t mct_mul64_16(int32_t a, int32_t b) {
    const uint32_t al = (uint32_t)a & 0xFFFFu, bl = (uint32_t)b & 0xFFFFu;
    const int32_t ah = a >> 16, bh = b >> 16;             /* [-2^15, 2^15) */
    const int32_t hl = ah * (int32_t)bl, lh = (int32_t)al * bh;     /* |.| < 2^31 */
    uint32_t lo = al * bl;
    uint32_t hi = (uint32_t)(ah * bh) + (uint32_t)(hl >> 16) + (uint32_t)(lh >> 16);
    uint32_t t = (uint32_t)hl << 16;
    lo += t;
    hi += lo < t;                                          /* carries into the high word */
    t = (uint32_t)lh << 16;
    lo += t;
    hi += lo < t;
    return (int64_t)(((uint64_t)hi << 32) | lo);
}

MCT_HOT int64_t mct_mul64(int32_t a, int32_t b) {
#if defined(__ARM_ARCH_6M__)
    return mct_mul64_16(a, b);
#else
    return (int64_t)a * b;          /* SMULL / SMLAL */
#endif
}

/* One output channel's requantization, prepared once: y = clamp(requant(bias + acc) + zero).
 *
 * Why one multiply is enough: SRDHM(v, M) = round(v * M / 2^31) with gemmlowp's nudge is exactly
 * floor((v * M + 2^30) / 2^31) (its "ties away from zero" for negative products is the same as
 * ties up, once the division truncates toward zero), and for e >= 1 the rounding divide by 2^e of
 * that (ties away from zero) is floor((z + 2^(e-1) - [z < 0]) / 2^e); nested floors combine, so
 *     requant = floor((v * M + 2^30 + 2^(30+e) - [v < 0] * 2^31) / 2^(31+e))
 * which is the high word of one 64-bit multiply-add, shifted right by e-1 (SMULL/SMLAL then ASR on
 * Cortex-M3/M4/M7; four 32-bit multiplies on Cortex-M0, see mct_mul64_16). [v < 0] stands for [z < 0]: with M >= 0 they differ only where z == 0, whose
 * result is 0 either way. The reference's saturations (v = sat32((bias + acc) << left), the
 * SRDHM overflow at M = INT32_MIN, int32 overflow of the result plus the zero point) cannot happen
 * on the fast path: mct_rq_init takes it only when |bias| + acc_bound fits after the left shift and
 * M >= 0 (always so in a loaded model); otherwise every output takes the reference. */
typedef struct {
    int64_t round_pos, round_neg;   /* the nudges of both roundings for v >= 0 and v < 0 */
    int32_t bias, mult, shift;
    int32_t left, right;            /* shift > 0: v << left; shift <= 0: rounding divide by 2^right */
    int32_t lo, hi;                 /* clamp bounds relative to the zero point (fast path) */
    int32_t zero, out_lo, out_hi;
    int32_t fast;
} mct_rq_t;

/* acc_bound: the largest |acc| that will be passed (e.g. fan-in x max |x - x_zero| x 128). */
void mct_rq_init(mct_rq_t *q, int32_t bias, uint64_t acc_bound, int32_t mult, int32_t shift, int32_t zero, int32_t lo,
    int32_t hi);

/* requant(v) on the fast path: v = bias + acc, which the caller knows cannot saturate. */
MCT_HOT int32_t mct_rq_apply(const mct_rq_t *q, int32_t v) {
    if (q->right == 0) {
        const int32_t vl = (int32_t)((uint32_t)v << q->left);
        return (int32_t)((mct_mul64(vl, q->mult) + ((int64_t)1 << 30)) >> 31);
    }
    const int64_t p = mct_mul64(v, q->mult) + (v < 0 ? q->round_neg : q->round_pos);
    return (int32_t)(p >> 32) >> (q->right - 1);
}

/* The reference, for the outputs of a channel off the fast path (out of line: rare). */
int8_t mct_rq_slow(const mct_rq_t *q, int32_t acc);

/* == mct_requant_s8((int64_t)bias + acc, mult, shift, zero, lo, hi) for |acc| <= acc_bound. */
MCT_HOT int8_t mct_rq_s8(const mct_rq_t *q, int32_t acc) {
    if (MCT_REFERENCE || !q->fast) {
        return mct_rq_slow(q, acc);
    }
    const int32_t r = mct_rq_apply(q, q->bias + acc);
    return (int8_t)((r < q->lo ? q->lo : (r > q->hi ? q->hi : r)) + q->zero);
}

/* y[i] = mct_rq_s8(q, acc[i] - xzw) (modulo 2^32: x_zero * sum w folded out of a raw dot product) for
 * i < n: the kernels requantize through this one out-of-line copy of the fast path (mct_requant.c), a
 * few outputs per call, which keeps the code small (the native module shares the stock firmware's heap). */
void mct_rq_run(const mct_rq_t *q, const int32_t *acc, uint32_t n, uint32_t xzw, int8_t *y);

/* The largest |acc| of a sum of n products (x - x_zero) * w with int8 x and w. */
static inline uint64_t mct_acc_bound(uint64_t n, int32_t x_zero) {
    const int64_t up = 127 - (int64_t)x_zero, down = (int64_t)x_zero + 128;
    const int64_t dx = up > down ? up : down;
    return n * (uint64_t)(dx < 0 ? -dx : dx) * 128u;
}

#endif
