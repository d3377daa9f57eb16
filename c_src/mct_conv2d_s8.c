/* int8 2-D convolution (any kernel, stride, padding, groups) with fused bias, requantization and
 * clamp. Portable reference: one output at a time; the kernel window is clipped to the input once
 * per output instead of testing every tap (padding is x_zero, i.e. contributes nothing). Works on
 * windows of the tensors (mct_view_t), so the patch-based forward runs it tile by tile. */
#include "mct_internal.h"
#include "mct_requant.h"

static inline int32_t imax(int32_t a, int32_t b) {
    return a > b ? a : b;
}
static inline int32_t imin(int32_t a, int32_t b) {
    return a < b ? a : b;
}

/* Sum over the clipped kernel window of one output, all input channels of its group: xp points at
 * the window's first tap inside the input, wo at its weight; nky x nkx taps. */
static int32_t window(const int8_t *xp, const int8_t *wo, const mct_view_t *x, const mct_op_t *op,
    uint32_t cpg, int32_t nky, int32_t nkx, int32_t xz) {
    const uint32_t ksize = (uint32_t)op->kh * op->kw;
    int32_t acc = 0;
    for (uint32_t c = 0; c < cpg; c++) {
        const int8_t *xc = xp + (size_t)c * x->ch_stride;
        const int8_t *wc = wo + (size_t)c * ksize;
        for (int32_t ky = 0; ky < nky; ky++) {
            const int8_t *xr = xc + (size_t)ky * x->row_stride;
            const int8_t *wr = wc + ky * op->kw;
            for (int32_t kx = 0; kx < nkx; kx++) {
                acc += (xr[kx] - xz) * wr[kx];
            }
        }
    }
    return acc;
}

void mct_conv2d_s8(const mct_op_t *op, const mct_act_t *in, const mct_view_t *x, const mct_act_t *out,
    const mct_view_t *y, const mct_rows_t *weight, const int32_t *bias, const int32_t *mult, const int32_t *shift) {
    const uint32_t cpg = in->c / op->groups, opg = out->c / op->groups;
    const uint32_t ksize = (uint32_t)op->kh * op->kw;
    const int32_t xz = op->in0_zero;
    for (uint32_t o = 0; o < out->c; o++) {
        const int8_t *xg = x->data + (size_t)(o / opg) * cpg * x->ch_stride;
        const int8_t *wo = mct_row(weight, o);
        int8_t *yo = y->data + (size_t)o * y->ch_stride;
        for (uint32_t r = 0; r < y->h; r++) {
            const int32_t iy0 = (y->y0 + (int32_t)r) * op->sh - op->ph;
            const int32_t ky0 = imax(0, -iy0), ky1 = imin(op->kh, (int32_t)in->h - iy0);
            for (uint32_t col = 0; col < y->w; col++) {
                const int32_t ix0 = (y->x0 + (int32_t)col) * op->sw - op->pw;
                const int32_t kx0 = imax(0, -ix0), kx1 = imin(op->kw, (int32_t)in->w - ix0);
                /* the window's sum fits int32 (fan-in checked on load); the bias is added in 64 bits */
                int32_t acc = 0;
                if (ky0 < ky1 && kx0 < kx1) {
                    /* the first tap inside the input; x holds it (the forward's regions guarantee it) */
                    const int8_t *xp = xg + (size_t)(iy0 + ky0 - x->y0) * x->row_stride + (size_t)(ix0 + kx0 - x->x0);
                    if (ksize == 1) {
                        /* pointwise: one tap per input channel, most of a MobileNet's MACs */
                        for (uint32_t c = 0; c < cpg; c++) {
                            acc += (xp[(size_t)c * x->ch_stride] - xz) * wo[c];
                        }
                    } else {
                        acc = window(xp, wo + ky0 * op->kw + kx0, x, op, cpg, ky1 - ky0, kx1 - kx0, xz);
                    }
                }
                yo[(size_t)r * y->row_stride + col] = mct_requant_s8((int64_t)bias[o] + acc, mult[o], shift[o],
                    op->out_zero, op->act_min, op->act_max);
            }
        }
    }
}
