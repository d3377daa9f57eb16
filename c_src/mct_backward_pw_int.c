/* The integer backward kernels of pointwise convs, register-blocked: a block of input-gradient
 * elements (two channels x four pixels; on ARMv6-M, whose eight low registers hold no more, one
 * channel x four pixels) sums its products over every output channel in registers and is read and
 * written once, where a plain loop would read and write an element per product; the weight sums of
 * four input channels share each T value, in int32 over runs of pixels short enough not to overflow,
 * then in int64 (no 64-bit multiply in the inner loop: ARMv6-M has none).
 *
 * DSP cores (MCT_HWC_DSP: __ARM_FEATURE_DSP, not MCT_PORTABLE): where |T| <= 2^14 fits a signed
 * halfword (t_bits <= 14: convs of 130 or more output channels, the expansions of inverted-residual
 * blocks), SMLAD takes two products a step, exactly: T packed in place in pairs (of output channels
 * for the input gradient, of pixels for the weight sums), unpacked before return. Wider T would need
 * two halves, two multiplies a product again: those layers keep the portable path. */
#include "mct_backward_conv_int.h"
#include "mct_requant.h"     /* MCT_LOOP */
#include "mct_gemm_s8_hwc.h" /* MCT_HWC_DSP, mct_hwc_rd32, mct_sxtb16_ror8 */

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

#if MCT_HWC_DSP
/* T values of at most 2^14 in magnitude: two to a word, lo first. */
static inline uint32_t pack16(int32_t lo, int32_t hi) {
    return ((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16);
}
static inline int32_t lo16(uint32_t v) {
    return (int16_t)(v & 0xFFFFu);
}
static inline int32_t hi16(uint32_t v) {
    return (int32_t)v >> 16;
}

/* rows2 on pairs of output channels: wp[j] = (W[2j][c], W[2j + 1][c]), t row 2j holding T[2j] and
 * T[2j + 1] packed; the same partial sums as rows2's, two products a step. */
MCT_LOOP void pairs2(uint32_t hw, uint32_t n, const uint32_t *wp0, const uint32_t *wp1, const int32_t *t,
    int32_t *g0, int32_t *g1) {
    uint32_t p = 0;
    for (; p + PIXELS <= hw; p += PIXELS) {
        int32_t a0 = g0[p], a1 = g0[p + 1], a2 = g0[p + 2], a3 = g0[p + 3];
        int32_t b0 = g1[p], b1 = g1[p + 1], b2 = g1[p + 2], b3 = g1[p + 3];
        const int32_t *tp = t + p;
        for (uint32_t j = 0; j < n; j++, tp += 2 * hw) {
            const int16x2_t v = (int16x2_t)wp0[j], u = (int16x2_t)wp1[j];
            const int16x2_t t0 = (int16x2_t)tp[0], t1 = (int16x2_t)tp[1], t2 = (int16x2_t)tp[2], t3 = (int16x2_t)tp[3];
            a0 = __smlad(v, t0, a0);
            a1 = __smlad(v, t1, a1);
            a2 = __smlad(v, t2, a2);
            a3 = __smlad(v, t3, a3);
            b0 = __smlad(u, t0, b0);
            b1 = __smlad(u, t1, b1);
            b2 = __smlad(u, t2, b2);
            b3 = __smlad(u, t3, b3);
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
            const int16x2_t tv = (int16x2_t)t[2 * j * hw + p];
            a = __smlad((int16x2_t)wp0[j], tv, a);
            b = __smlad((int16x2_t)wp1[j], tv, b);
        }
        g0[p] = a;
        g1[p] = b;
    }
}

/* Column c of weight rows [2 j0, 2 (j0 + n)) in pairs. */
static void column_pairs(const mct_rows_t *w, uint32_t j0, uint32_t n, uint32_t c, uint32_t *wp) {
    for (uint32_t j = 0; j < n; j++) {
        wp[j] = pack16(mct_row(w, 2 * (j0 + j))[c], mct_row(w, 2 * (j0 + j) + 1)[c]);
    }
}

/* The input gradient with T packed in pairs of output channels (|T| <= 2^14): row 2j holds
 * (T[2j], T[2j + 1]) during the products, T again on return; an odd last channel goes alone. */
static void input_grad_pairs(uint32_t hw, uint32_t n_in, uint32_t n_out, const mct_rows_t *w, int32_t *t,
    int32_t *gin) {
    const uint32_t n2 = n_out / 2;
    for (uint32_t j = 0; j < n2; j++) {
        int32_t *r0 = t + (size_t)2 * j * hw;
        for (uint32_t p = 0; p < hw; p++) {
            r0[p] = (int32_t)pack16(r0[p], r0[hw + p]);
        }
    }
    uint32_t wp[2][OCHUNK / 2];
    int32_t wc[OCHUNK];
    for (uint32_t j0 = 0; j0 < n2; j0 += OCHUNK / 2) {
        const uint32_t n = n2 - j0 < OCHUNK / 2 ? n2 - j0 : OCHUNK / 2;
        const int32_t *tj = t + (size_t)2 * j0 * hw;
        uint32_t c = 0;
        for (; c + 2 <= n_in; c += 2) {
            column_pairs(w, j0, n, c, wp[0]);
            column_pairs(w, j0, n, c + 1, wp[1]);
            pairs2(hw, n, wp[0], wp[1], tj, gin + (size_t)c * hw, gin + (size_t)(c + 1) * hw);
        }
        if (c < n_in) {     /* an odd last input channel: as both channels, the same sums stored twice */
            column_pairs(w, j0, n, c, wp[0]);
            pairs2(hw, n, wp[0], wp[0], tj, gin + (size_t)c * hw, gin + (size_t)c * hw);
        }
    }
    for (uint32_t j = 0; j < n2; j++) {
        int32_t *r0 = t + (size_t)2 * j * hw;
        for (uint32_t p = 0; p < hw; p++) {
            r0[p] = lo16((uint32_t)r0[p]);
        }
    }
    if (n_out % 2) {
        for (uint32_t c = 0; c < n_in; c++) {
            column(w, n_out - 1, 1, c, wc);
            rows1(hw, 1, wc, t + (size_t)(n_out - 1) * hw, gin + (size_t)c * hw);
        }
    }
}
#endif

void mct_pw_input_grad_int(uint32_t hw, uint32_t n_in, uint32_t n_out, const mct_rows_t *w, int32_t t_bits,
    int32_t *t, int32_t *gin) {
#if MCT_HWC_DSP
    if (t_bits <= 14) {
        input_grad_pairs(hw, n_in, n_out, w, t, gin);
        return;
    }
#else
    (void)t_bits;
#endif
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

#if MCT_HWC_DSP
/* (lo's low half, hi's low half) and (lo's high half, hi's high half): one PKHBT / PKHTB each, which
 * GCC does not find in the shifts and masks. */
static inline int16x2_t pkhbt(uint32_t lo, uint32_t hi) {
    int16x2_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(lo), "r"(hi));
    return r;
}
static inline int16x2_t pkhtb(uint32_t hi, uint32_t lo) {
    int16x2_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(hi), "r"(lo));
    return r;
}

