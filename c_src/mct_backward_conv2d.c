/* The float32 backward of a conv (depthwise or not), its output gradient's clamp mask applied:
 * output channel by channel, its bias, its share of the input gradient (with the weights of this
 * step's forward), then its trained weights, updated in place; so no buffer holds more than one
 * gradient. A depthwise conv whose input gradient the plan put one channel below its output
 * gradient runs in place. */
#include "mct_backward_dw_f32.h"

/* Did the plan put op k's input gradient one channel below its output gradient, k being a depthwise
 * conv (one input channel per output channel, same shape in and out) and the input's only reader?
 * Then its backward runs in place (below); any other layout takes the general path. */
int mct_in_place(const mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in, const mct_act_t *out) {
    if (op->type != MCT_OP_CONV2D || op->groups != in->c || out->c != in->c || out->h != in->h ||
        out->w != in->w || in->grad_offset == MCT_NO_GRAD ||
        (uint64_t)in->grad_offset + 4ull * in->h * in->w != out->grad_offset) {
        return 0;
    }
    for (uint16_t j = 0; j < m->n_ops; j++) {
        mct_op_t other;
        mct_op_decode(m, j, &other);
        if (j != k && (other.in0 == op->in0 || (mct_two_inputs(&other) && other.in1 == op->in0))) {
            return 0;
        }
    }
    return 1;
}

/* The backward of a depthwise conv whose input gradient the plan put one channel below its output
 * gradient (host_tools/memory/blocks.py inplace_ops; mct_in_place checked the shapes): input channel o's
 * gradient depends on output channel o's only, so it overwrites output channel o-1's, which is no
 * longer needed. Same float operations in the same order as the general path. */
static void depthwise_backward_in_place(mct_model_t *m, const mct_op_t *op, const mct_act_t *in,
    const mct_act_t *out, float *gout, float lr) {
    const uint32_t hw = (uint32_t)out->h * out->w;
    for (uint32_t o = 0; o < out->c; o++) {
        float *go = gout + (size_t)o * hw;
        float *gi = go - hw;
        memset(gi, 0, 4u * hw);
        m->skipped_updates += mct_dw_channel_backward_f32(m, op, in, out, o, go, gi, lr);
    }
}

int mct_backward_conv2d_f32(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in,
    const mct_act_t *out, float *gout, float lr) {
    if (mct_in_place(m, k, op, in, out)) {
        depthwise_backward_in_place(m, op, in, out, gout, lr);
        return MCT_OK;
    }
    const float *ws = (const float *)mct_tensor(m, op->wscale);
    const uint32_t hw = (uint32_t)out->h * out->w;
    const int train_bias = mct_tensor_trained(m, op->bias);
    const mct_rows_t w = mct_weight_rows(m, op->weight, (uint32_t)(in->c / op->groups) * op->kh * op->kw);
    float *gin = (float *)mct_input_grad(m, k, op->in0);
    if (op->groups == in->c) {      /* depthwise: one input channel per group */
        const uint32_t opg = out->c / op->groups, ihw = (uint32_t)in->h * in->w;
        for (uint32_t o = 0; o < out->c; o++) {
            float *gi = gin != NULL ? gin + (size_t)(o / opg) * ihw : NULL;
            m->skipped_updates += mct_dw_channel_backward_f32(m, op, in, out, o, gout + (size_t)o * hw, gi, lr);
        }
        return MCT_OK;
    }
    for (uint32_t o = 0; o < out->c; o++) {
        const float *go = gout + (size_t)o * hw;
        if (train_bias) {
            float total = 0.0f;
            for (uint32_t i = 0; i < hw; i++) {
                total += go[i];
            }
            m->skipped_updates += mct_update_bias(m, op, o, total, lr);
        }
        if (gin != NULL) {
            mct_conv2d_input_grad_f32(op, in, out, o, mct_row(&w, o), go, ws[o], gin);
        }
        if (o < w.n_sram) {
            m->skipped_updates += mct_update_conv_weight(m, op, in, mct_act_data(m, in), out, o, go, lr);
        }
    }
    return MCT_OK;
}
