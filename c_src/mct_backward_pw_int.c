/* The integer backward kernels of pointwise convs, register-blocked: a block of input-gradient
 * elements (two channels x four pixels; on ARMv6-M, whose eight low registers hold no more, one
 * channel x four pixels) sums its products over every output channel in registers and is read and
 * written once, where the generic loop reads and writes an element per product; the weight sums of
 * four input channels share each T value, in int32 over runs of pixels short enough not to overflow,
 * then in int64 (no 64-bit multiply in the inner loop: ARMv6-M has none).
 *
 * No SMLAD: T has up to 22 bits, so a 16 x 16 dual multiply would need T in two halves, two
 * multiplies per product again, and pairs packed first: no fewer instructions than one MLA a product. */
#include "mct_backward_conv_int.h"
#include "mct_requant.h"     /* MCT_LOOP */

#define PIXELS 4u
#define OCHUNK 64u           /* output channels whose weight columns sit on the stack (2 x 256 B) */
#if defined(__ARM_ARCH_6M__)
#define CHANNELS 1u
#else
#define CHANNELS 2u
#endif

/* Accumulators: gin starts below 2^29 (renormalized after each op, rescaling only shrinks it), and
 * any part of an element's sum of products is below 2^29 * 128/127 (mct_backward_conv_int.h): every
 * partial value stays below 2^31. */
MCT_LOOP void rows1(uint32_t hw, uint32_t n, const int32_t *wc, const int32_t *t, int32_t *g) {
    uint32_t p = 0;
    for (; p + PIXELS <= hw; p += PIXELS) {
        int32_t a0 = g[p], a1 = g[p + 1], a2 = g[p + 2], a3 = g[p + 3];
        const int32_t *tp = t + p;
        for (uint32_t j = 0; j < n; j++, tp += hw) {
            const int32_t wv = wc[j];
            a0 += wv * tp[0];
            a1 += wv * tp[1];
            a2 += wv * tp[2];
            a3 += wv * tp[3];
        }
        g[p] = a0;
        g[p + 1] = a1;
        g[p + 2] = a2;
        g[p + 3] = a3;
    }
    for (; p < hw; p++) {
        int32_t a = g[p];
        for (uint32_t j = 0; j < n; j++) {
            a += wc[j] * t[(size_t)j * hw + p];
        }
        g[p] = a;
    }
}

#if CHANNELS == 2
MCT_LOOP void rows2(uint32_t hw, uint32_t n, const int32_t *wc0, const int32_t *wc1, const int32_t *t, int32_t *g0,
    int32_t *g1) {
    uint32_t p = 0;
    for (; p + PIXELS <= hw; p += PIXELS) {
        int32_t a0 = g0[p], a1 = g0[p + 1], a2 = g0[p + 2], a3 = g0[p + 3];
        int32_t b0 = g1[p], b1 = g1[p + 1], b2 = g1[p + 2], b3 = g1[p + 3];
        const int32_t *tp = t + p;
        for (uint32_t j = 0; j < n; j++, tp += hw) {
            const int32_t v = wc0[j], u = wc1[j];
            const int32_t t0 = tp[0], t1 = tp[1], t2 = tp[2], t3 = tp[3];
            a0 += v * t0;
            a1 += v * t1;
            a2 += v * t2;
            a3 += v * t3;
            b0 += u * t0;
            b1 += u * t1;
            b2 += u * t2;
            b3 += u * t3;
        }
        g0[p] = a0;
        g0[p + 1] = a1;
        g0[p + 2] = a2;
        g0[p + 3] = a3;
        g1[p] = b0;
        g1[p + 1] = b1;
        g1[p + 2] = b2;
        g1[p + 3] = b3;
    }
    for (; p < hw; p++) {
        int32_t a = g0[p], b = g1[p];
        for (uint32_t j = 0; j < n; j++) {
            const int32_t tv = t[(size_t)j * hw + p];
            a += wc0[j] * tv;
            b += wc1[j] * tv;
        }
        g0[p] = a;
        g1[p] = b;
    }
}
#endif