/* sums4 on pixel pairs, q[i] = (T[2i], T[2i + 1]): per pair, the four channels' (x[2i], x[2i + 1]) from
 * two words (SXTB16, then PKHBT/PKHTB), four SMLADs. Run lengths as sums4's, counted in products. */
MCT_LOOP void pair_sums4(uint32_t n_pairs, const int8_t *x, uint32_t stride, const int32_t *q, int64_t *sums) {
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (const int32_t *end = q + n_pairs; q != end; q++, x += 2 * stride) {
        const uint32_t xa = mct_hwc_rd32(x), xb = mct_hwc_rd32(x + stride);
        const uint32_t ea = (uint32_t)__sxtb16(xa), eb = (uint32_t)__sxtb16(xb);              /* c0, c2 */
        const uint32_t oa = (uint32_t)mct_sxtb16_ror8(xa), ob = (uint32_t)mct_sxtb16_ror8(xb);  /* c1, c3 */
        const int16x2_t tq = (int16x2_t)*q;
        a0 = __smlad(tq, pkhbt(ea, eb), a0);
        a1 = __smlad(tq, pkhbt(oa, ob), a1);
        a2 = __smlad(tq, pkhtb(eb, ea), a2);
        a3 = __smlad(tq, pkhtb(ob, oa), a3);
    }
    sums[0] += a0;
    sums[1] += a1;
    sums[2] += a2;
    sums[3] += a3;
}

/* The weight sums with T packed in pairs of pixels in place (|T| <= 2^14), unpacked on return; an odd
 * last pixel, never overwritten by the packing, goes alone. */
static void weight_sums_pairs(uint32_t hw, uint32_t n, const int8_t *x, uint32_t stride, int32_t *t,
    int32_t t_bits, int64_t *sums) {
    const uint32_t np = hw / 2, run = 1u << (22 - t_bits);     /* pairs: 2^(23 - t_bits) products */
    for (uint32_t i = 0; i < np; i++) {
        t[i] = (int32_t)pack16(t[2 * i], t[2 * i + 1]);
    }
    for (uint32_t i0 = 0; i0 < np; i0 += run) {
        const uint32_t m = np - i0 < run ? np - i0 : run;
        const int8_t *xp = x + (size_t)2 * i0 * stride;
        uint32_t j = 0;
        for (; j + 4 <= n; j += 4) {
            pair_sums4(m, xp + j, stride, t + i0, sums + j);
        }
        for (; j < n; j++) {
            int32_t a = 0;
            for (uint32_t i = 0; i < m; i++) {
                const uint32_t v = (uint32_t)t[i0 + i];
                a += lo16(v) * xp[2 * i * stride + j] + hi16(v) * xp[(2 * i + 1) * stride + j];
            }
            sums[j] += a;
        }
    }
    if (hw % 2) {
        for (uint32_t j = 0; j < n; j++) {
            sums[j] += t[hw - 1] * x[(size_t)(hw - 1) * stride + j];
        }
    }
    for (uint32_t i = np; i-- > 0;) {
        const uint32_t v = (uint32_t)t[i];
        t[2 * i + 1] = hi16(v);
        t[2 * i] = lo16(v);
    }
}
#endif

/* sum t (x - zero) = sum t x - zero * sum t: the products t x need no subtraction, and |x| <= 2^7
 * where |x - zero| may reach 255. */
void mct_pw_weight_sums_int(uint32_t hw, uint32_t n, const int8_t *x, uint32_t stride, int32_t zero,
    int32_t *t, int64_t t_sum, int32_t t_bits, int64_t *sums) {
    for (uint32_t j = 0; j < n; j++) {
        sums[j] = 0;
    }
#if MCT_HWC_DSP
    if (t_bits <= 14 && hw >= 2) {
        weight_sums_pairs(hw, n, x, stride, t, t_bits, sums);
    } else
#endif
    {
        /* 0 <= 23 - t_bits <= 23: n_terms >= 1, and n_terms <= MCT_MAX_FAN_IN keeps t_bits >= 5 */
        const uint32_t run = 1u << (23 - (t_bits < 0 ? 0 : t_bits));
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
    }
    const int64_t z = (int64_t)zero * t_sum;
    for (uint32_t j = 0; j < n; j++) {
        sums[j] -= z;
    }
}
