/* The converter's int8 simulation (host_tools/frontends/int8_sim.py, whose docstring has the
 * arithmetic): a conv's or FC's exact float32 sums, channels last, requantized into the centered int8
 * outputs (as float32). One pass where PyTorch would take ten: the float32 estimate
 * sign(v) * floor(|v| * m + half) of every output, vectorized over a block of whole pixels, and the
 * core's own mct_requant for the outputs whose estimate falls within 2 * near of an integer (about
 * one in 4,000). */
#include <math.h>
#include <stddef.h>
#include "widest.h"
#include "mct_requant.h"

#define MAX_BLOCK 8192
#define LIMIT 1048576.0f    /* |v| * m + half beyond this clamps anyway; int32 holds it */

/* The estimates y of n outputs, and near[i] where one needs the exact value; whether any does.
 * No trapping math lets the compiler vectorize the comparisons as selects (same values). The loop is
 * built once per x86 vector width (4, 8 or 16 outputs a step), the one the host has chosen at run
 * time: the same IEEE arithmetic in each (no contraction into FMAs). */
#define ESTIMATE(NAME, TRUNC)                                                                                  \
    static int32_t NAME(                                                                                      \
        const float *a, float *y, int32_t *near, const float *high, const float *m, const float *half,        \
        float twice_near, float lo, float hi, size_t n) {                                                     \
        int32_t any = 0;                                                                                      \
        for (size_t i = 0; i < n; i++) {                                                                      \
            const float v = a[i] + high[i];                                                                   \
            float u = fabsf(v) * m[i] + half[i];                                                              \
            u = u < LIMIT ? u : LIMIT;                                                                        \
            const float t = TRUNC(u); /* floor: u >= 0 */                                                       \
            near[i] = u - t < twice_near;                                                                     \
            any |= near[i];                                                                                   \
            float z = copysignf(t, v);                                                                        \
            z = z < lo ? lo : z;                                                                              \
            y[i] = z > hi ? hi : z;                                                                           \
        }                                                                                                     \
        return any;                                                                                           \
    }

#if HAS_GCC_PRAGMAS
#pragma GCC push_options
#pragma GCC optimize("O3", "no-trapping-math")
#endif
#define INT_TRUNC(u) ((float)(int32_t)(u))    /* vectorizes with SSE2, truncf needs SSE4.1 */
ESTIMATE(estimate_base, INT_TRUNC)
#if HAS_X86_BUILDS
#pragma GCC target("avx2")
ESTIMATE(estimate_avx2, truncf)     /* (the int32 cast would stop the vectorizer here) */
#pragma GCC target("avx512f")
ESTIMATE(estimate_avx512, truncf)
#endif
#if HAS_GCC_PRAGMAS
#pragma GCC pop_options
#endif

typedef int32_t (*estimate_fn)(const float *, float *, int32_t *, const float *, const float *, const float *,
                               float, float, float, size_t);

WIDEST(estimate_fn, estimate)

/* out[i] = clamp(requant(acc[i] + high[c], mult[c], shift[c]), lo, hi), c = i % channels, for the n
 * outputs of whole pixels (out does not overlap acc). high: the part of the bias added after the
 * float32 sum (zeros when all of it is in the sum). m, half, high: float32 per channel, repeated
 * over block outputs (whole pixels, at most MAX_BLOCK): M * 2^(shift - 31) and the rounding constant
 * 1/2 + 2^-(r+1) + near. Returns 0, or -1 for a block it cannot take. */
int h_requant_f32(const float *acc, float *out, size_t n, uint32_t channels, const int32_t *mult,
                  const int32_t *shift, const float *m, const float *half, const float *high, size_t block,
                  float near, int32_t lo, int32_t hi) {
    int32_t flags[MAX_BLOCK];
    const estimate_fn estimate = estimate_widest();
    if (block > MAX_BLOCK || block == 0 || block % channels) {
        return -1;
    }
    for (size_t at = 0; at < n; at += block) {
        const size_t len = n - at < block ? n - at : block;
        if (estimate(acc + at, out + at, flags, high, m, half, 2.0f * near, (float)lo, (float)hi, len)) {
            for (size_t i = 0; i < len; i++) {
                if (flags[i]) {
                    const uint32_t c = (uint32_t)(i % channels);
                    const int32_t z = mct_requant((int64_t)acc[at + i] + (int64_t)high[i], mult[c], shift[c]);
                    out[at + i] = (float)(z < lo ? lo : (z > hi ? hi : z));
                }
            }
        }
    }
    return 0;
}
