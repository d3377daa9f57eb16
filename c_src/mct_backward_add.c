/* The float32 backward of a residual add: its output gradient (clamp mask applied) added to both
 * inputs' gradients. */
#include "mct_internal.h"

int mct_backward_add_f32(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in,
    const mct_act_t *out, float *gout, float lr) {
    (void)in;
    (void)lr;
    float *ga = (float *)mct_input_grad(m, k, op->in0);
    if (ga != NULL) {
        for (uint32_t i = 0; i < out->size; i++) {
            ga[i] += gout[i];
        }
    }
    float *gb = (float *)mct_input_grad(m, k, op->in1);
    if (gb != NULL) {
        for (uint32_t i = 0; i < out->size; i++) {
            gb[i] += gout[i];
        }
    }
    return MCT_OK;
}
