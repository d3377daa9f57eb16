/* The integer backward kernels of pointwise (mct_backward_pw_int.c) and depthwise
 * (mct_backward_dw_int.c) convs, called by mct_backward_int.c: gradients channel-planar [C][H][W]
 * int32 mantissas, activations channels last. Integer sums are exact, so these kernels may sum in any
 * order and any blocking: they give the generic loop's (and host_tools/reference/int_backward.py's)
 * bits as long as no accumulator overflows; each kernel says why none does.
 *
 * The contributions T of a conv all satisfy |T| <= 2^t_bits with t_bits = 29 - bitlen(127 n_terms)
 * (mct_backward_int.c weighted_contributions), so every input-gradient element's sum of products
 * w * T has |sum| <= 127 * n_terms * 2^t_bits < 2^29 (|w| <= 128 adds at most 1/127 of that). */
#ifndef MCT_BACKWARD_CONV_INT_H
#define MCT_BACKWARD_CONV_INT_H

#include "mct_internal.h"

/* Kernel rows the depthwise input gradient's stride-1 path takes (taller kernels: the per-tap path). */
#define MCT_DW_KH_MAX 7

/* Output positions [*lo, *hi) of a conv or pool along one axis that read input position
 * o * stride - pad + k (kernel tap k) inside [0, in_len). */
void mct_conv_taps(uint32_t out_len, uint32_t stride, int32_t pad, int32_t k, int32_t in_len, uint32_t *lo,
    uint32_t *hi);

/* Pointwise (1x1, stride 1, one group) input gradient: gin[c][p] += sum over o < n_out of
 * W[o][c] * t[o][p], for c < n_in, p < hw (t and gin planar, rows hw apart); |t| <= 2^t_bits. On DSP
 * cores t may be rearranged in place during the call: it holds the same values on return. */
void mct_pw_input_grad_int(uint32_t hw, uint32_t n_in, uint32_t n_out, const mct_rows_t *w, int32_t t_bits,
    int32_t *t, int32_t *gin);

/* Pointwise weight-gradient sums of one output channel: sums[j] = sum over p < hw of
 * t[p] * (x[p * stride + j] - zero), j < n; t_sum = the sum of t[p]; |t[p]| <= 2^t_bits. t as
 * mct_pw_input_grad_int's. */
void mct_pw_weight_sums_int(uint32_t hw, uint32_t n, const int8_t *x, uint32_t stride, int32_t zero,
    int32_t *t, int64_t t_sum, int32_t t_bits, int64_t *sums);

/* The input gradient of one input channel from one output channel of a conv (a depthwise conv's
 * channel; any other conv's (output, input) pair): gin (in->h x in->w) += the contributions
 * w[ky][kx] * t[oy][ox] (t: out->h x out->w) of the op's taps. */
void mct_channel_input_grad_int(const mct_op_t *op, const mct_act_t *in, const mct_act_t *out, const int8_t *w,
    const int32_t *t, int32_t *gin);

/* The weight-gradient sum of tap (ky, kx) between one input and one output channel of a conv: the
 * sum over the outputs (oy, ox) that read an input pixel with that tap of t[oy][ox] *
 * (x[pixel * in->c] - zero); x points at the channel's value of pixel 0; |t| <= 2^t_bits. */
int64_t mct_tap_sum_int(const mct_op_t *op, const mct_act_t *in, const mct_act_t *out, const int8_t *x,
    int32_t zero, const int32_t *t, int32_t t_bits, int32_t ky, int32_t kx);

#endif
