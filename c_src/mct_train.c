/* One training step: forward, softmax cross-entropy, then the backward of each op in reverse order,
 * each trained tensor updated in place as soon as its gradient is known. No allocation: every
 * buffer is a slot of the arena placed by the host's static memory plan. The backward of each op
 * type is in its own file (mct_backward_<op>.c; the integer backward: mct_backward_int.c; fused
 * blocks: mct_block_backward.c). */
#include "mct_internal.h"

/* The gradient of activation a for op k to accumulate into; zeroed by its first writer, which in
 * the reverse order is the last op (in forward order) that consumes a. float32, or int32 with an
 * exponent that the first writer sets (integer backward). */
void *mct_input_grad(mct_model_t *m, uint16_t k, uint16_t a) {
    mct_act_t act;
    mct_act_decode(m, a, &act);
    float *g = mct_act_grad(m, &act);
    if (g == NULL) {
        return NULL;
    }
    for (uint16_t j = k + 1; j < m->n_ops; j++) {
        mct_op_t later;
        mct_op_decode(m, j, &later);
        if (later.in0 == a || (mct_two_inputs(&later) && later.in1 == a)) {
            return g;
        }
    }
    memset(g, 0, 4u * act.size);
    if (m->train_flags & MCT_TRAIN_INT_BACKWARD) {
        mct_gexp(m)[a] = -32768;       /* no exponent yet: the first contribution sets it */
    }
    return g;
}

int mct_loss_backward(mct_model_t *m, uint32_t label, float *loss) {
    mct_act_t out;
    mct_op_t last;
    if (m->workspace == NULL) {
        MCT_FAIL(m, MCT_E_NOT_ATTACHED, 0, 0, 0);
    }
    if (!m->n_trained) {
        MCT_FAIL(m, MCT_E_NOT_TRAINABLE, 0, 0, 0);
    }
    mct_act_decode(m, m->output, &out);
    if (label >= out.size) {
        MCT_FAIL(m, MCT_E_LABEL, 0, label, out.size);
    }
    mct_op_decode(m, m->n_ops - 1, &last);
    uint32_t n;
    const int32_t *logits = mct_logits32(m, &n);
    if (m->train_flags & MCT_TRAIN_INT_BACKWARD) {
        *loss = mct_softmax_xent_int(m, logits, n, label, last.out_scale,
            (const float *)mct_tensor(m, m->exp_table), (int32_t *)mct_act_grad(m, &out), m->output);
        m->last_loss = *loss;
        return MCT_OK;
    }
    *loss = mct_softmax_xent_f32(logits, n, label, last.out_scale,
        (const float *)mct_tensor(m, m->exp_table), mct_act_grad(m, &out));
    m->last_loss = *loss;
    return MCT_OK;
}

int mct_backward_op(mct_model_t *m, uint16_t k, float lr) {
    mct_op_t op;
    mct_act_t in, out;
    if (m->workspace == NULL) {
        MCT_FAIL(m, MCT_E_NOT_ATTACHED, 0, 0, 0);
    }
    if (k >= m->n_ops) {
        MCT_FAIL(m, MCT_E_OP_INDEX, 0, k, m->n_ops);
    }
    if (!mct_isfinite(lr) || lr < 0.0f) {
        MCT_FAIL(m, MCT_E_LR, 0, 0, 0);
    }
    mct_op_decode(m, k, &op);
    mct_act_decode(m, op.out, &out);
    mct_act_decode(m, op.in0, &in);
    float *gout = mct_act_grad(m, &out);
    if (gout == NULL || mct_fused_member(m, k)) {
        return MCT_OK;      /* pruned (nothing trained at or before this op), or done by its block's head */
    }
    if (m->train_flags & MCT_TRAIN_INT_BACKWARD) {
        return mct_backward_op_int(m, k, &op, lr);
    }
    if (op.type == MCT_OP_AVGPOOL || op.type == MCT_OP_MAXPOOL2D || op.type == MCT_OP_AVGPOOL2D) {
        return mct_backward_pool_f32(m, k, &op, &in, &out, gout, lr);
    }
    if (op.type == MCT_OP_LUT) {
        return mct_backward_lut_f32(m, k, &op, &in, &out, gout, lr);
    }
    if (op.type == MCT_OP_CONCAT) {
        return mct_backward_concat_f32(m, k, &op, gout);
    }
    mct_clamp_mask_f32(out.size, mct_act_mask(m, &out), gout);      /* conv, FC, add: clamped outputs */
    if (mct_fused_head(m, k)) {
        return mct_block_backward_f32(m, k, lr);
    }
    if (op.type == MCT_OP_MUL) {
        return mct_backward_mul_f32(m, k, &op, &in, &out, gout, lr);
    }
    return (op.type == MCT_OP_ADD ? mct_backward_add_f32 : op.type == MCT_OP_CONV2D ? mct_backward_conv2d_f32
                                                                                  : mct_backward_fc_f32)(
        m, k, &op, &in, &out, gout, lr);
}

/* The loss and the backward after the forward (status r). */
static int train_after_forward(mct_model_t *m, int r, uint32_t label, float lr, float *loss) {
    if (r == MCT_OK) {
        r = mct_loss_backward(m, label, loss);
    }
    if (r == MCT_OK && !mct_isfinite(*loss)) {
        m->skipped_steps++;
        MCT_FAIL(m, MCT_E_NUMERIC, 0, 0, 0);
    }
    for (int k = (int)m->n_ops - 1; r == MCT_OK && k >= 0; k--) {
        r = mct_backward_op(m, (uint16_t)k, lr);
    }
    if (r == MCT_OK) {
        m->steps++;
    }
    return r;
}

static int step_ok(mct_model_t *m, float lr) {
    if (!mct_isfinite(lr) || lr < 0.0f) {
        MCT_FAIL(m, MCT_E_LR, 0, 0, 0);
    }
    if (!m->n_trained) {
        MCT_FAIL(m, MCT_E_NOT_TRAINABLE, 0, 0, 0);
    }
    return MCT_OK;
}

int mct_train_step(mct_model_t *m, const int8_t *x, size_t len, uint32_t label, float lr, float *loss) {
    int r = step_ok(m, lr);
    return r != MCT_OK ? r : train_after_forward(m, mct_forward(m, x, len), label, lr, loss);
}

int mct_train_step_from(mct_model_t *m, mct_read_fn read, void *ctx, uint32_t label, float lr, float *loss) {
    int r = step_ok(m, lr);
    return r != MCT_OK ? r : train_after_forward(m, mct_forward_from(m, read, ctx), label, lr, loss);
}
