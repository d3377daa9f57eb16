/* Row-streamed forward of frozen inverted-residual blocks: a conv A (the expansion) -> a depthwise
 * conv D (k x k, stride s <= k) -> a pointwise conv B (the projection) [-> a residual add of the
 * block input], none of them differentiated. Op byte 1: bit 2 on A, bit 3 on the block's other ops.
 *
 * Whole, the block holds its input next to A's expanded output (MobileNetV2-w0.35 at 128x128:
 * 48x64x64). Streamed, A's output is a ring of k rows, D's output one row and, with the residual
 * add, B's output one row: for each output row of D, the rows of A that its windows need are
 * computed (each once: the rows no later window needs are shifted out), then that row of D, of B
 * and of the add. The block input and output stay whole. The kernels run on windows (mct_view_t),
 * so the result is bit-identical to the whole-tensor forward. */
#include "mct_internal.h"

uint16_t mct_rows_last(const mct_model_t *m, uint16_t first) {
    return first + 3u < m->n_ops && mct_op_flags(m, first + 3) == MCT_OF_ROWS ? first + 3 : first + 2;
}

uint16_t mct_rows_first(const mct_model_t *m, uint16_t k) {
    while (k > 0 && mct_op_flags(m, k) != MCT_OF_ROWS_FIRST) {
        k--;
    }
    return k;
}

/* Rows of A's output that the ring holds: a window's k, or all of them if fewer. */
static uint32_t ring_rows(const mct_op_t *D, const mct_act_t *ea) {
    return D->kh < ea->h ? D->kh : ea->h;
}

/* Rows [y0, y0 + h) of a tensor (w pixels of c channels a row) in a buffer of their own. */
static mct_view_t rows_view(int8_t *data, int32_t y0, uint32_t h, uint32_t w, uint32_t c) {
    mct_view_t v = { data, y0, 0, h, w, w * c };
    return v;
}

/* Row y of a whole tensor. */
static mct_view_t row_of(const mct_model_t *m, const mct_act_t *a, int32_t y) {
    mct_view_t v = mct_view_whole(m, a);
    v.data += (size_t)y * v.row_stride;
    v.y0 = y;
    v.h = 1;
    return v;
}

/* The block's three convs and their outputs: A's (the ring), D's and B's. */
static void block_ops(const mct_model_t *m, uint16_t first, mct_op_t *A, mct_op_t *D, mct_op_t *B, mct_act_t *ea,
    mct_act_t *ed, mct_act_t *eb) {
    mct_op_decode(m, first, A);
    mct_op_decode(m, first + 1, D);
    mct_op_decode(m, first + 2, B);
    mct_act_decode(m, A->out, ea);
    mct_act_decode(m, D->out, ed);
    mct_act_decode(m, B->out, eb);
}

int mct_forward_rows(mct_model_t *m, uint16_t first) {
    mct_op_t A, D, B, S;
    mct_act_t x, ea, ed, eb, y;
    const uint16_t last = mct_rows_last(m, first);
    const int add = last == first + 3;
    block_ops(m, first, &A, &D, &B, &ea, &ed, &eb);
    mct_act_decode(m, A.in0, &x);
    if (add) {
        mct_op_decode(m, last, &S);
        mct_act_decode(m, S.out, &y);
    }
    int8_t *ring = mct_act_data(m, &ea);          /* rows [r0, r1) of A's output (at most k) */
    const uint32_t row = (uint32_t)ea.w * ea.c;
    const mct_view_t xw = mct_view_whole(m, &x);
    int32_t r0 = 0, r1 = 0;
    for (int32_t oy = 0; oy < ed.h; oy++) {
        const int32_t top = oy * D.sh - D.ph;
        const int32_t lo = top > 0 ? top : 0;
        const int32_t hi = top + D.kh < ea.h ? top + D.kh : ea.h;
        if (lo >= r1) {
            r0 = r1 = lo;
        } else if (lo > r0) {
            /* drop the rows no later window reads */
            memmove(ring, ring + (size_t)(lo - r0) * row, (size_t)(r1 - lo) * row);
            r0 = lo;
        }
        if (hi > r1) {
            const mct_view_t ya = rows_view(ring + (size_t)(r1 - r0) * row, r1, (uint32_t)(hi - r1), ea.w, ea.c);
            mct_forward_views(m, &A, &xw, &xw, &ya);
            r1 = hi;
        }
        const mct_view_t xa = rows_view(ring, r0, (uint32_t)(r1 - r0), ea.w, ea.c);
        const mct_view_t yd = rows_view(mct_act_data(m, &ed), oy, 1, ed.w, ed.c);
        mct_forward_views(m, &D, &xa, &xa, &yd);
        const mct_view_t yb = add ? rows_view(mct_act_data(m, &eb), oy, 1, eb.w, eb.c) : row_of(m, &eb, oy);
        mct_forward_views(m, &B, &yd, &yd, &yb);
        if (add) {
            const mct_view_t xr = row_of(m, &x, oy), yr = row_of(m, &y, oy);
            if (S.in0 == A.in0) {
                mct_forward_views(m, &S, &xr, &yb, &yr);
            } else {
                mct_forward_views(m, &S, &yb, &xr, &yr);
            }
        }
    }
    return MCT_OK;
}

