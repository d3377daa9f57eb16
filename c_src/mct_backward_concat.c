/* Backward of the channel concatenation (mct_concat_s8.c): the output gradient is channel-planar,
 * so input a's gradient is its first Ca·H·W values and b's the rest, each added to its input's
 * gradient as it is (the requantization is a rescaling in int8 units only; in real units the
 * derivative is 1: the converter's output range covers both inputs', so nothing saturates). */
#include "mct_internal.h"

int mct_backward_concat_f32(mct_model_t *m, uint16_t k, const mct_op_t *op, const float *gout) {
    const uint16_t ins[2] = { op->in0, op->in1 };
    uint32_t off = 0;
    for (int j = 0; j < 2; j++) {
        mct_act_t in;
        mct_act_decode(m, ins[j], &in);
        float *gin = (float *)mct_input_grad(m, k, ins[j]);
        for (uint32_t i = 0; gin != NULL && i < in.size; i++) {
            gin[i] += gout[off + i];
        }
        off += in.size;
    }
    return MCT_OK;
}

/* Integer backward: each slice added to its input's gradient as the add's are (mct_backward_int.c). */
int mct_backward_concat_int(mct_model_t *m, uint16_t k, const mct_op_t *op, const int32_t *g) {
    const uint16_t ins[2] = { op->in0, op->in1 };
    const int32_t e_g = mct_gexp(m)[op->out];
    uint32_t off = 0;
    for (int j = 0; j < 2; j++) {
        mct_act_t in;
        mct_act_decode(m, ins[j], &in);
        int32_t *gin = (int32_t *)mct_input_grad(m, k, ins[j]);
        if (gin != NULL) {
            mct_add_plain_grad(m, ins[j], g + off, in.size, e_g, gin);
        }
        off += in.size;
    }
    return MCT_OK;
}
