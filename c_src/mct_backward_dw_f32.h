/* The float32 backward of a depthwise conv (one input channel per output channel), output channel
 * by output channel (mct_backward_dw_f32.c): gradients channel-planar [C][HW], activations channels last. */
#ifndef MCT_BACKWARD_DW_F32_H
#define MCT_BACKWARD_DW_F32_H

#include "mct_internal.h"

/* The largest kernel (kh * kw taps) whose forward weights the depthwise backward holds as floats on
 * the stack while the trained ones are updated (up to 7x7); larger ones take the scatter of
 * mct_conv2d_input_grad_f32 before the update. */
#define MCT_DW_TAPS 49u

/* Output channel o of a depthwise conv: its bias, its trained weights, then its share of the input
 * gradient, gi[iy][ix] += W[o, ky, kx] * (go[oy][ox] * w_scale[o]) in (ky, kx) order (gi: the channel
 * of the input gradient, or NULL when the input needs none), with the weights of this step's forward.
 * go (its output gradient, clamp mask applied) is left scaled by w_scale[o] (or as it was); the
 * stochastic rule draws the bias's number, then the weights'. Op has one input channel per group
 * (gi is input channel o / (output channels per group)). Returns the updates skipped. */
uint32_t mct_dw_channel_backward_f32(mct_model_t *m, const mct_op_t *op, const mct_act_t *in,
    const mct_act_t *out, uint32_t o, float *go, float *gi, float lr);

#endif
