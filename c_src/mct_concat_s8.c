/* Concatenation along channels (torch.cat(dim=1), ONNX Concat axis 1, TF-Lite CONCATENATION): each
 * input requantized to the output's scale and zero point (TF-Lite's scheme), pixel by pixel in the
 * channels-last layout: output pixel = [rq0(a pixel), rq1(b pixel)]. rq(x) = requant((x - zin) * 2^ls)
 * + zout with the multiplier of in_scale / out_scale / 2^ls: the left shift (as the add's) keeps the
 * product's first rounding below the output's step, so y is round(x * ratio) but for exact ties. */
#include <string.h>
#include "mct_internal.h"
#include "mct_requant.h"

/* n values of input j's x into y. */
static void requant_run(const mct_op_t *op, int j, uint32_t n, const int8_t *x, int8_t *y) {
    const int32_t zin = j ? op->in1_zero : op->in0_zero;
    if ((j ? op->in1_scale : op->in0_scale) == op->out_scale && zin == op->out_zero) {
        memcpy(y, x, n);        /* the same quantization in and out: a copy (what rq gives too) */
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        y[i] = mct_requant_s8(((int64_t)x[i] - zin) * ((int64_t)1 << op->add_left_shift), op->add_mult[j],
            op->add_shift[j], op->out_zero, -128, 127);
    }
}

/* Pixel (row, col) of a window v, channels last with c channels. */
static const int8_t *pixel(const mct_view_t *v, uint32_t c, int32_t row, int32_t col) {
    return v->data + (size_t)(row - v->y0) * v->row_stride + (size_t)(col - v->x0) * c;
}

void mct_concat_s8(const mct_op_t *op, uint16_t ca, uint16_t cb, const mct_view_t *a, const mct_view_t *b,
    const mct_view_t *y) {
    const uint32_t c = (uint32_t)ca + cb;
    for (uint32_t r = 0; r < y->h; r++) {
        const int32_t row = y->y0 + (int32_t)r;
        for (uint32_t s = 0; s < y->w; s++) {
            const int32_t col = y->x0 + (int32_t)s;
            int8_t *py = (int8_t *)pixel(y, c, row, col);
            requant_run(op, 0, ca, pixel(a, ca, row, col), py);
            requant_run(op, 1, cb, pixel(b, cb, row, col), py + ca);
        }
    }
}

/* The loader's check (mct_load.c): b produced before, the same H, W in and out, C = Ca + Cb, two
 * distinct inputs (each has its own gradient slice), no clamp of its own, valid requantizations. */
int mct_concat_check(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *a, const mct_act_t *b,
    const mct_act_t *out) {
    if (op->in1 == op->in0 || a->h != out->h || a->w != out->w || b->h != out->h || b->w != out->w ||
        (uint32_t)a->c + b->c != out->c) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_SHAPE, 0);
    }
    if (op->kh != 1 || op->kw != 1 || op->sh != 1 || op->sw != 1 || op->ph || op->pw || op->act_min != -128 ||
        op->act_max != 127) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_PARAM, 0);
    }
    if (!mct_isfinite(op->in1_scale) || op->in1_scale <= 0.0f || op->add_left_shift > 22) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_SCALE, 1);
    }
    for (int i = 0; i < 2; i++) {
        if (op->add_mult[i] < 0 || op->add_shift[i] < -31 || op->add_shift[i] > 30) {
            MCT_FAIL(m, MCT_E_OP, k, MCT_P_MULTIPLIER, i);
        }
    }
    return MCT_OK;
}
