/* The inner loops of the pointwise float backward (mct_backward_pw_f32.c) on a Cortex-M7, in
 * assembly so that a run of consecutive floats moves with one VLDM/VSTM (GCC loads each float on its
 * own): the same VMLA.F32 operations, on the same operands, in the same order per element, as the C
 * loops they replace (MCT_FPU_VMLA: bit-exact with the separately rounded multiply and add). Used
 * where mct_mla_f32.h's VMLA is (MCT_VLDM_F32: every Cortex-M7 also has the DSP extension's SXTAB);
 * s16-s31 are saved by the compiler (clobbered). Elsewhere mct_zero_f32 is memset, and the callers
 * keep their C loops. */
#ifndef MCT_BACKWARD_VLDM_F32_H
#define MCT_BACKWARD_VLDM_F32_H

#include <stdint.h>
#include <string.h>

#if defined(MCT_FPU_VMLA) && defined(__ARM_FP) && (__ARM_FP & 4)
#define MCT_VLDM_F32 1

#define MCT_VFP_CLOBBERS "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", \
    "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", \
    "s28", "s29", "s30", "s31", "memory", "cc"

/* n >= 1 rows of 4 floats, q rows `stride` bytes apart: q[i] = mla(mla(mla(mla(q[i], w[0], s[0][i]),
 * w[1], s[1][i]), w[2], s[2][i]), w[3], s[3][i]) for i < 4, w the row's 4 weights (wq: [n][4]),
 * s[k][i] = g[k][i] * ws[k] (channel k's factors of the 4 pixels; g's rows `stride` bytes apart). */
static inline void mct_vldm_quad_rows(float *q, const float *wq, uint32_t n, uint32_t stride, const float *g,
    const float *ws) {
    __asm__ volatile(
        "vldmia %[ws], {s0-s3}\n\t"
        "vldmia %[g], {s16-s19}\n\t"
        "add %[g], %[g], %[st]\n\t"
        "vldmia %[g], {s20-s23}\n\t"
        "add %[g], %[g], %[st]\n\t"
        "vldmia %[g], {s24-s27}\n\t"
        "add %[g], %[g], %[st]\n\t"
        "vldmia %[g], {s28-s31}\n\t"
        "vmul.f32 s16, s16, s0\n\t" "vmul.f32 s17, s17, s0\n\t" "vmul.f32 s18, s18, s0\n\t" "vmul.f32 s19, s19, s0\n\t"
        "vmul.f32 s20, s20, s1\n\t" "vmul.f32 s21, s21, s1\n\t" "vmul.f32 s22, s22, s1\n\t" "vmul.f32 s23, s23, s1\n\t"
        "vmul.f32 s24, s24, s2\n\t" "vmul.f32 s25, s25, s2\n\t" "vmul.f32 s26, s26, s2\n\t" "vmul.f32 s27, s27, s2\n\t"
        "vmul.f32 s28, s28, s3\n\t" "vmul.f32 s29, s29, s3\n\t" "vmul.f32 s30, s30, s3\n\t" "vmul.f32 s31, s31, s3\n"
        "1:\n\t"
        "vldmia %[w]!, {s0-s3}\n\t"
        "vldmia %[q], {s4-s7}\n\t"
        "vmla.f32 s4, s0, s16\n\t" "vmla.f32 s5, s0, s17\n\t" "vmla.f32 s6, s0, s18\n\t" "vmla.f32 s7, s0, s19\n\t"
        "vmla.f32 s4, s1, s20\n\t" "vmla.f32 s5, s1, s21\n\t" "vmla.f32 s6, s1, s22\n\t" "vmla.f32 s7, s1, s23\n\t"
        "vmla.f32 s4, s2, s24\n\t" "vmla.f32 s5, s2, s25\n\t" "vmla.f32 s6, s2, s26\n\t" "vmla.f32 s7, s2, s27\n\t"
        "vmla.f32 s4, s3, s28\n\t" "vmla.f32 s5, s3, s29\n\t" "vmla.f32 s6, s3, s30\n\t" "vmla.f32 s7, s3, s31\n\t"
        "vstmia %[q], {s4-s7}\n\t"
        "add %[q], %[q], %[st]\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n"
        : [q] "+r"(q), [w] "+r"(wq), [n] "+r"(n), [g] "+r"(g)
        : [ws] "r"(ws), [st] "r"(stride)
        : MCT_VFP_CLOBBERS);
}

