/* acc + a * b for the float backward's hot loops, the product rounded to float before the sum
 * (-ffp-contract=off everywhere, so the numpy reference's separately rounded operations hold).
 * On a Cortex-M7 (MCT_FPU_VMLA, set by the M7 boards' builds) it is one VMLA.F32: ARMv7-M
 * defines VMLA as FPAdd(acc, FPMul(a, b)), each rounded, so the result is the VMUL + VADD pair's,
 * in one instruction (one issue slot) instead of two. Not on a Cortex-M4: there VMLA takes 3
 * cycles against the pair's 2. GCC itself would contract to VFMA (fused, one rounding), which is
 * not bit-exact, hence the asm. */
#ifndef MCT_MLA_F32_H
#define MCT_MLA_F32_H

#if defined(MCT_FPU_VMLA) && defined(__ARM_FP) && (__ARM_FP & 4)
/* The Cortex-M7's FPv5 also rounds to an integral float in one instruction (VRINTM, VRINTP: GCC's
 * floorf, ceilf), exactly. */
#define MCT_FPU_VRINT 1
static inline __attribute__((always_inline)) float mct_mla_f32(float acc, float a, float b) {
    __asm__("vmla.f32 %0, %1, %2" : "+t"(acc) : "t"(a), "t"(b));
    return acc;
}
#else
static inline float mct_mla_f32(float acc, float a, float b) {
    return acc + a * b;
}
#endif

#endif
