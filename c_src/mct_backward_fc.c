/* The float32 backward of a fully connected layer: the input gradient first, with the weights as
 * they were in this step's forward, then the in-place updates of its trained weights and bias. */
#include "mct_internal.h"

int mct_backward_fc_f32(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in,
    const mct_act_t *out, float *gout, float lr) {
    const float *ws = (const float *)mct_tensor(m, op->wscale);
    float *gin = (float *)mct_input_grad(m, k, op->in0);
    if (gin != NULL) {
        const mct_rows_t w = mct_weight_rows(m, op->weight, in->size);
        mct_fc_input_grad_f32(in->size, out->size, &w, gout, ws, gin);
    }
    m->skipped_updates += mct_update_fc_weight(m, op, in, mct_act_data(m, in), gout, lr);
    if (mct_tensor_trained(m, op->bias)) {
        for (uint32_t o = 0; o < out->size; o++) {
            m->skipped_updates += mct_update_bias(m, op, o, gout[o], lr);
        }
    }
    return MCT_OK;
}
