/* The C core's build switches, all in one place. Each is set on the compiler's command line
 * (-DNAME) or by the compiler itself; none has to be set for a working build. The files that test
 * one include this header (through mct_internal.h or mct_requant.h).
 *
 *  MCT_PORTABLE           the portable C loops even on a core with the DSP extension (make bench-mcu's
 *                         "qemu-m7 portable" firmware): mct_conv2d_1x1_s8.c, mct_depthwise_conv_s8.c.
 *  MCT_REFERENCE_KERNELS  the kernels as they were before the fast paths: requantization step by step,
 *                         every conv window clipped, depthwise convs through the general kernel (make
 *                         bench-mcu's baseline; the armv6m .mpy, for its code size): mct_requant.h/.c,
 *                         mct_depthwise_conv_s8.c, mct_conv2d_1x1_s8.c.
 *  __ARM_FEATURE_DSP      (compiler: Cortex-M4/M7/M33) SMLAD/SXTB16 inner loops in the pointwise and
 *                         depthwise kernels, unless MCT_PORTABLE.
 *  MCT_DW_SIMD            (derived, not to be set: mct_depthwise_conv_s8.c) __ARM_FEATURE_DSP without
 *                         MCT_PORTABLE.
 *  __ARM_ARCH_6M__        (compiler: Cortex-M0/M0+, Thumb-1) no 32x32->64 multiply: the requantization
 *                         multiplies in 16-bit halves (mct_requant.h), the pointwise kernel takes no
 *                         output-channel pairs (mct_conv2d_1x1_s8.c: eight low registers).
 *  __GNUC__, __clang__    (compiler) always_inline on the per-output steps, and with GCC optimize("O2")
 *                         on the kernels' inner loops (mct_requant.h); other compilers: plain inline.
 */
#ifndef MCT_CONFIG_H
#define MCT_CONFIG_H

#endif
