/* int8 residual add with requantization of both inputs to a common scale (TFLite's scheme). */
#include "mct_internal.h"
#include "mct_requant.h"

static void add_run(const mct_op_t *op, uint32_t n, const int8_t *a, const int8_t *b, int8_t *y) {
    const int32_t ls = op->add_left_shift;
    for (uint32_t i = 0; i < n; i++) {
        int32_t a2 = mct_requant((int64_t)(a[i] - op->in0_zero) * ((int64_t)1 << ls), op->add_mult[0], op->add_shift[0]);
        int32_t b2 = mct_requant((int64_t)(b[i] - op->in1_zero) * ((int64_t)1 << ls), op->add_mult[1], op->add_shift[1]);
        y[i] = mct_requant_s8((int64_t)a2 + b2, op->add_mult[2], op->add_shift[2], op->out_zero, op->act_min,
            op->act_max);
    }
}

/* Element (c, row, col) of y's window in the window v. */
static const int8_t *at(const mct_view_t *v, uint32_t c, int32_t row, int32_t col) {
    return v->data + (size_t)c * v->ch_stride + (size_t)(row - v->y0) * v->row_stride + (size_t)(col - v->x0);
}

static int same_layout(const mct_view_t *v, const mct_view_t *y) {
    return mct_view_contiguous(v) && v->y0 == y->y0 && v->x0 == y->x0 && v->h == y->h && v->w == y->w;
}

void mct_add_s8(const mct_op_t *op, uint16_t c, const mct_view_t *a, const mct_view_t *b, const mct_view_t *y) {
    if (mct_view_contiguous(y) && same_layout(a, y) && same_layout(b, y)) {
        add_run(op, (uint32_t)c * y->h * y->w, a->data, b->data, y->data);    /* whole tensors */
        return;
    }
    for (uint32_t ch = 0; ch < c; ch++) {
        for (uint32_t r = 0; r < y->h; r++) {
            const int32_t row = y->y0 + (int32_t)r;
            add_run(op, y->w, at(a, ch, row, y->x0), at(b, ch, row, y->x0), (int8_t *)at(y, ch, row, y->x0));
        }
    }
}
