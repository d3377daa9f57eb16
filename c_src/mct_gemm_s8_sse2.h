/* The int8 GEMM core of the channels-last kernels on x86-64 hosts (the unix port, host_tools' C core):
 * SSE2, the x86-64 baseline. GCC does not vectorize the portable loops well there: SSE2 has no 32-bit
 * multiply, and the short reductions (8 to 48 input channels) leave most of the work in scalar
 * remainders. Here the products are int16 pairs (PMADDWD: eight MACs per instruction, int32 sums
 * modulo 2^32 like the portable path's) and two pixels' four output channels are reduced together.
 * -DMCT_PORTABLE leaves it out (the portable path on the host too). */
#ifndef MCT_GEMM_S8_SSE2_H
#define MCT_GEMM_S8_SSE2_H

#if defined(__SSE2__) && !defined(MCT_PORTABLE) && !defined(MCT_REFERENCE_KERNELS)
#define MCT_HWC_SSE2 1
#include <emmintrin.h>
#include <xmmintrin.h>      /* SHUFPS: SSE, part of the x86-64 baseline too */
#include <stdint.h>
#include <string.h>
#include "mct_gemm_s8_hwc.h"       /* mct_hwc_rqc_t */

/* Eight int8 values sign-extended to int16 (one 8-byte load). */
static inline __m128i mct_sse2_s8x8(const int8_t *p) {
    const __m128i v = _mm_loadl_epi64((const __m128i *)(const void *)p);
    return _mm_srai_epi16(_mm_unpacklo_epi8(v, v), 8);
}

/* The same for the n < 8 values at p (the rest zero): reads nothing past p + n. */
static inline __m128i mct_sse2_s8_tail(const int8_t *p, uint32_t n) {
    int8_t t[8] = { 0 };
    memcpy(t, p, n);
    return mct_sse2_s8x8(t);
}

/* The four lanes' sums of a, b, c, d: (sum a, sum b, sum c, sum d). */
static inline __m128i mct_sse2_hsum4(__m128i a, __m128i b, __m128i c, __m128i d) {
    const __m128i ab = _mm_add_epi32(_mm_unpacklo_epi32(a, b), _mm_unpackhi_epi32(a, b));
    const __m128i cd = _mm_add_epi32(_mm_unpacklo_epi32(c, d), _mm_unpackhi_epi32(c, d));
    return _mm_add_epi32(_mm_unpacklo_epi64(ab, cd), _mm_unpackhi_epi64(ab, cd));
}

/* Raw dot products of two pixels (x0, x1: n int8 channels each) with four weight rows (w: int16, rows
 * `ws` apart, zero from n up to n rounded up to 8): s0[i] += x0 . w_i, s1[i] += x1 . w_i (mod 2^32).
 * over: the bytes up to n rounded up to 8 may be read (whatever they hold meets zero weights). */
static inline void mct_sse2_dot2x4(const int8_t *x0, const int8_t *x1, const int16_t *w, uint32_t ws, uint32_t n,
    int over, __m128i *s0, __m128i *s1) {
    __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    uint32_t c = 0;
    for (; c < n; c += 8) {
        __m128i xa, xb;
        if (over || c + 8 <= n) {
            xa = mct_sse2_s8x8(x0 + c);
            xb = mct_sse2_s8x8(x1 + c);
        } else {
            xa = mct_sse2_s8_tail(x0 + c, n - c);
            xb = mct_sse2_s8_tail(x1 + c, n - c);
        }
        const __m128i w0 = _mm_loadu_si128((const __m128i *)(const void *)(w + c));
        const __m128i w1 = _mm_loadu_si128((const __m128i *)(const void *)(w + ws + c));
        const __m128i w2 = _mm_loadu_si128((const __m128i *)(const void *)(w + 2 * ws + c));
        const __m128i w3 = _mm_loadu_si128((const __m128i *)(const void *)(w + 3 * ws + c));
        a0 = _mm_add_epi32(a0, _mm_madd_epi16(xa, w0));
        a1 = _mm_add_epi32(a1, _mm_madd_epi16(xa, w1));
        a2 = _mm_add_epi32(a2, _mm_madd_epi16(xa, w2));
        a3 = _mm_add_epi32(a3, _mm_madd_epi16(xa, w3));
        b0 = _mm_add_epi32(b0, _mm_madd_epi16(xb, w0));
        b1 = _mm_add_epi32(b1, _mm_madd_epi16(xb, w1));
        b2 = _mm_add_epi32(b2, _mm_madd_epi16(xb, w2));
        b3 = _mm_add_epi32(b3, _mm_madd_epi16(xb, w3));
    }
    *s0 = _mm_add_epi32(*s0, mct_sse2_hsum4(a0, a1, a2, a3));
    *s1 = _mm_add_epi32(*s1, mct_sse2_hsum4(b0, b1, b2, b3));
}

