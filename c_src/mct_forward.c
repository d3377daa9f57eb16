/* The forward pass: the model input, each op's kernel on whole tensors (the patch-based stage,
 * mct_patch.c, and row-streamed blocks, mct_rows.c, on windows), the logits. */
#include "mct_internal.h"

int mct_set_input(mct_model_t *m, const int8_t *x, size_t len) {
    mct_act_t in;
    if (m->workspace == NULL) {
        MCT_FAIL(m, MCT_E_NOT_ATTACHED, 0, 0, 0);
    }
    mct_act_decode(m, m->input, &in);
    if (len != in.size) {
        MCT_FAIL(m, MCT_E_INPUT, 0, len, in.size);
    }
    m->read = NULL;
    if (in.offset == MCT_IN_PLACE || mct_input_band_rows(m)) {
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
    return m->workspace == NULL || mct_input_in_place(m) ? NULL : mct_act_data(m, &in);
}

int mct_input_in_place(const mct_model_t *m) {
    mct_act_t in;
    mct_act_decode(m, m->input, &in);
    return in.offset == MCT_IN_PLACE || mct_input_band_rows(m) != 0;
}

/* Is op k's input (or the stage's) the model input read in place or row by row, with none set? */
static int input_missing(const mct_model_t *m, uint16_t k, const mct_op_t *op) {
    return mct_input_in_place(m) && m->input_data == NULL && m->read == NULL &&
        (k < m->stage_ops || op->in0 == m->input || (mct_two_inputs(op) && op->in1 == m->input));
}

void mct_forward_views(mct_model_t *m, const mct_op_t *op, const mct_view_t *x, const mct_view_t *x1,
    const mct_view_t *y) {
    mct_act_t in, out;
    mct_act_decode(m, op->in0, &in);
    mct_act_decode(m, op->out, &out);
    switch (op->type) {
        case MCT_OP_CONV2D: {
            const mct_rows_t w = mct_weight_rows(m, op->weight, (uint32_t)(in.c / op->groups) * op->kh * op->kw);
            mct_conv2d_forward(op, &in, x, &out, y, &w, mct_tensor(m, op->bias), mct_tensor(m, op->mult),
                mct_tensor(m, op->shift));
            break;
        }
        case MCT_OP_FC: {
            const mct_rows_t w = mct_weight_rows(m, op->weight, in.size);
            mct_fc_s8(op, &in, x->data, out.size, y->data, &w, mct_tensor(m, op->bias), mct_tensor(m, op->mult),
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
        case MCT_OP_LUT:
            mct_lut_s8(mct_tensor(m, op->weight), out.c, x, y);
            break;
        case MCT_OP_CONCAT:
            mct_concat_s8(op, in.c, out.c - in.c, x, x1, y);
            break;
        case MCT_OP_MUL:
            mct_mul_s8(op, out.c, x, x1->data, y);
            break;
    }
}

int mct_forward_op(mct_model_t *m, uint16_t k) {
    mct_op_t op;
    mct_act_t in, out, in1;
    if (m->workspace == NULL) {
        MCT_FAIL(m, MCT_E_NOT_ATTACHED, 0, 0, 0);
    }
    if (k >= m->n_ops) {
        MCT_FAIL(m, MCT_E_OP_INDEX, 0, k, m->n_ops);
    }
    mct_op_decode(m, k, &op);
    if (input_missing(m, k, &op)) {
        MCT_FAIL(m, MCT_E_INPUT, 0, 0, 0);
    }
    if (k < m->stage_ops) {
        /* the patch-based stage runs as one: when its last op is asked for */
        return k + 1 == m->stage_ops ? mct_forward_stage(m) : MCT_OK;
    }
    if (mct_op_flags(m, k) & (MCT_OF_ROWS_FIRST | MCT_OF_ROWS)) {
        /* so does a row-streamed block */
        const uint16_t first = mct_rows_first(m, k);
        mct_op_t a;
        mct_op_decode(m, first, &a);
        if (input_missing(m, first, &a)) {
            MCT_FAIL(m, MCT_E_INPUT, 0, 0, 0);
        }
        return k == mct_rows_last(m, first) ? mct_forward_rows(m, first) : MCT_OK;
    }
    mct_act_decode(m, op.in0, &in);
    mct_act_decode(m, op.out, &out);
    const mct_view_t x = mct_view_whole(m, &in), y = mct_view_whole(m, &out);
    mct_view_t x1 = x;
    if (mct_two_inputs(&op)) {
        mct_act_decode(m, op.in1, &in1);
        x1 = mct_view_whole(m, &in1);
    }
    if (mct_op_flags(m, k) & MCT_OF_IN_PLACE) {
        mct_forward_in_place(m, &op, &in, &out);
    } else {
        mct_forward_views(m, &op, &x, &x1, &y);
    }
    uint8_t *mask = mct_act_mask(m, &out);
    if (mask != NULL) {
        mct_clamp_mask_save(&op, &out, y.data, mask);
    }
    if (op.out == m->output) {
        mct_logits_save(m, &op, x.data, x1.data);
    }
    return MCT_OK;
}

/* The forward of every op once the input is set (status r), which is the caller's only for this call. */
static int forward_all(mct_model_t *m, int r) {
    for (uint16_t k = 0; r == MCT_OK && k < m->n_ops; k++) {
        r = mct_forward_op(m, k);
    }
    m->input_data = NULL;
    m->read = NULL;
    return r;
}

int mct_forward(mct_model_t *m, const int8_t *x, size_t len) {
    return forward_all(m, mct_set_input(m, x, len));
}

int mct_forward_from(mct_model_t *m, mct_read_fn read, void *ctx) {
    return forward_all(m, mct_set_reader(m, read, ctx));
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
