/* A depthwise conv that writes its output over its input (op byte 1 bit 4; host_tools/memory/arena.py
 * plans it): stride 1, the output the input's shape, at the input's offset, followed in the arena by
 * a delay ring of ph + 1 output rows. Output row y reads input rows y - ph .. y - ph + kh - 1, so
 * input row y - ph is read for the last time by output row y: each output row is computed into the
 * ring, and output row y - ph leaves it for its place once row y is done. The kernel runs on the
 * same windows as the whole-tensor forward (one output row at a time, as in mct_rows.c), so the
 * result is bit-identical to it. The input is read by nothing else, nor kept for the backward (its
 * weights are not trained). */
#include "mct_internal.h"

/* Output rows the ring holds. */
static uint32_t delay_rows(const mct_op_t *op) {
    return (uint32_t)op->ph + 1u;
}

uint32_t mct_in_place_ring_bytes(const mct_op_t *op, const mct_act_t *out) {
    return delay_rows(op) * out->w * out->c;
}

void mct_forward_in_place(mct_model_t *m, const mct_op_t *op, const mct_act_t *in, const mct_act_t *out) {
    const mct_view_t x = mct_view_whole(m, in);
    const uint32_t row = (uint32_t)out->w * out->c, lag = delay_rows(op);
    int8_t *t = mct_act_data(m, out), *ring = t + out->size;
    for (uint32_t y = 0; y < out->h + op->ph; y++) {
        if (y < out->h) {
            const mct_view_t yr = { ring + (size_t)(y % lag) * row, (int32_t)y, 0, 1, out->w, row };
            mct_forward_views(m, op, &x, &x, &yr);
        }
        if (y >= op->ph) {          /* input row y - ph is read no more: its output row takes its place */
            const uint32_t r = y - op->ph;
            memcpy(t + (size_t)r * row, ring + (size_t)(r % lag) * row, row);
        }
    }
}

int mct_in_place_check(mct_model_t *m, uint16_t k) {
    mct_op_t op;
    mct_act_t in, out;
    mct_op_decode(m, k, &op);
    if (op.type != MCT_OP_CONV2D || k < m->stage_ops) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_IN_PLACE, 0);
    }
    mct_act_decode(m, op.in0, &in);
    mct_act_decode(m, op.out, &out);
    if (op.groups != in.c || out.c != in.c || out.h != in.h || out.w != in.w || op.sh != 1 || op.sw != 1 ||
        op.ph >= op.kh || op.ph >= out.h) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_IN_PLACE, 1);
    }
    /* one buffer, the input's alone: nothing else reads it, nothing keeps it for the backward */
    if (op.in0 == m->input || op.out == m->output || in.offset != out.offset || mct_act_capacity(m, op.in0) != 0 ||
        mct_act_capacity(m, op.out) != 0 || mct_read_elsewhere(m, op.in0, k) || mct_tensor_trained(m, op.weight) ||
        (uint64_t)out.offset + out.size + mct_in_place_ring_bytes(&op, &out) > m->arena_size) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_IN_PLACE, 2);
    }
    return MCT_OK;
}