/* The loop of the two functions below, given how a row's weights are loaded (s8, s9: the two
 * columns' weights; s10 the row's w_scale where given) and what is done to the row's 8 gradients
 * first (s0-s7). */
#define MCT_COL2_ROWS(load_weights, prepare)                                                                  \
    __asm__ volatile(                                                                                         \
        "vldmia %[a], {s16-s23}\n\t"                                                                          \
        "vldmia %[b], {s24-s31}\n"                                                                            \
        "1:\n\t" load_weights                                                                                 \
        "vldmia %[g], {s0-s7}\n\t"                                                                            \
        "add %[g], %[g], %[st]\n\t" prepare                                                                   \
        "vmla.f32 s16, s8, s0\n\t" "vmla.f32 s24, s9, s0\n\t" "vmla.f32 s17, s8, s1\n\t" "vmla.f32 s25, s9, s1\n\t" \
        "vmla.f32 s18, s8, s2\n\t" "vmla.f32 s26, s9, s2\n\t" "vmla.f32 s19, s8, s3\n\t" "vmla.f32 s27, s9, s3\n\t" \
        "vmla.f32 s20, s8, s4\n\t" "vmla.f32 s28, s9, s4\n\t" "vmla.f32 s21, s8, s5\n\t" "vmla.f32 s29, s9, s5\n\t" \
        "vmla.f32 s22, s8, s6\n\t" "vmla.f32 s30, s9, s6\n\t" "vmla.f32 s23, s8, s7\n\t" "vmla.f32 s31, s9, s7\n\t" \
        "subs %[n], %[n], #1\n\t"                                                                             \
        "bne 1b\n\t"                                                                                          \
        "vstmia %[a], {s16-s23}\n\t"                                                                          \
        "vstmia %[b], {s24-s31}\n"                                                                            \
        : [g] "+r"(g), [w] "+r"(wq), [n] "+r"(n)                                                              \
        : [a] "r"(a), [b] "r"(b), [st] "r"(stride)                                                            \
        : MCT_VFP_CLOBBERS)

/* n >= 1 rows of g, `stride` bytes apart, into 8 pixels of two accumulators: a[i] = mla(a[i], w[0],
 * g[i]), b[i] = mla(b[i], w[1], g[i]) for i < 8, row by row, w the row's two weights (wq: [n][2]). */
static inline void mct_vldm_col2_rows(float *a, float *b, const float *wq, const float *g, uint32_t n,
    uint32_t stride) {
    MCT_COL2_ROWS("vldmia %[w]!, {s8-s9}\n\t", "");
}

/* The same with the rows' factors: t = g[i] * w[2] first (the row's w_scale), then a[i] = mla(a[i],
 * w[0], t), b[i] = mla(b[i], w[1], t) (wq: [n][3]). */
static inline void mct_vldm_col2_rows_scaled(float *a, float *b, const float *wq, const float *g, uint32_t n,
    uint32_t stride) {
    MCT_COL2_ROWS("vldmia %[w]!, {s8-s10}\n\t",
        "vmul.f32 s0, s0, s10\n\t" "vmul.f32 s1, s1, s10\n\t" "vmul.f32 s2, s2, s10\n\t" "vmul.f32 s3, s3, s10\n\t"
        "vmul.f32 s4, s4, s10\n\t" "vmul.f32 s5, s5, s10\n\t" "vmul.f32 s6, s6, s10\n\t" "vmul.f32 s7, s7, s10\n\t");
}

/* Four output channels' weight gradients over 4 input channels, n >= 1 pixels: acc[k][i] = mla(acc[k][i],
 * g[k][p], (float)(x[p][i] - zero)) pixel by pixel from +0 (acc [4][4], g's rows hw floats apart, x's
 * pixels stride bytes apart, x and stride multiples of 4). A pixel's 4 inputs are one word; x - zero
 * becomes a float through the bits of 1.5 * 2^23 + (x - zero) (SXTAB adds the byte to 0x4B400000 - zero)
 * minus 1.5 * 2^23, exact for |x - zero| < 2^22, as VCVT's is. */
