/* The float32 backward of the pools (no trained tensors, no clamp): the input gradient only. */
#include "mct_internal.h"

int mct_backward_pool_f32(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in,
    const mct_act_t *out, float *gout, float lr) {
    (void)lr;
    float *gin = (float *)mct_input_grad(m, k, op->in0);
    if (gin == NULL) {
        return MCT_OK;
    }
    if (op->type == MCT_OP_AVGPOOL) {
        const uint32_t hw = (uint32_t)in->h * in->w;
        for (uint32_t c = 0; c < in->c; c++) {
            const float v = gout[c] / (float)hw;
            for (uint32_t i = 0; i < hw; i++) {
                gin[c * hw + i] += v;
            }
        }
    } else if (op->type == MCT_OP_MAXPOOL2D) {
        mct_maxpool2d_input_grad_f32(op, in, mct_act_data(m, in), out, gout, gin);
    } else {
        mct_avgpool2d_input_grad_f32(op, in, out, gout, gin);
    }
    return MCT_OK;
}
