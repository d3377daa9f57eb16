/* The converter's int8 simulation (host_tools/frontends/int8_sim.py): a depthwise conv (one filter
 * per channel) on centered float32 inputs, channels last, its exact float32 sums (integers below
 * 2^24: any order gives them) requantized by h_requant_f32 one output row at a time, while the
 * row is in cache. The zero padding is the device's padding with the input's zero point. */
#include <stddef.h>
#include <stdint.h>

int h_requant_f32(const float *acc, float *out, size_t n, uint32_t channels, const int32_t *mult,
                  const int32_t *shift, const float *m, const float *half, const float *high, size_t block,
                  float near, int32_t lo, int32_t hi);

/* geometry: h, w, c, kh, kw, stride y, stride x, padding y, padding x, oh, ow */
enum { H, W, C, KH, KW, SY, SX, PY, PX, OH, OW };

/* acc [ow, c] = bias + the taps of output row oy of image x [h, w, c]; weight [kh, kw, c]. Built once
 * per x86 vector width, chosen at run time (the sums are exact: the same in each). */
#define ROW(NAME)                                                                                             \
    static void NAME(const float *restrict x, float *restrict acc, const float *restrict weight,              \
                     const float *restrict bias, const int32_t *g, int32_t oy) {                              \
        const size_t c = (size_t)g[C];                                                                        \
        for (int32_t ox = 0; ox < g[OW]; ox++) {                                                              \
            float *restrict a = acc + (size_t)ox * c;                                                         \
            for (size_t ch = 0; ch < c; ch++) {                                                               \
                a[ch] = bias[ch];                                                                             \
            }                                                                                                 \
            for (int32_t ky = 0; ky < g[KH]; ky++) {                                                          \
                const int32_t iy = oy * g[SY] + ky - g[PY];                                                   \
                if (iy < 0 || iy >= g[H]) {                                                                   \
                    continue;                                                                                 \
                }                                                                                             \
                for (int32_t kx = 0; kx < g[KW]; kx++) {                                                      \
                    const int32_t ix = ox * g[SX] + kx - g[PX];                                               \
                    if (ix < 0 || ix >= g[W]) {                                                               \
                        continue;                                                                             \
                    }                                                                                         \
                    const float *restrict xp = x + ((size_t)iy * (size_t)g[W] + (size_t)ix) * c;              \
                    const float *restrict wp = weight + ((size_t)ky * (size_t)g[KW] + (size_t)kx) * c;        \
                    for (size_t ch = 0; ch < c; ch++) {                                                       \
                        a[ch] += xp[ch] * wp[ch];                                                             \
                    }                                                                                         \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
    }

#pragma GCC push_options
#pragma GCC optimize("O3")
ROW(row_base)
#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC target("avx2")
ROW(row_avx2)
#pragma GCC target("avx512f")
ROW(row_avx512)
#endif
#pragma GCC pop_options

typedef void (*row_fn)(const float *, float *, const float *, const float *, const int32_t *, int32_t);

static row_fn widest(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        return row_avx512;
    }
    if (__builtin_cpu_supports("avx2")) {
        return row_avx2;
    }
#endif
    return row_base;
}

/* out [n, oh, ow, c] = the requantized depthwise conv of x [n, h, w, c] (see h_requant_f32 for the
 * requantization's arguments); row: scratch of ow * c floats. Returns 0, or -1 where h_requant_f32
 * cannot take the channels (nothing usable written then). */
int h_depthwise_f32(const float *x, float *out, uint32_t n, const int32_t *g, const float *weight,
                    const float *bias, float *row, const int32_t *mult, const int32_t *shift, const float *m,
                    const float *half, const float *high, size_t block, float near, int32_t lo, int32_t hi) {
    const row_fn sums = widest();
    const size_t in_image = (size_t)g[H] * (size_t)g[W] * (size_t)g[C], out_row = (size_t)g[OW] * (size_t)g[C];
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
