/* int8 residual add with requantization of both inputs to a common scale (TFLite's scheme). */
#include "mct_internal.h"
#include "mct_requant.h"

/* The reference: each input rescaled to the common scale, the sum requantized. */
static void add_run_ref(const mct_op_t *op, uint32_t n, const int8_t *a, const int8_t *b, int8_t *y) {
    const int32_t ls = op->add_left_shift;
    for (uint32_t i = 0; i < n; i++) {
        int32_t a2 = mct_requant((int64_t)(a[i] - op->in0_zero) * ((int64_t)1 << ls), op->add_mult[0], op->add_shift[0]);
        int32_t b2 = mct_requant((int64_t)(b[i] - op->in1_zero) * ((int64_t)1 << ls), op->add_mult[1], op->add_shift[1]);
        y[i] = mct_requant_s8((int64_t)a2 + b2, op->add_mult[2], op->add_shift[2], op->out_zero, op->act_min,
            op->act_max);
    }
}

/* The largest |requant(x)| for |x| <= xb (a loose bound: one more at each rounding). */
static uint64_t rq_out_bound(const mct_rq_t *q, uint64_t xb) {
    return (((((xb << q->left) * (uint64_t)q->mult) >> 31) + 1) >> q->right) + 1;
}

/* The same with the three requantizations prepared once (mct_rq_t), when none can saturate. */
static void add_run(const mct_op_t *op, uint32_t n, const int8_t *a, const int8_t *b, int8_t *y) {
    const int32_t ls = op->add_left_shift;
    mct_rq_t qa, qb, qy;
    const uint64_t in_bound = (uint64_t)255 << (ls > 22 ? 22 : ls);
    mct_rq_init(&qa, 0, in_bound, op->add_mult[0], op->add_shift[0], 0, 0, 0);
    mct_rq_init(&qb, 0, in_bound, op->add_mult[1], op->add_shift[1], 0, 0, 0);
    if (MCT_REFERENCE || ls > 22 || op->in0_zero < -128 || op->in0_zero > 127 || op->in1_zero < -128 || op->in1_zero > 127 ||
        !qa.fast || !qb.fast) {
        add_run_ref(op, n, a, b, y);
        return;
    }
    mct_rq_init(&qy, 0, rq_out_bound(&qa, in_bound) + rq_out_bound(&qb, in_bound), op->add_mult[2],
        op->add_shift[2], op->out_zero, op->act_min, op->act_max);
    if (!qy.fast) {
        add_run_ref(op, n, a, b, y);
        return;
    }
    const int32_t za = op->in0_zero, zb = op->in1_zero;
    for (uint32_t i = 0; i < n; i++) {
        const int32_t a2 = mct_rq_apply(&qa, (a[i] - za) * (1 << ls));
        const int32_t b2 = mct_rq_apply(&qb, (b[i] - zb) * (1 << ls));
        y[i] = mct_rq_s8(&qy, a2 + b2);
    }
}

/* Pixel (row, col) of y's window in the window v, channels last (c a pixel). */
static const int8_t *at(const mct_view_t *v, uint32_t c, int32_t row, int32_t col) {
    return v->data + (size_t)(row - v->y0) * v->row_stride + (size_t)(col - v->x0) * c;
}

static int same_layout(const mct_view_t *v, const mct_view_t *y, uint32_t c) {
    return mct_view_contiguous(v, c) && v->y0 == y->y0 && v->x0 == y->x0 && v->h == y->h && v->w == y->w;
}

void mct_add_s8(const mct_op_t *op, uint16_t c, const mct_view_t *a, const mct_view_t *b, const mct_view_t *y) {
    if (mct_view_contiguous(y, c) && same_layout(a, y, c) && same_layout(b, y, c)) {
        add_run(op, (uint32_t)c * y->h * y->w, a->data, b->data, y->data);    /* whole tensors */
        return;
    }
    for (uint32_t r = 0; r < y->h; r++) {      /* a row of a window: w * c bytes back to back in each */
        const int32_t row = y->y0 + (int32_t)r;
        add_run(op, (uint32_t)y->w * c, at(a, c, row, y->x0), at(b, c, row, y->x0), (int8_t *)at(y, c, row, y->x0));
    }
}
