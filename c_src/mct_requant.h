/* Fixed-point requantization (gemmlowp/TFLite rules), mirrored by host_tools/quant.py. */
#ifndef MCT_REQUANT_H
#define MCT_REQUANT_H

#include <stdint.h>

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

#endif
