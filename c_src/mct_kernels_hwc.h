/* Channels-last (HWC) int8 forward kernels, CMSIS-NN manner: one kernel per file, each with a portable
 * C path and a DSP-extension path (__ARM_FEATURE_DSP: SXTB16/SMLAD, two MACs per instruction) chosen
 * at compile time (-DMCT_PORTABLE forces the portable one). Bit-exact with host_tools/reference.py's
 * conv2d_s8 on the same tensors transposed, through mct_requant.h's arithmetic.
 *
 * Layouts (int8 unless said otherwise):
 *   activations   [H][W][C]           element (y, x, c) at (y * W + x) * C + c
 *   pointwise     [Cout][Cin]         one row per output channel (the GEMM's rows)
 *   depthwise     [KH][KW][C]         one tap's C weights contiguous, like an input pixel
 *   full conv     [Cout][KH][KW][Cin] one row per output channel, in the order of the im2col column
 *   bias, mult, shift: int32 [Cout]   per output channel, as today's kernels take them
 *
 * The weights stay plain int8 in these layouts (no SIMD interleaving in the file): on DSP cores the
 * kernels unpack (sign-extend into int16 pairs) the weights of the channels they work on onto the
 * stack once per call, which is what an interleaved int16 layout would save, without doubling Flash.
 *
 * The kernels need no scratch memory beyond their stack: the first conv's im2col holds two pixels'
 * columns (2 * KH*KW*Cin bytes, at most 2 * MCT_HWC_COL_MAX) and the requantization constants of eight
 * channels (about 0.7 KB, and 512 B of unpacked weights on DSP cores); on DSP cores the pointwise conv
 * unpacks a channel pair's weights (up to 1 KB), the depthwise conv a channel quad's (up to 392 B).
 *
 * Instructions per MAC on the layer shapes of MobileNetV2-w0.35, beside CMSIS-NN: make bench-kernels
 * (docs/benchmarks.md). */
#ifndef MCT_KERNELS_HWC_H
#define MCT_KERNELS_HWC_H

#include <stdint.h>

/* The quantization of one op: zero points, output clamp, and per output channel bias and
 * fixed-point multiplier/shift (requant(bias + acc) + y_zero, clamped to [act_min, act_max]). */
typedef struct {
    int32_t x_zero, y_zero, act_min, act_max;
    const int32_t *bias, *mult, *shift;
} mct_hwc_quant_t;

/* The geometry of a spatial op. The input is padded with x_zero (a real zero): pad_h rows above,
 * pad_w columns to the left, and whatever out_h/out_w need below and to the right (any amount, even
 * whole windows past the input). */
typedef struct {
    uint32_t in_h, in_w, in_c;
    uint32_t out_h, out_w, out_c;
    uint32_t kh, kw, stride_h, stride_w, pad_h, pad_w;
} mct_hwc_geom_t;

/* The largest im2col column of mct_conv_s8_hwc (KH*KW*Cin): 7x7 over 3 channels fits. */
#define MCT_HWC_COL_MAX 160u

/* 1x1 conv, stride 1 (also a fully connected layer: one pixel): y[p][o] for p < pixels, o < cout,
 * from x[p][c], c < cin. An int8 GEMM, two output channels x two pixels at a time. */
void mct_pointwise_s8_hwc(const int8_t *x, uint32_t pixels, uint32_t cin, const int8_t *w, uint32_t cout,
    const mct_hwc_quant_t *q, int8_t *y);

/* Depthwise conv (in_c == out_c, any KH x KW, strides, padding). */
void mct_depthwise_s8_hwc(const int8_t *x, const mct_hwc_geom_t *g, const int8_t *w, const mct_hwc_quant_t *q,
    int8_t *y);

/* Full conv (groups 1) through a two-pixel im2col, for the first layer (small KH*KW*Cin: at most
 * MCT_HWC_COL_MAX; returns -1 without writing y when the column is larger, else 0). */
int mct_conv_s8_hwc(const int8_t *x, const mct_hwc_geom_t *g, const int8_t *w, const mct_hwc_quant_t *q, int8_t *y);

#endif
