/* Channels-last (HWC) int8 forward kernels, CMSIS-NN manner: one kernel per file, each with a portable
 * C path and a DSP-extension path (__ARM_FEATURE_DSP: SXTB16/SMLAD, two MACs per instruction) chosen
 * at compile time (-DMCT_PORTABLE forces the portable one). Bit-exact with host_tools/reference.py's
 * conv2d_s8 on the same tensors transposed, through mct_requant.h's arithmetic.
 *
 * Layouts (int8 unless said otherwise):
 *   activations   [H][W][C]           element (y, x, c) at y * row + x * pixel + c (dense: pixel C, row W*C)
 *   pointwise     [Cout][Cin]         one row per output channel (the GEMM's rows)
 *   depthwise     [C][KH][KW]         one row per channel
 *   full conv     [Cout][Cin][KH][KW] one row per output channel, the im2col column in the same order
 *   bias, mult, shift: int32 [Cout]   per output channel, as today's kernels take them
 *
 * Weights keep PyTorch's order, one row per output channel: the trained output channels of a sparse
 * update stay a contiguous prefix of the tensor (their SRAM copy, mct_weight_rows). The kernels reorder
 * what they need on the stack once per call: the depthwise conv a block of channels' taps (which DSP
 * cores unpack into int16 pairs there anyway), the first conv nothing (its column is gathered in the
 * weights' order, as cheap as any other for a few input channels).
 *
 * The kernels need no scratch memory beyond their stack: the first conv's im2col holds two pixels'
 * columns (2 * KH*KW*Cin bytes, at most 2 * MCT_HWC_COL_MAX), eight channels' weights in the column's
 * order (1.25 KB) and their requantization constants (about 0.7 KB, and 512 B of unpacked weights on DSP
 * cores); the depthwise conv copies a block's weights tap-major (up to 784 B). On DSP cores the
 * pointwise conv unpacks a channel pair's weights (up to 1 KB) or, for 8 to 64 input channels, a chunk's
 * table of unpacked weights and constants (NARROW_WORDS, 1.25 KB); the 3x3 stride-1 depthwise conv
 * copies a band of four channels into an int16 tile (1440 B). The deepest kernel path on a Cortex-M7
 * is about 2 KB (-fstack-usage).
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

/* The geometry of a spatial op, on windows of its tensors (the patch-based stage and the row-streamed
 * blocks compute tiles): the input is padded with x_zero (a real zero), pad_h rows above and pad_w
 * columns to the left of the whole input (in_h x in_w), and whatever the outputs need below and to the
 * right. The kernel computes out_h x out_w output pixels from output pixel (y0, x0) on, out_c channels;
 * x points at input pixel (in_y0, in_x0), y at output pixel (y0, x0). Strides in bytes; 0: dense whole
 * tensors (pixel: the channel count, row: the width times the pixel). */
typedef struct {
    uint32_t in_h, in_w, in_c;
    uint32_t out_h, out_w, out_c;
    uint32_t kh, kw, stride_h, stride_w, pad_h, pad_w;
    uint32_t y0, x0, in_y0, in_x0;
    uint32_t x_pixel, x_row, y_pixel, y_row;
} mct_hwc_geom_t;

/* The strides of a geometry, its zeros replaced by the dense defaults. */
static inline void mct_hwc_strides(const mct_hwc_geom_t *g, uint32_t x_c, uint32_t y_c, uint32_t *xp, uint32_t *xr,
    uint32_t *yp, uint32_t *yr) {
    *xp = g->x_pixel ? g->x_pixel : x_c;
    *xr = g->x_row ? g->x_row : g->in_w * *xp;
    *yp = g->y_pixel ? g->y_pixel : y_c;
    *yr = g->y_row ? g->y_row : g->out_w * *yp;
}

/* The largest im2col column of mct_conv_s8_hwc (KH*KW*Cin): 7x7 over 3 channels fits. */
#define MCT_HWC_COL_MAX 160u

/* 1x1 conv, stride 1 (also a fully connected layer: one pixel): y[p * y_pixel + o] for p < pixels,
 * o < cout, from x[p * cin + c], c < cin. An int8 GEMM, two output channels x two pixels at a time. */
void mct_pointwise_s8_hwc(const int8_t *x, uint32_t pixels, uint32_t cin, const int8_t *w, uint32_t cout,
    const mct_hwc_quant_t *q, int8_t *y, uint32_t y_pixel);

/* The largest depthwise kernel (KH*KW taps) of mct_depthwise_s8_hwc: 7x7. */
#define MCT_HWC_TAPS_MAX 49u

/* Depthwise conv of in_c == out_c channels (any KH x KW up to MCT_HWC_TAPS_MAX taps, strides, padding):
 * x points at the first of them in each pixel, w at the first one's row. Returns -1 without writing y
 * when the kernel has more taps, else 0. */
int mct_depthwise_s8_hwc(const int8_t *x, const mct_hwc_geom_t *g, const int8_t *w, const mct_hwc_quant_t *q,
    int8_t *y);

/* Full conv (groups 1) through a two-pixel im2col, for the first layer (small KH*KW*Cin: at most
 * MCT_HWC_COL_MAX; returns -1 without writing y when the column is larger, else 0). */
int mct_conv_s8_hwc(const int8_t *x, const mct_hwc_geom_t *g, const int8_t *w, const mct_hwc_quant_t *q, int8_t *y);

#endif
