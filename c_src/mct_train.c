/* One training step: forward, softmax cross-entropy, then the backward of each op in reverse order,
 * each trained tensor updated in place as soon as its gradient is known. No allocation: every
 * buffer is a slot of the arena placed by the host's static memory plan. */
#include "mct_internal.h"

#define ERR(m, c, va, vb) do { \
        (m)->error.code = (c); (m)->error.index = 0; (m)->error.a = (uint32_t)(va); (m)->error.b = (uint32_t)(vb); \
        return (c); \
} while (0)

int mct_set_input(mct_model_t *m, const int8_t *x, size_t len) {
    mct_act_t in;
    if (m->workspace == NULL) {
        ERR(m, MCT_E_NOT_ATTACHED, 0, 0);
    }
    mct_act_decode(m, m->input, &in);
    if (len != in.size) {
        ERR(m, MCT_E_INPUT, len, in.size);
    }
    if (in.offset == MCT_IN_PLACE) {
        m->input_data = x;      /* read where it is, until the forward is done (no copy in the arena) */
    } else if (mct_act_data(m, &in) != x) {     /* x may be the arena's own (mct_input_buffer) */
        memcpy(mct_act_data(m, &in), x, len);
    }
    return MCT_OK;
}

int8_t *mct_input_buffer(mct_model_t *m, size_t *len) {
    mct_act_t in;
    mct_act_decode(m, m->input, &in);
    *len = in.size;
    return m->workspace == NULL || in.offset == MCT_IN_PLACE ? NULL : mct_act_data(m, &in);
}

int mct_input_in_place(const mct_model_t *m) {
    mct_act_t in;
    mct_act_decode(m, m->input, &in);
    return in.offset == MCT_IN_PLACE;
}

/* Is op k's input (or the stage's) the model input read in place, with none set? */
static int input_missing(const mct_model_t *m, uint16_t k, const mct_op_t *op) {
    mct_act_t in;
    mct_act_decode(m, m->input, &in);
    return in.offset == MCT_IN_PLACE && m->input_data == NULL &&
        (k < m->stage_ops || op->in0 == m->input || (op->type == MCT_OP_ADD && op->in1 == m->input));
}

void mct_forward_views(mct_model_t *m, const mct_op_t *op, const mct_view_t *x, const mct_view_t *x1,
    const mct_view_t *y) {
    mct_act_t in, out;
    mct_act_decode(m, op->in0, &in);
    mct_act_decode(m, op->out, &out);
    switch (op->type) {
        case MCT_OP_CONV2D: {
            const mct_rows_t w = mct_weight_rows(m, op->weight, (uint32_t)(in.c / op->groups) * op->kh * op->kw);
            const int pointwise = op->kh == 1 && op->kw == 1 && op->sh == 1 && op->sw == 1 && op->ph == 0 && op->pw == 0;
            const int depthwise = op->groups == in.c && out.c == in.c;
            (pointwise ? mct_conv2d_1x1_s8 : depthwise ? mct_depthwise_conv_s8 : mct_conv2d_s8)(op, &in, x, &out, y,
                &w, mct_tensor(m, op->bias), mct_tensor(m, op->mult), mct_tensor(m, op->shift));
            break;
        }
        case MCT_OP_FC: {
            const mct_rows_t w = mct_weight_rows(m, op->weight, in.size);
            mct_fc_s8(op, in.size, x->data, out.size, y->data, &w, mct_tensor(m, op->bias), mct_tensor(m, op->mult),
                mct_tensor(m, op->shift));
            break;
        }
        case MCT_OP_ADD:
            mct_add_s8(op, out.c, x, x1, y);
            break;
        case MCT_OP_AVGPOOL:
            mct_avgpool_global_s8(in.c, (uint32_t)in.h * in.w, x->data, y->data);
            break;
        case MCT_OP_MAXPOOL2D:
            mct_maxpool2d_s8(op, &in, x, &out, y);
            break;
        case MCT_OP_AVGPOOL2D:
            mct_avgpool2d_s8(op, &in, x, &out, y);
            break;
    }
}

