/* int8 2-D convolution, any kernel, stride, padding and groups, on channels-last windows (mct_view_t),
 * with fused bias, requantization and clamp: the portable fallback of mct_conv2d.c for the shapes the
 * fast kernels (mct_*_s8_hwc.c) do not take, and every conv of the reference build
 * (-DMCT_REFERENCE_KERNELS). A window over the border is clipped to the input once per output (padding
 * is x_zero, i.e. contributes nothing). */
#include "mct_internal.h"
#include "mct_requant.h"

static inline int32_t imax(int32_t a, int32_t b) {
    return a > b ? a : b;
}
static inline int32_t imin(int32_t a, int32_t b) {
    return a < b ? a : b;
}

void mct_conv2d_s8(const mct_op_t *op, const mct_act_t *in, const mct_view_t *x, const mct_act_t *out,
    const mct_view_t *y, const mct_rows_t *weight, const int32_t *bias, const int32_t *mult, const int32_t *shift) {
    const uint32_t cpg = in->c / op->groups, opg = out->c / op->groups;
    const uint32_t ksize = (uint32_t)op->kh * op->kw;
    const int32_t xz = op->in0_zero;
    for (uint32_t o = 0; o < out->c; o++) {
        const int8_t *wo = mct_row(weight, o);
        const uint32_t c0 = (o / opg) * cpg;
        mct_rq_t q;
        mct_rq_init(&q, bias[o], mct_acc_bound((uint64_t)cpg * ksize, xz), mult[o], shift[o], op->out_zero,
            op->act_min, op->act_max);
        for (uint32_t r = 0; r < y->h; r++) {
            const int32_t iy0 = (y->y0 + (int32_t)r) * op->sh - op->ph;
            const int32_t ky0 = imax(0, -iy0), ky1 = imin(op->kh, (int32_t)in->h - iy0);
            for (uint32_t col = 0; col < y->w; col++) {
                const int32_t ix0 = (y->x0 + (int32_t)col) * op->sw - op->pw;
                const int32_t kx0 = imax(0, -ix0), kx1 = imin(op->kw, (int32_t)in->w - ix0);
                int32_t acc = 0;        /* the window's sum fits int32 (fan-in checked on load) */
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    const int8_t *xr = x->data + (size_t)(iy0 + ky - x->y0) * x->row_stride + c0;
                    for (int32_t kx = kx0; kx < kx1; kx++) {
                        const int8_t *xp = xr + (size_t)(ix0 + kx - x->x0) * in->c;
                        const int8_t *wp = wo + ky * op->kw + kx;
                        for (uint32_t c = 0; c < cpg; c++) {
                            acc += (xp[c] - xz) * wp[c * ksize];
                        }
                    }
                }
                mct_rq_run(&q, &acc, 1, 0, y->data + (size_t)r * y->row_stride + (size_t)col * out->c + o);
            }
        }
    }
}
