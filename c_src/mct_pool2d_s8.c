/* int8 max and average pooling over kH x kW windows (one scale in and out, no requantization). */
#include "mct_internal.h"

/* Max over the window's positions inside the input; the padding never wins (PyTorch's -inf). */
void mct_maxpool2d_s8(const mct_op_t *op, const mct_act_t *in, const int8_t *x, const mct_act_t *out, int8_t *y) {
    for (uint32_t c = 0; c < out->c; c++) {
        const int8_t *xc = x + (size_t)c * in->h * in->w;
        for (uint32_t oy = 0; oy < out->h; oy++) {
            for (uint32_t ox = 0; ox < out->w; ox++) {
                int32_t best = -129;
                for (int32_t ky = 0; ky < op->kh; ky++) {
                    const int32_t iy = (int32_t)(oy * op->sh) - op->ph + ky;
                    for (int32_t kx = 0; kx < op->kw && iy >= 0 && iy < in->h; kx++) {
                        const int32_t ix = (int32_t)(ox * op->sw) - op->pw + kx;
                        if (ix >= 0 && ix < in->w && xc[iy * in->w + ix] > best) {
                            best = xc[iy * in->w + ix];
                        }
                    }
                }
                /* a window entirely in the padding (impossible when pad <= kernel/2) gives zero */
                y[((size_t)c * out->h + oy) * out->w + ox] = (int8_t)(best == -129 ? op->out_zero : best);
            }
        }
    }
}

/* round(sum / (kH*kW)), ties to even; padded positions count as the zero point (real zero). */
void mct_avgpool2d_s8(const mct_op_t *op, const mct_act_t *in, const int8_t *x, const mct_act_t *out, int8_t *y) {
    const int32_t n = (int32_t)op->kh * op->kw;
    for (uint32_t c = 0; c < out->c; c++) {
        const int8_t *xc = x + (size_t)c * in->h * in->w;
        for (uint32_t oy = 0; oy < out->h; oy++) {
            for (uint32_t ox = 0; ox < out->w; ox++) {
                int32_t total = 0;
                for (int32_t ky = 0; ky < op->kh; ky++) {
                    const int32_t iy = (int32_t)(oy * op->sh) - op->ph + ky;
                    for (int32_t kx = 0; kx < op->kw; kx++) {
                        const int32_t ix = (int32_t)(ox * op->sw) - op->pw + kx;
                        const int inside = iy >= 0 && iy < in->h && ix >= 0 && ix < in->w;
                        total += inside ? xc[iy * in->w + ix] : op->in0_zero;
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
                y[((size_t)c * out->h + oy) * out->w + ox] = (int8_t)q;
            }
        }
    }
}