int mct_forward_op(mct_model_t *m, uint16_t k) {
    mct_op_t op;
    mct_act_t in, out, in1;
    if (m->workspace == NULL) {
        ERR(m, MCT_E_NOT_ATTACHED, 0, 0);
    }
    if (k >= m->n_ops) {
        ERR(m, MCT_E_OP_INDEX, k, m->n_ops);
    }
    mct_op_decode(m, k, &op);
    if (input_missing(m, k, &op)) {
        ERR(m, MCT_E_INPUT, 0, 0);
    }
    if (k < m->stage_ops) {
        /* the patch-based stage runs as one: when its last op is asked for */
        return k + 1 == m->stage_ops ? mct_forward_stage(m) : MCT_OK;
    }
    if (m->buf[m->op_off + (uint32_t)k * MCT_OP_ENTRY + 1] & (MCT_OF_ROWS_FIRST | MCT_OF_ROWS)) {
        /* so does a row-streamed block */
        const uint16_t first = mct_rows_first(m, k);
        mct_op_t a;
        mct_op_decode(m, first, &a);
        if (input_missing(m, first, &a)) {
            ERR(m, MCT_E_INPUT, 0, 0);
        }
        return k == mct_rows_last(m, first) ? mct_forward_rows(m, first) : MCT_OK;
    }
    mct_act_decode(m, op.in0, &in);
    mct_act_decode(m, op.out, &out);
    const mct_view_t x = mct_view_whole(m, &in), y = mct_view_whole(m, &out);
    mct_view_t x1 = x;
    if (op.type == MCT_OP_ADD) {
        mct_act_decode(m, op.in1, &in1);
        x1 = mct_view_whole(m, &in1);
    }
    mct_forward_views(m, &op, &x, &x1, &y);
    uint8_t *mask = mct_act_mask(m, &out);
    if (mask != NULL) {
        mct_clamp_mask_save(&op, out.size, y.data, mask);
    }
    if (op.out == m->output) {
        mct_logits_save(m, &op, x.data, x1.data);
    }
    return MCT_OK;
}

int mct_forward(mct_model_t *m, const int8_t *x, size_t len) {
    int r = mct_set_input(m, x, len);
    for (uint16_t k = 0; r == MCT_OK && k < m->n_ops; k++) {
        r = mct_forward_op(m, k);
    }
    m->input_data = NULL;       /* x is the caller's only for this call */
    return r;
}

const int8_t *mct_logits(const mct_model_t *m, uint32_t *n) {
    mct_act_t out;
    mct_act_decode(m, m->output, &out);
    *n = out.size;
    return mct_act_data(m, &out);
}

int mct_argmax(const mct_model_t *m) {
    uint32_t n, best;
    const int32_t *z = mct_logits32(m, &n);             /* the unclamped logits (mct_logits.c) */
    mct_logits_max(z, n, &best);
    return (int)best;
}

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
        if (later.in0 == a || (later.type == MCT_OP_ADD && later.in1 == a)) {
            return g;
        }
    }
    memset(g, 0, 4u * act.size);
    if (m->train_flags & MCT_TRAIN_INT_BACKWARD) {
        mct_gexp(m)[a] = -32768;       /* no exponent yet: the first contribution sets it */
    }
    return g;
}

static float *input_grad(mct_model_t *m, uint16_t k, uint16_t a) {
    return (float *)mct_input_grad(m, k, a);
}

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
        if (j != k && (other.in0 == op->in0 || (other.type == MCT_OP_ADD && other.in1 == op->in0))) {
            return 0;
        }
    }
    return 1;
}

/* The backward of a depthwise conv whose input gradient the plan put one channel below its output
 * gradient (host_tools/plan.py inplace_ops; mct_in_place checked the shapes): input channel o's
 * gradient depends on output channel o's only, so it overwrites output channel o-1's, which is no
 * longer needed. Same float operations in the same order as the general path. */
static void depthwise_backward_in_place(mct_model_t *m, const mct_op_t *op, const mct_act_t *in,
    const mct_act_t *out, float *gout, float lr) {
    const uint32_t hw = (uint32_t)out->h * out->w;
    const int train_bias = mct_tensor_trained(m, op->bias);
    const mct_rows_t w = mct_weight_rows(m, op->weight, (uint32_t)op->kh * op->kw);
    const float *ws = (const float *)mct_tensor(m, op->wscale);
    /* one channel of the conv, for the input-gradient kernel */
    mct_op_t one = *op;
    mct_act_t in1 = *in, out1 = *out;
    one.groups = 1;
    in1.c = out1.c = 1;
    in1.size = out1.size = hw;
    for (uint32_t o = 0; o < out->c; o++) {
        const float *go = gout + (size_t)o * hw;
        float *gi = gout + (size_t)o * hw - hw;
        if (train_bias) {
            float total = 0.0f;
            for (uint32_t i = 0; i < hw; i++) {
                total += go[i];
            }
            m->skipped_updates += mct_update_bias(m, op, o, total, lr);
        }
        memset(gi, 0, 4u * hw);
        mct_conv2d_input_grad_f32(&one, &in1, &out1, 0, mct_row(&w, o), go, ws[o], gi);
        if (o < w.n_sram) {
            m->skipped_updates += mct_update_conv_weight(m, op, in, mct_act_data(m, in), out, o, go, lr);
        }
    }
}

