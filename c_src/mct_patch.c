/* Patch-based forward of the frozen first stage (MCUNetV2 / TinyEngine): at high resolution the
 * first layers' whole activations dominate the memory peak, and nothing there is saved for the
 * backward pass. So ops 0 .. S-1 run once per tile of the stage's output (a rows x cols grid), each
 * on just the window of its output that the tile needs (the receptive field, halos recomputed by
 * neighbouring tiles), in patch buffers of the memory plan; only the model input and the stage's
 * output are whole tensors. The result is bit-identical to the whole-tensor forward. */
#include "mct_internal.h"

/* The stage op before k that produced activation a, or -1 (the model input). */
static int producer(const mct_model_t *m, uint16_t k, uint16_t a) {
    for (int j = (int)k - 1; j >= 0; j--) {
        if (mct_op_out(m, (uint16_t)j) == a) {
            return j;
        }
    }
    return -1;
}

/* r grows to the bounding box of itself and rows [y0, y1) x columns [x0, x1). */
static void grow(mct_region_t *r, int32_t y0, int32_t y1, int32_t x0, int32_t x1) {
    if (y0 >= y1 || x0 >= x1) {
        return;
    }
    if (r->h > 0) {
        y0 = y0 < r->y0 ? y0 : r->y0;
        x0 = x0 < r->x0 ? x0 : r->x0;
        y1 = y1 > r->y0 + r->h ? y1 : r->y0 + r->h;
        x1 = x1 > r->x0 + r->w ? x1 : r->x0 + r->w;
    }
    r->y0 = y0;
    r->x0 = x0;
    r->h = y1 - y0;
    r->w = x1 - x0;
}

static inline int32_t clamp(int32_t v, int32_t lo, int32_t hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* The window of its input in0 that op's outputs in r read: for a conv or pool the rows and columns
 * its windows touch, for an elementwise op r itself. */
static void input_window(const mct_model_t *m, const mct_op_t *op, const mct_region_t *r, mct_region_t *x) {
    if (mct_two_inputs(op)) {
        grow(x, r->y0, r->y0 + r->h, r->x0, r->x0 + r->w);
        return;
    }
    mct_act_t in;
    mct_act_decode(m, op->in0, &in);
    grow(x, clamp(r->y0 * op->sh - op->ph, 0, in.h), clamp((r->y0 + r->h - 1) * op->sh - op->ph + op->kh, 0, in.h),
        clamp(r->x0 * op->sw - op->pw, 0, in.w), clamp((r->x0 + r->w - 1) * op->sw - op->pw + op->kw, 0, in.w));
}

void mct_patch_regions(const mct_model_t *m, uint32_t p, mct_region_t *regions) {
    const uint16_t last = (uint16_t)(m->stage_ops - 1);
    mct_act_t out;
    mct_act_decode(m, mct_op_out(m, last), &out);
    memset(regions, 0, sizeof(*regions) * m->stage_ops);
    const int32_t py = (int32_t)(p / m->patch_cols), px = (int32_t)(p % m->patch_cols);
    const int32_t rows = m->patch_rows, cols = m->patch_cols;
    grow(&regions[last], out.h * py / rows, out.h * (py + 1) / rows, out.w * px / cols, out.w * (px + 1) / cols);
    for (int k = last; k >= 0; k--) {
        const mct_region_t r = regions[k];
        if (r.h == 0) {
            continue;
        }
        mct_op_t op;
        mct_op_decode(m, (uint16_t)k, &op);
        const int j = producer(m, (uint16_t)k, op.in0);
        if (j >= 0) {
            input_window(m, &op, &r, &regions[j]);
        }
        if (mct_two_inputs(&op)) {
            const int j1 = producer(m, (uint16_t)k, op.in1);
            if (j1 >= 0) {
                input_window(m, &op, &r, &regions[j1]);
            }
        }
    }
}

void mct_patch_input_rows(const mct_model_t *m, const mct_region_t *regions, int32_t *y0, int32_t *y1) {
    mct_region_t x = { 0, 0, 0, 0 };
    for (uint16_t k = 0; k < m->stage_ops; k++) {
        mct_op_t op;
        mct_op_decode(m, k, &op);
        if (regions[k].h > 0 && (op.in0 == m->input || (mct_two_inputs(&op) && op.in1 == m->input))) {
            input_window(m, &op, &regions[k], &x);
        }
    }
    *y0 = x.y0;
    *y1 = x.y0 + x.h;
}

/* The window of activation a that op k reads in this patch. */
static mct_view_t input_view(const mct_model_t *m, uint16_t k, uint16_t a, const mct_region_t *regions,
    const mct_band_t *band) {
    mct_act_t act;
    mct_act_decode(m, a, &act);
    const int j = producer(m, k, a);
    if (j < 0) {
        /* the model input: its band of rows (mct_band.c), or whole */
        return band->rows ? mct_band_view(band, act.w) : mct_view_whole(m, &act);
    }
    const mct_region_t *r = &regions[j];
    mct_view_t v = { mct_act_data(m, &act), r->y0, r->x0, (uint32_t)r->h, (uint32_t)r->w, (uint32_t)r->w * act.c };
    return v;
}

int mct_forward_stage(mct_model_t *m) {
    mct_region_t regions[MCT_MAX_STAGE_OPS];
    const uint16_t last = (uint16_t)(m->stage_ops - 1);
    const uint32_t n = (uint32_t)m->patch_rows * m->patch_cols;
    mct_band_t band;
    mct_band_start(m, &band);
    for (uint32_t p = 0; p < n; p++) {
        mct_patch_regions(m, p, regions);
        if (band.rows && p % m->patch_cols == 0) {
            /* a new tile row: the band moves down to the input rows it needs */
            int32_t y0, y1;
            mct_patch_input_rows(m, regions, &y0, &y1);
            int r = mct_band_move(m, &band, y0, y1);
            if (r != MCT_OK) {
                return r;
            }
        }
        for (uint16_t k = 0; k <= last; k++) {
            const mct_region_t *r = &regions[k];
            if (r->h == 0) {
                continue;
            }
            mct_op_t op;
            mct_act_t out;
            mct_op_decode(m, k, &op);
            mct_act_decode(m, op.out, &out);
            mct_view_t y = { mct_act_data(m, &out), r->y0, r->x0, (uint32_t)r->h, (uint32_t)r->w,
                             (uint32_t)r->w * out.c };
            if (k == last) {
                /* the stage's output is whole: this tile of it, with the tensor's row stride */
                y.row_stride = (uint32_t)out.w * out.c;
                y.data += ((size_t)r->y0 * out.w + (size_t)r->x0) * out.c;
            }
            const mct_view_t x = input_view(m, k, op.in0, regions, &band);
            const mct_view_t x1 = mct_two_inputs(&op) ? input_view(m, k, op.in1, regions, &band) : x;
            mct_forward_views(m, &op, &x, &x1, &y);
        }
    }
    return band.rows ? mct_band_finish(m, &band) : MCT_OK;
}
