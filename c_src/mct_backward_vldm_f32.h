/* The inner loops of the pointwise float backward (mct_backward_pw_f32.c) on a Cortex-M7, in
 * assembly so that a run of consecutive floats moves with one VLDM/VSTM (GCC loads each float on its
 * own): the same VMLA.F32 operations, on the same operands, in the same order per element, as the C
 * loops they replace (MCT_FPU_VMLA: bit-exact with the separately rounded multiply and add). Used
 * where mct_mla_f32.h's VMLA is (MCT_VLDM_F32); s16-s31 are saved by the compiler (clobbered). */
#ifndef MCT_BACKWARD_VLDM_F32_H
#define MCT_BACKWARD_VLDM_F32_H

#include <stdint.h>
#include <string.h>

#if defined(MCT_FPU_VMLA) && defined(__ARM_FP) && (__ARM_FP & 4) && !defined(MCT_REFERENCE_KERNELS)
#define MCT_VLDM_F32 1

#define MCT_VFP_CLOBBERS "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", \
    "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", \
    "s28", "s29", "s30", "s31", "memory", "cc"

/* n >= 1 rows of 4 floats, q rows `stride` bytes apart: q[i] = mla(mla(mla(mla(q[i], w[0], s[0][i]),
 * w[1], s[1][i]), w[2], s[2][i]), w[3], s[3][i]) for i < 4, w the row's 4 weights (wq: [n][4]),
 * s [4][4] (channel k's factors of the 4 pixels). */
static inline void mct_vldm_quad_rows(float *q, const float *wq, uint32_t n, uint32_t stride, const float *s) {
    __asm__ volatile(
        "vldmia %[s], {s16-s31}\n"
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
        : [q] "+r"(q), [w] "+r"(wq), [n] "+r"(n)
        : [s] "r"(s), [st] "r"(stride)
        : MCT_VFP_CLOBBERS);
}

/* n >= 1 rows of g, `stride` bytes apart, into 8 pixels of two accumulators: a[i] = mla(a[i], w[0],
 * g[i]), b[i] = mla(b[i], w[1], g[i]) for i < 8, row by row, w the row's two weights (wq: [n][2]). */
static inline void mct_vldm_col2_rows(float *a, float *b, const float *wq, const float *g, uint32_t n,
    uint32_t stride) {
    __asm__ volatile(
        "vldmia %[a], {s16-s23}\n\t"
        "vldmia %[b], {s24-s31}\n"
        "1:\n\t"
        "vldmia %[w]!, {s8-s9}\n\t"
        "vldmia %[g], {s0-s7}\n\t"
        "add %[g], %[g], %[st]\n\t"
        "vmla.f32 s16, s8, s0\n\t" "vmla.f32 s24, s9, s0\n\t" "vmla.f32 s17, s8, s1\n\t" "vmla.f32 s25, s9, s1\n\t"
        "vmla.f32 s18, s8, s2\n\t" "vmla.f32 s26, s9, s2\n\t" "vmla.f32 s19, s8, s3\n\t" "vmla.f32 s27, s9, s3\n\t"
        "vmla.f32 s20, s8, s4\n\t" "vmla.f32 s28, s9, s4\n\t" "vmla.f32 s21, s8, s5\n\t" "vmla.f32 s29, s9, s5\n\t"
        "vmla.f32 s22, s8, s6\n\t" "vmla.f32 s30, s9, s6\n\t" "vmla.f32 s23, s8, s7\n\t" "vmla.f32 s31, s9, s7\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        "vstmia %[a], {s16-s23}\n\t"
        "vstmia %[b], {s24-s31}\n"
        : [g] "+r"(g), [w] "+r"(wq), [n] "+r"(n)
        : [a] "r"(a), [b] "r"(b), [st] "r"(stride)
        : MCT_VFP_CLOBBERS);
}

/* The same with the rows' factors: t = g[i] * w[2] first (the row's w_scale), then a[i] = mla(a[i],
 * w[0], t), b[i] = mla(b[i], w[1], t) (wq: [n][3]). */
static inline void mct_vldm_col2_rows_scaled(float *a, float *b, const float *wq, const float *g, uint32_t n,
    uint32_t stride) {
    __asm__ volatile(
        "vldmia %[a], {s16-s23}\n\t"
        "vldmia %[b], {s24-s31}\n"
        "1:\n\t"
        "vldmia %[w]!, {s8-s10}\n\t"
        "vldmia %[g], {s0-s7}\n\t"
        "add %[g], %[g], %[st]\n\t"
        "vmul.f32 s0, s0, s10\n\t" "vmul.f32 s1, s1, s10\n\t" "vmul.f32 s2, s2, s10\n\t" "vmul.f32 s3, s3, s10\n\t"
        "vmul.f32 s4, s4, s10\n\t" "vmul.f32 s5, s5, s10\n\t" "vmul.f32 s6, s6, s10\n\t" "vmul.f32 s7, s7, s10\n\t"
        "vmla.f32 s16, s8, s0\n\t" "vmla.f32 s24, s9, s0\n\t" "vmla.f32 s17, s8, s1\n\t" "vmla.f32 s25, s9, s1\n\t"
        "vmla.f32 s18, s8, s2\n\t" "vmla.f32 s26, s9, s2\n\t" "vmla.f32 s19, s8, s3\n\t" "vmla.f32 s27, s9, s3\n\t"
        "vmla.f32 s20, s8, s4\n\t" "vmla.f32 s28, s9, s4\n\t" "vmla.f32 s21, s8, s5\n\t" "vmla.f32 s29, s9, s5\n\t"
        "vmla.f32 s22, s8, s6\n\t" "vmla.f32 s30, s9, s6\n\t" "vmla.f32 s23, s8, s7\n\t" "vmla.f32 s31, s9, s7\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        "vstmia %[a], {s16-s23}\n\t"
        "vstmia %[b], {s24-s31}\n"
        : [g] "+r"(g), [w] "+r"(wq), [n] "+r"(n)
        : [a] "r"(a), [b] "r"(b), [st] "r"(stride)
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
