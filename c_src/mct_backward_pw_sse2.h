/* The pointwise float backward's loops on x86-64 hosts (SSE2, the x86-64 baseline): where GCC leaves
 * them half scalar. The same separately rounded multiply and add per element, in the same order as
 * the C loops of mct_backward_pw_f32.c (no FMA), so the results are bit-identical. -DMCT_PORTABLE
 * leaves it out. */
#ifndef MCT_BACKWARD_PW_SSE2_H
#define MCT_BACKWARD_PW_SSE2_H

#if defined(__SSE2__) && !defined(MCT_PORTABLE) && !defined(MCT_REFERENCE_KERNELS)
#define MCT_PW_SSE2 1
#include <emmintrin.h>
#include <stdint.h>
#include <string.h>

/* Four output channels' weight gradients over 4 input channels from +0, pixel by pixel:
 * acc[k][i] = acc[k][i] + g[k][p] * (float)(x[p][i] - zero) (g's rows hw floats apart, x's pixels
 * stride bytes apart). */
static inline void mct_sse2_weight_grad4(float *acc, const int8_t *x, uint32_t stride, int32_t zero, const float *g,
    uint32_t hw) {
    const float *g1 = g + hw, *g2 = g + 2u * hw, *g3 = g + 3u * hw;
    const __m128i z = _mm_set1_epi32(zero);
    __m128 a0 = _mm_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (uint32_t p = 0; p < hw; p++, x += stride) {
        int32_t word;
        memcpy(&word, x, 4);
        __m128i v = _mm_cvtsi32_si128(word);
        v = _mm_unpacklo_epi8(v, v);
        v = _mm_srai_epi32(_mm_unpacklo_epi16(v, v), 24);      /* the 4 bytes sign-extended */
        const __m128 xv = _mm_cvtepi32_ps(_mm_sub_epi32(v, z));  /* exact: |x - zero| < 2^24 */
        a0 = _mm_add_ps(a0, _mm_mul_ps(_mm_set1_ps(g[p]), xv));
        a1 = _mm_add_ps(a1, _mm_mul_ps(_mm_set1_ps(g1[p]), xv));
        a2 = _mm_add_ps(a2, _mm_mul_ps(_mm_set1_ps(g2[p]), xv));
        a3 = _mm_add_ps(a3, _mm_mul_ps(_mm_set1_ps(g3[p]), xv));
    }
    _mm_storeu_ps(acc, a0);
    _mm_storeu_ps(acc + 4, a1);
    _mm_storeu_ps(acc + 8, a2);
    _mm_storeu_ps(acc + 12, a3);
}

/* Eight pixels of two input channels' columns: a[i] = a[i] + wf0[j] * t, b[i] = b[i] + wf1[j] * t with
 * t = g[j][i] (times ws[j] first when ws is not NULL), row by row over n rows of g hw floats apart. */
static inline void mct_sse2_col2_block8(float *a, float *b, const float *wf0, const float *wf1, const float *g,
    const float *ws, uint32_t n, uint32_t hw) {
    __m128 a0 = _mm_loadu_ps(a), a1 = _mm_loadu_ps(a + 4), b0 = _mm_loadu_ps(b), b1 = _mm_loadu_ps(b + 4);
    for (uint32_t j = 0; j < n; j++, g += hw) {
        __m128 t0 = _mm_loadu_ps(g), t1 = _mm_loadu_ps(g + 4);
        if (ws != NULL) {
            const __m128 s = _mm_set1_ps(ws[j]);
            t0 = _mm_mul_ps(t0, s);
            t1 = _mm_mul_ps(t1, s);
        }
        const __m128 u = _mm_set1_ps(wf0[j]), v = _mm_set1_ps(wf1[j]);
        a0 = _mm_add_ps(a0, _mm_mul_ps(u, t0));
        a1 = _mm_add_ps(a1, _mm_mul_ps(u, t1));
        b0 = _mm_add_ps(b0, _mm_mul_ps(v, t0));
        b1 = _mm_add_ps(b1, _mm_mul_ps(v, t1));
    }
    _mm_storeu_ps(a, a0);
    _mm_storeu_ps(a + 4, a1);
    _mm_storeu_ps(b, b0);
    _mm_storeu_ps(b + 4, b1);
}

#else
#define MCT_PW_SSE2 0
#endif

#endif