/* The lean requantization (mct_hwc_rq_lean) of four output channels, one per lane, prepared once. */
typedef struct {
    __m128i mult, mult_odd, mult2, round, lo, hi;
    __m128i right[4];               /* each lane's shift count */
    int same;                       /* every lane the same right shift */
} mct_sse2_rq_t;

/* From the lean constants of nb <= 4 channels (the lanes past nb repeat channel 0); lo, hi: the clamp. */
static inline void mct_sse2_rq_init(mct_sse2_rq_t *r, const mct_hwc_rqc_t *c, uint32_t nb, int32_t lo, int32_t hi) {
    int32_t m[4], h[4];
    r->same = 1;
    for (uint32_t i = 0; i < 4; i++) {
        const mct_hwc_rqc_t *k = &c[i < nb ? i : 0];
        m[i] = k->mult;
        h[i] = k->round;
        r->right[i] = _mm_cvtsi32_si128(k->right);
        r->same = r->same && k->right == c[0].right;
    }
    r->mult = _mm_loadu_si128((const __m128i *)(const void *)m);
    r->mult_odd = _mm_srli_epi64(r->mult, 32);
    r->mult2 = _mm_add_epi32(r->mult, r->mult);
    r->round = _mm_loadu_si128((const __m128i *)(const void *)h);
    r->lo = _mm_set1_epi16((int16_t)lo);
    r->hi = _mm_set1_epi16((int16_t)hi);
}

/* requant(v) + zero for four lanes before the rounding shift, exactly mct_hwc_rq_lean's (the zero in
 * the rounding term). SRDHM: floor((v * M + 2^30) / 2^31) from PMULUDQ's unsigned product (v read as
 * unsigned is v + 2^32 [v < 0], whose extra M * 2^32 leaves the quotient's low 32 bits as 2M less). */
static inline __m128i mct_sse2_rq4_unshifted(const mct_sse2_rq_t *r, __m128i v) {
    const __m128i round = _mm_set_epi32(0, 1 << 30, 0, 1 << 30);
    const __m128i p02 = _mm_srli_epi64(_mm_add_epi64(_mm_mul_epu32(v, r->mult), round), 31);
    const __m128i p13 = _mm_srli_epi64(_mm_add_epi64(_mm_mul_epu32(_mm_srli_epi64(v, 32), r->mult_odd), round), 31);
    __m128i z = _mm_unpacklo_epi32(_mm_shuffle_epi32(p02, _MM_SHUFFLE(3, 1, 2, 0)),
        _mm_shuffle_epi32(p13, _MM_SHUFFLE(3, 1, 2, 0)));
    z = _mm_sub_epi32(z, _mm_and_si128(_mm_srai_epi32(v, 31), r->mult2));
    return _mm_add_epi32(_mm_add_epi32(z, r->round), _mm_srai_epi32(z, 31));
}

/* Lanes 0 and 1 of a, 2 and 3 of b. */
static inline __m128i mct_sse2_lo_hi(__m128i a, __m128i b) {
    return _mm_castps_si128(_mm_shuffle_ps(_mm_castsi128_ps(a), _mm_castsi128_ps(b), _MM_SHUFFLE(3, 2, 1, 0)));
}

