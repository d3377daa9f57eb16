/* The float32 backward of a residual add: its output gradient (clamp mask applied) added to both
 * inputs' gradients. An input that only the add reads may have its gradient where the output's is
 * (host_tools/memory/arena.py add_shared_grads): it gets the output's in place, last, after the other
 * input has read it. */
#include "mct_internal.h"

static float *grad_of(const mct_model_t *m, uint16_t a) {
    mct_act_t act;
    mct_act_decode(m, a, &act);
    return mct_act_grad(m, &act);
}

static void add_to_input(mct_model_t *m, uint16_t k, uint16_t a, float *gout, uint32_t n) {
    float *g = grad_of(m, a);
    if (g == gout) {
        for (uint32_t i = 0; i < n; i++) {
            gout[i] = 0.0f + gout[i];       /* as zeroed, then added to: -0.0 becomes +0.0 there too */
        }
        return;
    }
    g = (float *)mct_input_grad(m, k, a);
    if (g != NULL) {
        for (uint32_t i = 0; i < n; i++) {
            g[i] += gout[i];
        }
    }
}

int mct_backward_add_f32(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in,
    const mct_act_t *out, float *gout, float lr) {
    (void)in;
    (void)lr;
    if (grad_of(m, op->in0) == gout) {
        add_to_input(m, k, op->in1, gout, out->size);
        add_to_input(m, k, op->in0, gout, out->size);
    } else {
        add_to_input(m, k, op->in0, gout, out->size);
        add_to_input(m, k, op->in1, gout, out->size);
    }
    return MCT_OK;
}
