/* Elementwise activations (hardswish, sigmoid, tanh, SiLU, leaky ReLU, ...) as a 256-entry int8
 * table built by the converter from the quantization in and out (host_tools/model/lut.py):
 * y = table[x + 128]. One load per element, no arithmetic, any function. */
#include "mct_internal.h"

static void lut_run(const int8_t *table, uint32_t n, const int8_t *x, int8_t *y) {
    for (uint32_t i = 0; i < n; i++) {
        y[i] = table[x[i] + 128];
    }
}

void mct_lut_s8(const int8_t *table, uint16_t c, const mct_view_t *x, const mct_view_t *y) {
    if (mct_view_contiguous(x, c) && mct_view_contiguous(y, c) && x->y0 == y->y0 && x->x0 == y->x0 &&
        x->h == y->h && x->w == y->w) {
        lut_run(table, (uint32_t)c * y->h * y->w, x->data, y->data);      /* whole tensors */
        return;
    }
    /* a window of the patch-based stage: row by row (w * c bytes back to back), each in its own
     * buffer's stride */
    for (uint32_t r = 0; r < y->h; r++) {
        const int32_t row = y->y0 + (int32_t)r;
        lut_run(table, (uint32_t)y->w * c,
            x->data + (size_t)(row - x->y0) * x->row_stride + (size_t)(y->x0 - x->x0) * c,
            y->data + (size_t)r * y->row_stride);
    }
}

static int table_is(const mct_model_t *m, uint16_t t, uint8_t dtype) {
    return t < m->n_tensors && mct_tdtype(m, t) == dtype && mct_tcount(m, t) == 256;
}

/* The loader's check (mct_load.c) of a lookup-table activation: same shape in and out, a 1x1
 * window (what the patch stage's window arithmetic reads), no clamp, an int8 [256] table and a
 * finite float32 [256] derivative, neither trained. */
int mct_lut_check(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in, const mct_act_t *out) {
    if (in->c != out->c || in->h != out->h || in->w != out->w) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_SHAPE, 0);
    }
    if (op->kh != 1 || op->kw != 1 || op->sh != 1 || op->sw != 1 || op->ph || op->pw || op->act_min != -128 ||
        op->act_max != 127) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_PARAM, 0);
    }
    if (!table_is(m, op->weight, MCT_INT8) || !table_is(m, op->wscale, MCT_FLOAT32)) {
        MCT_FAIL(m, MCT_E_OP, k, MCT_P_TENSOR_KIND, 0);
    }
    if (mct_tensor_trained(m, op->weight) || mct_tensor_trained(m, op->wscale)) {
        MCT_FAIL(m, MCT_E_TRAIN, op->weight, 0, 0);
    }
    const uint8_t *d = m->buf + mct_rd32(mct_tentry(m, op->wscale));
    for (uint32_t i = 0; i < 256; i++) {
        if (!mct_isfinite(mct_rdf32(d + 4 * i))) {
            MCT_FAIL(m, MCT_E_OP, k, MCT_P_SCALE, i);
        }
    }
    return MCT_OK;
}
