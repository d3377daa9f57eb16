/* int8 max and average pooling over kH x kW windows (one scale in and out, no requantization), over
 * the outputs of the window y, reading the window x of the input (see mct_view_t). */
#include "mct_internal.h"

/* Input element (c, iy, ix) of the window x, channels last (xc: channel c of its first pixel); the
 * caller checks that it lies inside the input. */
static inline int32_t tap(const mct_view_t *x, const int8_t *xc, uint32_t c, int32_t iy, int32_t ix) {
    return xc[(size_t)(iy - x->y0) * x->row_stride + (size_t)(ix - x->x0) * c];
}

/* Max over the window's positions inside the input; the padding never wins (PyTorch's -inf). A
 * window entirely in the padding (impossible when pad <= kernel/2) gives zero. */
static int8_t max_window(const mct_op_t *op, const mct_act_t *in, const mct_view_t *x, const int8_t *xc,
    int32_t oy, int32_t ox) {
    int32_t best = -129;
    for (int32_t ky = 0; ky < op->kh; ky++) {
        const int32_t iy = oy * op->sh - op->ph + ky;
        for (int32_t kx = 0; kx < op->kw && iy >= 0 && iy < in->h; kx++) {
            const int32_t ix = ox * op->sw - op->pw + kx;
            if (ix >= 0 && ix < in->w && tap(x, xc, in->c, iy, ix) > best) {
                best = tap(x, xc, in->c, iy, ix);
            }
        }
    }
    return (int8_t)(best == -129 ? op->out_zero : best);
}

/* round(sum / (kH*kW)), ties to even; padded positions count as the zero point (real zero). */
static int8_t average_window(const mct_op_t *op, const mct_act_t *in, const mct_view_t *x, const int8_t *xc,
    int32_t oy, int32_t ox) {
    const int32_t n = (int32_t)op->kh * op->kw;
    int32_t total = 0;
    for (int32_t ky = 0; ky < op->kh; ky++) {
        const int32_t iy = oy * op->sh - op->ph + ky;
        for (int32_t kx = 0; kx < op->kw; kx++) {
            const int32_t ix = ox * op->sw - op->pw + kx;
            const int inside = iy >= 0 && iy < in->h && ix >= 0 && ix < in->w;
            total += inside ? tap(x, xc, in->c, iy, ix) : op->in0_zero;
        }
    }
    int32_t q = total / n, r = total - q * n;
    if (r < 0) {
        q -= 1;
        r += n;
    }
    if (2 * r > n || (2 * r == n && (q & 1))) {
        q += 1;
    }
    return (int8_t)q;
}

typedef int8_t (*window_fn)(const mct_op_t *, const mct_act_t *, const mct_view_t *, const int8_t *, int32_t,
    int32_t);

/* Every output of the window y, each reduced from its input window by `reduce`. */
static void pool2d(window_fn reduce, const mct_op_t *op, const mct_act_t *in, const mct_view_t *x,
    const mct_act_t *out, const mct_view_t *y) {
    for (uint32_t r = 0; r < y->h; r++) {
        for (uint32_t col = 0; col < y->w; col++) {
            int8_t *yp = y->data + (size_t)r * y->row_stride + (size_t)col * out->c;
            for (uint32_t c = 0; c < out->c; c++) {
                yp[c] = reduce(op, in, x, x->data + c, y->y0 + (int32_t)r, y->x0 + (int32_t)col);
            }
        }
    }
}

void mct_maxpool2d_s8(const mct_op_t *op, const mct_act_t *in, const mct_view_t *x, const mct_act_t *out,
    const mct_view_t *y) {
    pool2d(max_window, op, in, x, out, y);
}

void mct_avgpool2d_s8(const mct_op_t *op, const mct_act_t *in, const mct_view_t *x, const mct_act_t *out,
    const mct_view_t *y) {
    pool2d(average_window, op, in, x, out, y);
}
