/* The C core's build switches, all in one place. Each is set on the compiler's command line
 * (-DNAME) or by the compiler itself; none has to be set for a working build. The files that test
 * one include this header (through mct_internal.h or mct_requant.h).
 *
 *  MCT_PORTABLE           the portable C loops even on a core with the DSP extension or SSE2 (make
 *                         bench-mcu's "qemu-m7 portable" firmware): the channels-last kernels
 *                         (mct_*_s8_hwc.c through mct_gemm_s8_hwc.h, mct_gemm_s8_sse2.h).
 *  MCT_REFERENCE_KERNELS  the kernels as they were before the fast paths: requantization step by step,
 *                         every conv window clipped, depthwise convs through the general kernel (make
 *                         bench-mcu's baseline; the armv6m/armv7m .mpy, for their code size):
 *                         mct_requant.h/.c, every conv through mct_conv2d_s8.c (mct_conv2d.c); the
 *                         channels-last kernels requantize every output by mct_rq_s8 (mct_gemm_s8_hwc.h).
 *  __ARM_FEATURE_DSP      (compiler: Cortex-M4/M7/M33) SMLAD/SXTB16 inner loops in the pointwise and
 *                         depthwise kernels, unless MCT_PORTABLE; in the channels-last kernels also
 *                         SXTAB16, SMLABB/SMLATT and SMMULR (MCT_HWC_DSP, derived: mct_gemm_s8_hwc.h).
 *  __ARM_FEATURE_SAT      (compiler: ARMv7-M and later) SSAT for the full int8 output range in the
 *                         channels-last kernels' requantization (mct_gemm_s8_hwc.h).
 *  __SSE2__, __ARM_NEON   (compiler: hosts with SIMD) the channels-last depthwise kernel works on 16
 *                         channels at a time, and GCC vectorizes the channels-last kernels' loops at -O2
 *                         (MCT_HWC_LOOP: its dynamic cost model; mct_gemm_s8_hwc.h); on SSE2 hosts
 *                         the pointwise, depthwise and first-conv cores use intrinsics (mct_gemm_s8_sse2.h),
 *                         unless MCT_PORTABLE or MCT_REFERENCE_KERNELS.
 *  __ARM_ARCH_6M__        (compiler: Cortex-M0/M0+, Thumb-1) no 32x32->64 multiply: the requantization
 *                         multiplies in 16-bit halves (mct_requant.h).
 *  __GNUC__, __clang__    (compiler) always_inline on the per-output steps, and with GCC optimize("O2")
 *                         on the kernels' inner loops (mct_requant.h); other compilers: plain inline.
 *  MCT_FPU_VMLA           (Cortex-M7 boards' builds) the float backward's multiply-adds as VMLA.F32
 *                         (mct_mla_f32.h); its pointwise row loops in assembly with VLDM/VSTM
 *                         (mct_backward_vldm_f32.h) and the stochastic rounding through VRINTM/VRINTP.
 *  MCT_SMALL_CODE         the float backward's hot loops not unrolled (MCT_UNROLL below): the armv6m and
 *                         armv7m native modules, which are loaded into a stock port's GC heap beside the
 *                         model (natmod/mcutrain/Makefile). Same results: unrolling reorders no operation.
 */
#ifndef MCT_CONFIG_H
#define MCT_CONFIG_H

/* MCT_UNROLL(n) before a loop: GCC unrolls it n times (register blocks of independent elements). */
#define MCT_PRAGMA(x) _Pragma(#x)
#if defined(MCT_SMALL_CODE) || !defined(__GNUC__)
#define MCT_UNROLL(n)
#else
#define MCT_UNROLL(n) MCT_PRAGMA(GCC unroll n)
#endif

#endif
