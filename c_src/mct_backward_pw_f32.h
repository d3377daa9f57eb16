/* The float32 backward kernels of pointwise (1x1, stride 1) convs (mct_backward_pw_f32.c): gradients
 * channel-planar [C][HW], activations channels last. */
#ifndef MCT_BACKWARD_PW_F32_H
#define MCT_BACKWARD_PW_F32_H

#include "mct_internal.h"

/* Floats of stack the fused block backward (mct_block_backward.c) may use to hold the gradients of
 * two or four expanded channels, so that its pointwise products run on pairs or quads of channels
 * (1.5 KB: an 8x8 map's quad). */
#define MCT_BWD_TILE 384u
/* Input channels the quad kernels take at a time (their float weights and sums on the stack). */
#define MCT_BWD_QUAD_CHUNK 16u

/* One output channel's share of the input gradient: gin[c][p] += w[c] * (g[p] * wscale) for
 * c < n_in, p < hw (gin's rows hw floats apart). */
void mct_pw_input_grad_f32(uint32_t hw, uint32_t n_in, const int8_t *w, const float *g, float wscale,
    float *gin);

/* One input channel e of the input gradient, from output channels [o0, o1) in order:
 * acc[p] += W[o][e] * (g[o][p] * ws[o]); ws NULL when g's rows are already scaled by w_scale
 * (then acc[p] += W[o][e] * g[o][p], the same product). */
void mct_pw_input_grad_col_f32(uint32_t hw, const mct_rows_t *w, uint32_t e, uint32_t o0, uint32_t o1,
    const float *g, const float *ws, float *acc);

/* The weight gradient of one output channel over n input channels: total[j] = the sum over the
 * pixels, in order, of g[p] * (x[p * stride + j] - zero). */
void mct_pw_weight_grad_f32(uint32_t hw, uint32_t n, const int8_t *x, uint32_t stride, int32_t zero,
    const float *g, float *total);

/* Two output channels at once, channel 0's product first for every element (the same operations
 * as two calls of mct_pw_input_grad_f32 in turn). */
void mct_pw_input_grad2_f32(uint32_t hw, uint32_t n_in, const int8_t *w0, const int8_t *w1, const float *g0,
    const float *g1, float ws0, float ws1, float *gin);
/* Input channels e and e + 1 at once into acc0 and acc1 (as two calls of mct_pw_input_grad_col_f32). */
void mct_pw_input_grad_col2_f32(uint32_t hw, const mct_rows_t *w, uint32_t e, uint32_t o0, uint32_t o1,
    const float *g, const float *ws, float *acc0, float *acc1);
/* Two output channels' weight gradients at once, from their gradients g0 and g1. */
void mct_pw_weight_grad2_f32(uint32_t hw, uint32_t n, const int8_t *x, uint32_t stride, int32_t zero,
    const float *g0, const float *g1, float *total0, float *total1);

/* Four output channels at once, g their gradients [4][hw] (mct_pw_input_grad2_f32's order, four
 * products per element, w[k] and ws[k] channel k's weights and w_scale). */
void mct_pw_input_grad4_f32(uint32_t hw, uint32_t n_in, const int8_t *const *w, const float *g, const float *ws,
    float *gin);
/* Four output channels' weight gradients at once, g [4][hw], into total[k * t_stride + j]. */
void mct_pw_weight_grad4_f32(uint32_t hw, uint32_t n, const int8_t *x, uint32_t stride, int32_t zero,
    const float *g, float *total, uint32_t t_stride);

/* Pointwise conv weights [c0, c0 + n) of trained output channel o from their gradient sums
 * (mct_sgd_qas.c): the update rule's steps in channel order. Returns the updates skipped. */
uint32_t mct_update_pw_weights(mct_model_t *m, const mct_op_t *op, uint32_t o, uint32_t row_len, uint32_t c0,
    uint32_t n, const float *total, float lr);

/* The update rule's steps of n int8 weights in a row (mct_update_rule.c). */
uint32_t mct_apply_steps_s8(mct_model_t *m, int8_t *w, void *shadow, uint32_t i0, uint32_t n, const float *total,
    float lr, float x_scale, float ws, int qas);

#endif