/* Column c of weight rows [o0, o0 + n): wc[j] = W[o0 + j][c]. */
static void column(const mct_rows_t *w, uint32_t o0, uint32_t n, uint32_t c, int32_t *wc) {
    for (uint32_t j = 0; j < n; j++) {
        wc[j] = mct_row(w, o0 + j)[c];
    }
}

void mct_pw_input_grad_int(uint32_t hw, uint32_t n_in, uint32_t n_out, const mct_rows_t *w, const int32_t *t,
    int32_t *gin) {
    int32_t wc[CHANNELS][OCHUNK];
    for (uint32_t o0 = 0; o0 < n_out; o0 += OCHUNK) {
        const uint32_t n = n_out - o0 < OCHUNK ? n_out - o0 : OCHUNK;
        const int32_t *to = t + (size_t)o0 * hw;
        uint32_t c = 0;
#if CHANNELS == 2
        for (; c + 2 <= n_in; c += 2) {
            column(w, o0, n, c, wc[0]);
            column(w, o0, n, c + 1, wc[1]);
            rows2(hw, n, wc[0], wc[1], to, gin + (size_t)c * hw, gin + (size_t)(c + 1) * hw);
        }
#endif
        for (; c < n_in; c++) {
            column(w, o0, n, c, wc[0]);
            rows1(hw, n, wc[0], to, gin + (size_t)c * hw);
        }
    }
}

/* sums[j] += sum over p < n_pix of t[p] * x[p * stride + j], j < 4, in int32: |x| <= 2^7, so a run of
 * 2^(23 - t_bits) products stays within 2^30 (the caller's runs are no longer). */
MCT_LOOP void sums4(uint32_t n_pix, const int8_t *x, uint32_t stride, const int32_t *t, int64_t *sums) {
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (uint32_t p = 0; p < n_pix; p++, x += stride) {
        const int32_t tv = t[p];
        a0 += tv * x[0];
        a1 += tv * x[1];
        a2 += tv * x[2];
        a3 += tv * x[3];
    }
    sums[0] += a0;
    sums[1] += a1;
    sums[2] += a2;
    sums[3] += a3;
}

MCT_LOOP void sums1(uint32_t n_pix, const int8_t *x, uint32_t stride, const int32_t *t, int64_t *sum) {
    int32_t a = 0;
    for (uint32_t p = 0; p < n_pix; p++, x += stride) {
        a += t[p] * x[0];
    }
    *sum += a;
}

/* sum t (x - zero) = sum t x - zero * sum t: the products t x need no subtraction, and |x| <= 2^7
 * where |x - zero| may reach 255. */
void mct_pw_weight_sums_int(uint32_t hw, uint32_t n, const int8_t *x, uint32_t stride, int32_t zero,
    const int32_t *t, int64_t t_sum, int32_t t_bits, int64_t *sums) {
    /* 0 <= 23 - t_bits <= 23: n_terms >= 1, and n_terms <= MCT_MAX_FAN_IN keeps t_bits >= 5 */
    const uint32_t run = 1u << (23 - (t_bits < 0 ? 0 : t_bits));
    for (uint32_t j = 0; j < n; j++) {
        sums[j] = 0;
    }
    for (uint32_t p0 = 0; p0 < hw; p0 += run) {
        const uint32_t np = hw - p0 < run ? hw - p0 : run;
        const int8_t *xp = x + (size_t)p0 * stride;
        uint32_t j = 0;
        for (; j + 4 <= n; j += 4) {
            sums4(np, xp + j, stride, t + p0, sums + j);
        }
        for (; j < n; j++) {
            sums1(np, xp + j, stride, t + p0, sums + j);
        }
    }
    const int64_t z = (int64_t)zero * t_sum;
    for (uint32_t j = 0; j < n; j++) {
        sums[j] -= z;
    }
}