/* mct_sse2_rq4_unshifted, then each lane's arithmetic right shift: the four lanes requantized. */
static inline __m128i mct_sse2_rq4(const mct_sse2_rq_t *r, __m128i v) {
    const __m128i t = mct_sse2_rq4_unshifted(r, v);
    if (r->same) {
        return _mm_sra_epi32(t, r->right[0]);
    }
    /* (s0[0], s0[0], s1[1], s1[1]) and (s2[2], s2[2], s3[3], s3[3]) of s_i = t >> right[i], then lanes 0, 2 of each */
    const __m128 a = _mm_shuffle_ps(_mm_castsi128_ps(_mm_sra_epi32(t, r->right[0])),
        _mm_castsi128_ps(_mm_sra_epi32(t, r->right[1])), _MM_SHUFFLE(1, 1, 0, 0));
    const __m128 b = _mm_shuffle_ps(_mm_castsi128_ps(_mm_sra_epi32(t, r->right[2])),
        _mm_castsi128_ps(_mm_sra_epi32(t, r->right[3])), _MM_SHUFFLE(3, 3, 2, 2));
    return _mm_castps_si128(_mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)));
}

/* Two pixels' four channels requantized and clamped to int8: bytes 0-3 pixel 0's, 4-7 pixel 1's. */
static inline __m128i mct_sse2_rq8(const mct_sse2_rq_t *r, __m128i v0, __m128i v1) {
    __m128i y0, y1;
    const __m128i t0 = mct_sse2_rq4_unshifted(r, v0), t1 = mct_sse2_rq4_unshifted(r, v1);
    if (r->same) {
        y0 = _mm_sra_epi32(t0, r->right[0]);
        y1 = _mm_sra_epi32(t1, r->right[0]);
    } else {
        /* as channel pairs, (c0 p0, c0 p1, c1 p0, c1 p1) and c2's, c3's: two shifts each, not four */
        const __m128i u01 = _mm_unpacklo_epi32(t0, t1), u23 = _mm_unpackhi_epi32(t0, t1);
        const __m128 s01 = _mm_castsi128_ps(mct_sse2_lo_hi(_mm_sra_epi32(u01, r->right[0]),
            _mm_sra_epi32(u01, r->right[1])));
        const __m128 s23 = _mm_castsi128_ps(mct_sse2_lo_hi(_mm_sra_epi32(u23, r->right[2]),
            _mm_sra_epi32(u23, r->right[3])));
        y0 = _mm_castps_si128(_mm_shuffle_ps(s01, s23, _MM_SHUFFLE(2, 0, 2, 0)));
        y1 = _mm_castps_si128(_mm_shuffle_ps(s01, s23, _MM_SHUFFLE(3, 1, 3, 1)));
    }
    /* int16 saturation first: the clamp bounds lie inside int8 */
    __m128i h = _mm_packs_epi32(y0, y1);
    h = _mm_min_epi16(_mm_max_epi16(h, r->lo), r->hi);
    return _mm_packs_epi16(h, h);
}

/* Stores mct_sse2_rq8's bytes: n <= 4 channels of pixel 0 at y0 and, unless y1 is NULL, pixel 1's. */
static inline void mct_sse2_store2(__m128i b, uint32_t n, int8_t *y0, int8_t *y1) {
    const uint32_t b0 = (uint32_t)_mm_cvtsi128_si32(b), b1 = (uint32_t)_mm_cvtsi128_si32(_mm_srli_epi64(b, 32));
    if (n == 4) {                       /* the common case: one store each */
        memcpy(y0, &b0, 4);
        if (y1) {
            memcpy(y1, &b1, 4);
        }
        return;
    }
    memcpy(y0, &b0, n);                 /* little-endian: the first n bytes are the first n channels */
    if (y1) {
        memcpy(y1, &b1, n);
    }
}

/* n rows of k int8 weights (rows k apart) widened to int16 rows ws apart (ws: k rounded up to 8, the
 * rest zero), and zero rows up to `rows`. */
static inline void mct_sse2_widen_rows(const int8_t *w, uint32_t n, uint32_t k, uint32_t rows, uint32_t ws,
    int16_t *w16) {
    for (uint32_t i = 0; i < rows; i++) {
        for (uint32_t c = 0; c < ws; c += 8) {
            const int8_t *p = w + (size_t)i * k + c;
            const __m128i v = i >= n ? _mm_setzero_si128() : (c + 8 <= k ? mct_sse2_s8x8(p) : mct_sse2_s8_tail(p, k - c));
            _mm_storeu_si128((__m128i *)(void *)(w16 + (size_t)i * ws + c), v);
        }
    }
}

#else
#define MCT_HWC_SSE2 0
#endif

#endif