static int pointwise(const mct_op_t *op) {
    return op->type == MCT_OP_CONV2D && op->groups == 1 && mct_pointwise_op(op);
}

/* Activation a: frozen (no gradient, no mask), not the model's output, its buffer `capacity`
 * bytes (0: whole). */
static int frozen_with(const mct_model_t *m, uint16_t a, uint32_t capacity) {
    mct_act_t act;
    mct_act_decode(m, a, &act);
    return act.grad_offset == MCT_NO_GRAD && act.mask_offset == MCT_NO_GRAD && a != m->output &&
        (capacity ? mct_act_capacity(m, a) >= capacity : mct_act_capacity(m, a) == 0);
}

int mct_rows_check(mct_model_t *m, uint16_t first, uint16_t stage_ops) {
    mct_op_t A, D, B, S;
    mct_act_t ea, ed, eb;
    if (first < stage_ops || first + 2u >= m->n_ops || mct_op_flags(m, first + 1) != MCT_OF_ROWS ||
        mct_op_flags(m, first + 2) != MCT_OF_ROWS) {
        MCT_FAIL(m, MCT_E_OP, first, MCT_P_ROWS, 0);
    }
    const uint16_t last = mct_rows_last(m, first);
    block_ops(m, first, &A, &D, &B, &ea, &ed, &eb);
    if (A.type != MCT_OP_CONV2D || A.groups != 1 || D.type != MCT_OP_CONV2D || D.in0 != A.out ||
        D.groups != ea.c || ed.c != ea.c || D.sh > D.kh || !pointwise(&B) || B.in0 != D.out) {
        MCT_FAIL(m, MCT_E_OP, first, MCT_P_ROWS, 1);
    }
    const int add = last == first + 3;
    if (add) {
        mct_op_decode(m, last, &S);
        if (S.type != MCT_OP_ADD || !((S.in0 == A.in0 && S.in1 == B.out) || (S.in1 == A.in0 && S.in0 == B.out))) {
            MCT_FAIL(m, MCT_E_OP, first, MCT_P_ROWS, 2);
        }
    }
    /* the block's own buffers, read by nothing else; its input and output whole; all frozen */
    if (mct_read_elsewhere(m, A.out, first + 1) || mct_read_elsewhere(m, D.out, first + 2) ||
        (add && mct_read_elsewhere(m, B.out, last)) || mct_act_capacity(m, A.in0) != 0 ||
        !frozen_with(m, A.out, ring_rows(&D, &ea) * ea.c * ea.w) || !frozen_with(m, D.out, (uint32_t)ed.c * ed.w) ||
        !frozen_with(m, B.out, add ? (uint32_t)eb.c * eb.w : 0) || (add && !frozen_with(m, S.out, 0))) {
        MCT_FAIL(m, MCT_E_OP, first, MCT_P_ROWS, 3);
    }
    return MCT_OK;
}