int mct_loss_backward(mct_model_t *m, uint32_t label, float *loss) {
    mct_act_t out;
    mct_op_t last;
    if (m->workspace == NULL) {
        ERR(m, MCT_E_NOT_ATTACHED, 0, 0);
    }
    if (!m->n_trained) {
        ERR(m, MCT_E_NOT_TRAINABLE, 0, 0);
    }
    mct_act_decode(m, m->output, &out);
    if (label >= out.size) {
        ERR(m, MCT_E_LABEL, label, out.size);
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
        ERR(m, MCT_E_NOT_ATTACHED, 0, 0);
    }
    if (k >= m->n_ops) {
        ERR(m, MCT_E_OP_INDEX, k, m->n_ops);
    }
    if (!mct_isfinite(lr) || lr < 0.0f) {
        ERR(m, MCT_E_LR, 0, 0);
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
    if (op.type == MCT_OP_AVGPOOL) {
        float *gin = input_grad(m, k, op.in0);
        if (gin != NULL) {
            const uint32_t hw = (uint32_t)in.h * in.w;
            for (uint32_t c = 0; c < in.c; c++) {
                const float v = gout[c] / (float)hw;
                for (uint32_t i = 0; i < hw; i++) {
                    gin[c * hw + i] += v;
                }
            }
        }
        return MCT_OK;
    }
    if (op.type == MCT_OP_MAXPOOL2D || op.type == MCT_OP_AVGPOOL2D) {
        float *gin = input_grad(m, k, op.in0);
        if (gin != NULL && op.type == MCT_OP_MAXPOOL2D) {
            mct_maxpool2d_input_grad_f32(&op, &in, mct_act_data(m, &in), &out, gout, gin);
        } else if (gin != NULL) {
            mct_avgpool2d_input_grad_f32(&op, &in, &out, gout, gin);
        }
        return MCT_OK;
    }
    mct_clamp_mask_f32(out.size, mct_act_mask(m, &out), gout);
    if (mct_fused_head(m, k)) {
        return mct_block_backward_f32(m, k, lr);
    }
    if (op.type == MCT_OP_ADD) {
        float *ga = input_grad(m, k, op.in0);
        if (ga != NULL) {
            for (uint32_t i = 0; i < out.size; i++) {
                ga[i] += gout[i];
            }
        }
        float *gb = input_grad(m, k, op.in1);
        if (gb != NULL) {
            for (uint32_t i = 0; i < out.size; i++) {
                gb[i] += gout[i];
            }
        }
        return MCT_OK;
    }
    const float *ws = (const float *)mct_tensor(m, op.wscale);
    if (mct_in_place(m, k, &op, &in, &out)) {
        depthwise_backward_in_place(m, &op, &in, &out, gout, lr);
        return MCT_OK;
    }
    if (op.type == MCT_OP_CONV2D) {
        /* Output channel by channel: its bias, its share of the input gradient (with the weights
         * of this step's forward), then its weights; so no buffer holds more than one gradient. */
        const uint32_t hw = (uint32_t)out.h * out.w;
        const int train_bias = mct_tensor_trained(m, op.bias);
        const mct_rows_t w = mct_weight_rows(m, op.weight, (uint32_t)(in.c / op.groups) * op.kh * op.kw);
        float *gin = input_grad(m, k, op.in0);
        for (uint32_t o = 0; o < out.c; o++) {
            const float *go = gout + (size_t)o * hw;
            if (train_bias) {
                float total = 0.0f;
                for (uint32_t i = 0; i < hw; i++) {
                    total += go[i];
                }
                m->skipped_updates += mct_update_bias(m, &op, o, total, lr);
            }
            if (gin != NULL) {
                mct_conv2d_input_grad_f32(&op, &in, &out, o, mct_row(&w, o), go, ws[o], gin);
            }
            if (o < w.n_sram) {
                m->skipped_updates += mct_update_conv_weight(m, &op, &in, mct_act_data(m, &in), &out, o, go, lr);
            }
        }
        return MCT_OK;
    }
    /* FC: the input gradient first, with the weights as they were in this step's forward */
    float *gin = input_grad(m, k, op.in0);
    if (gin != NULL) {
        const mct_rows_t w = mct_weight_rows(m, op.weight, in.size);
        mct_fc_input_grad_f32(in.size, out.size, &w, gout, ws, gin);
    }
    m->skipped_updates += mct_update_fc_weight(m, &op, in.size, mct_act_data(m, &in), gout, lr);
    if (mct_tensor_trained(m, op.bias)) {
        for (uint32_t o = 0; o < out.size; o++) {
            m->skipped_updates += mct_update_bias(m, &op, o, gout[o], lr);
        }
    }
    return MCT_OK;
}

int mct_train_step(mct_model_t *m, const int8_t *x, size_t len, uint32_t label, float lr, float *loss) {
    if (!mct_isfinite(lr) || lr < 0.0f) {
        ERR(m, MCT_E_LR, 0, 0);
    }
    if (!m->n_trained) {
        ERR(m, MCT_E_NOT_TRAINABLE, 0, 0);
    }
    int r = mct_forward(m, x, len);
    if (r == MCT_OK) {
        r = mct_loss_backward(m, label, loss);
    }
    if (r == MCT_OK && !mct_isfinite(*loss)) {
        m->skipped_steps++;
        ERR(m, MCT_E_NUMERIC, 0, 0);
    }
    for (int k = (int)m->n_ops - 1; r == MCT_OK && k >= 0; k--) {
        r = mct_backward_op(m, (uint16_t)k, lr);
    }
    if (r == MCT_OK) {
        m->steps++;
    }
    return r;
}