static inline void mct_vldm_weight_grad4(float *acc, const int8_t *x, uint32_t stride, int32_t zero, const float *g,
    uint32_t hw, uint32_t n) {
    const float *g1 = g + hw, *g2 = g + 2u * hw, *g3 = g + 3u * hw;
    const uint32_t magic = 0x4B400000u - (uint32_t)zero;
    uint32_t w, t0, t1;
    __asm__ volatile(
        "movw %[t0], #0\n\t"
        "movt %[t0], #0x4B40\n\t"
        "vmov s12, %[t0]\n\t"                    /* 1.5 * 2^23 */
        "vsub.f32 s13, s12, s12\n\t"              /* +0 */
        "vmov.f32 s16, s13\n\t" "vmov.f32 s17, s13\n\t" "vmov.f32 s18, s13\n\t" "vmov.f32 s19, s13\n\t"
        "vmov.f32 s20, s13\n\t" "vmov.f32 s21, s13\n\t" "vmov.f32 s22, s13\n\t" "vmov.f32 s23, s13\n\t"
        "vmov.f32 s24, s13\n\t" "vmov.f32 s25, s13\n\t" "vmov.f32 s26, s13\n\t" "vmov.f32 s27, s13\n\t"
        "vmov.f32 s28, s13\n\t" "vmov.f32 s29, s13\n\t" "vmov.f32 s30, s13\n\t" "vmov.f32 s31, s13\n\t"
        "1:\n\t"
        "ldr %[w], [%[x]]\n\t"
        "add %[x], %[x], %[st]\n\t"
        "sxtab %[t0], %[mg], %[w]\n\t"
        "sxtab %[t1], %[mg], %[w], ror #8\n\t"
        "vmov s8, s9, %[t0], %[t1]\n\t"
        "sxtab %[t0], %[mg], %[w], ror #16\n\t"
        "sxtab %[t1], %[mg], %[w], ror #24\n\t"
        "vmov s10, s11, %[t0], %[t1]\n\t"
        "vldmia %[g0]!, {s0}\n\t"
        "vldmia %[g1]!, {s1}\n\t"
        "vldmia %[g2]!, {s2}\n\t"
        "vldmia %[g3]!, {s3}\n\t"
        "vsub.f32 s8, s8, s12\n\t" "vsub.f32 s9, s9, s12\n\t" "vsub.f32 s10, s10, s12\n\t" "vsub.f32 s11, s11, s12\n\t"
        "vmla.f32 s16, s0, s8\n\t" "vmla.f32 s20, s1, s8\n\t" "vmla.f32 s24, s2, s8\n\t" "vmla.f32 s28, s3, s8\n\t"
        "vmla.f32 s17, s0, s9\n\t" "vmla.f32 s21, s1, s9\n\t" "vmla.f32 s25, s2, s9\n\t" "vmla.f32 s29, s3, s9\n\t"
        "vmla.f32 s18, s0, s10\n\t" "vmla.f32 s22, s1, s10\n\t" "vmla.f32 s26, s2, s10\n\t" "vmla.f32 s30, s3, s10\n\t"
        "vmla.f32 s19, s0, s11\n\t" "vmla.f32 s23, s1, s11\n\t" "vmla.f32 s27, s2, s11\n\t" "vmla.f32 s31, s3, s11\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        "vstmia %[acc], {s16-s31}\n"
        : [x] "+r"(x), [n] "+r"(n), [g0] "+r"(g), [g1] "+r"(g1), [g2] "+r"(g2), [g3] "+r"(g3),
          [w] "=&r"(w), [t0] "=&r"(t0), [t1] "=&r"(t1)
        : [st] "r"(stride), [mg] "r"(magic), [acc] "r"(acc)
        : MCT_VFP_CLOBBERS);
}

/* p[0..n) = +0.0f, eight floats per VSTM (the C library's memset of the M7 firmware stores a word at a
 * time). */
static inline void mct_zero_f32(float *p, uint32_t n) {
    uint32_t blocks = n / 8u;
    if (blocks != 0) {
        __asm__ volatile(
            "vmov s0, s1, %[z], %[z]\n\t"
            "vmov s2, s3, %[z], %[z]\n\t"
            "vmov s4, s5, %[z], %[z]\n\t"
            "vmov s6, s7, %[z], %[z]\n"
            "1:\n\t"
            "vstmia %[p]!, {s0-s7}\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n"
            : [p] "+r"(p), [n] "+r"(blocks)
            : [z] "r"(0u)
            : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "memory", "cc");
    }
    for (uint32_t i = 0; i < n % 8u; i++) {
        p[i] = 0.0f;
    }
}
#else
static inline void mct_zero_f32(float *p, uint32_t n) {
    memset(p, 0, 4u * n);
}
#endif

#endif
