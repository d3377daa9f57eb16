/* The converter's int8 simulation (host_tools/frontends/int8_sim.py): a depthwise conv (one filter
 * per channel), or a conv on a few input channels (an image's first), on centered float32 inputs,
 * channels last, its exact float32 sums (integers below 2^24: any order gives them) requantized by
 * h_requant_f32 one output row at a time, while the row is in cache. The zero padding is the
 * device's padding with the input's zero point. (PyTorch's convs are slow on both shapes.) */
#include <stddef.h>
#include <stdint.h>
#include "widest.h"

int h_requant_f32(const float *acc, float *out, size_t n, uint32_t channels, const int32_t *mult,
                  const int32_t *shift, const float *m, const float *half, const float *high, size_t block,
                  float near, int32_t lo, int32_t hi);

/* geometry: h, w, c (output channels), kh, kw, stride y, stride x, padding y, padding x, oh, ow, input
 * channels: 0 for a depthwise conv (c of them, one per output channel), else each feeds every output */
enum { H, W, C, KH, KW, SY, SX, PY, PX, OH, OW, CIN };

/* acc [ow, c] = bias + the taps of output row oy of image x [h, w, cin]; weight [kh, kw, c] (depthwise)
 * or [kh, kw, cin, c]. Built once per x86 vector width, chosen at run time (the sums are exact: the
 * same in each). */
#define ROW(NAME)                                                                                             \
    static void NAME(const float *restrict x, float *restrict acc, const float *restrict weight,              \
                     const float *restrict bias, const int32_t *g, int32_t oy) {                              \
        const size_t c = (size_t)g[C], cin = g[CIN] ? (size_t)g[CIN] : c;                                     \
        for (int32_t ox = 0; ox < g[OW]; ox++) {                                                              \
            for (size_t ch = 0; ch < c; ch++) {                                                               \
                acc[(size_t)ox * c + ch] = bias[ch];                                                          \
            }                                                                                                 \
        }                                                                                                     \
        /* tap by tap over the row: neighbouring outputs are independent sums (no chain through memory) */    \
        for (int32_t ky = 0; ky < g[KH]; ky++) {                                                              \
            const int32_t iy = oy * g[SY] + ky - g[PY];                                                       \
            if (iy < 0 || iy >= g[H]) {                                                                       \
                continue;                                                                                     \
            }                                                                                                 \
            for (int32_t kx = 0; kx < g[KW]; kx++) {                                                          \
                const size_t tap = (size_t)ky * (size_t)g[KW] + (size_t)kx;                                   \
                int32_t first = 0, end = g[OW]; /* the outputs whose input column is inside the image */      \
                while (first < end && first * g[SX] + kx - g[PX] < 0) {                                       \
                    first++;                                                                                  \
                }                                                                                             \
                while (end > first && (end - 1) * g[SX] + kx - g[PX] >= g[W]) {                               \
                    end--;                                                                                    \
                }                                                                                             \
                for (int32_t ox = first; ox < end; ox++) {                                                    \
                    const int32_t ix = ox * g[SX] + kx - g[PX];                                               \
                    const float *restrict xp = x + ((size_t)iy * (size_t)g[W] + (size_t)ix) * cin;            \
                    float *restrict a = acc + (size_t)ox * c;                                                 \
                    if (!g[CIN]) {                                                                            \
                        const float *restrict wp = weight + tap * c;                                          \
                        for (size_t ch = 0; ch < c; ch++) {                                                   \
                            a[ch] += xp[ch] * wp[ch];                                                         \
                        }                                                                                     \
                        continue;                                                                             \
                    }                                                                                         \
                    for (size_t ci = 0; ci < cin; ci++) {                                                     \
                        const float v = xp[ci];                                                               \
                        const float *restrict wp = weight + (tap * cin + ci) * c;                             \
                        for (size_t ch = 0; ch < c; ch++) {                                                   \
                            a[ch] += v * wp[ch];                                                              \
                        }                                                                                     \
                    }                                                                                         \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
    }

#if HAS_GCC_PRAGMAS
#pragma GCC push_options
#pragma GCC optimize("O3")
#endif
ROW(row_base)
#if HAS_X86_BUILDS
#pragma GCC target("avx2")
ROW(row_avx2)
#pragma GCC target("avx512f")
ROW(row_avx512)
#endif
#if HAS_GCC_PRAGMAS
#pragma GCC pop_options
#endif

typedef void (*row_fn)(const float *, float *, const float *, const float *, const int32_t *, int32_t);

WIDEST(row_fn, row)

/* out [n, oh, ow, c] = the requantized conv of x [n, h, w, cin] (see h_requant_f32 for the
 * requantization's arguments); row: scratch of ow * c floats. Returns 0, or -1 where h_requant_f32
 * cannot take the channels (nothing usable written then). */
int h_conv_rows_f32(const float *x, float *out, uint32_t n, const int32_t *g, const float *weight,
                    const float *bias, float *row, const int32_t *mult, const int32_t *shift, const float *m,
                    const float *half, const float *high, size_t block, float near, int32_t lo, int32_t hi) {
    const row_fn sums = row_widest();
    const size_t in_image = (size_t)g[H] * (size_t)g[W] * (size_t)(g[CIN] ? g[CIN] : g[C]);
    const size_t out_row = (size_t)g[OW] * (size_t)g[C];
    for (uint32_t i = 0; i < n; i++) {
        for (int32_t oy = 0; oy < g[OH]; oy++) {
            sums(x + i * in_image, row, weight, bias, g, oy);
            float *dst = out + ((size_t)i * (size_t)g[OH] + (size_t)oy) * out_row;
            if (h_requant_f32(row, dst, out_row, (uint32_t)g[C], mult, shift, m, half, high, block, near, lo, hi)) {
                return -1;
            }
        }
    }
    return 0;
}
