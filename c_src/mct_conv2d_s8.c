/* int8 2-D convolution (any kernel, stride, padding, groups) with fused bias, requantization and
 * clamp. Portable reference: one output at a time; the kernel window is clipped to the input once
 * per output instead of testing every tap (padding is x_zero, i.e. contributes nothing). */
#include "mct_internal.h"
#include "mct_requant.h"

static inline int32_t imax(int32_t a, int32_t b) {
    return a > b ? a : b;
}
static inline int32_t imin(int32_t a, int32_t b) {
    return a < b ? a : b;
}

/* Sum over the clipped kernel window of one output, all input channels of its group. */
static int32_t window(const int8_t *xg, const int8_t *wo, const mct_act_t *in, const mct_op_t *op,
    uint32_t cpg, int32_t iy0, int32_t ix0, int32_t ky0, int32_t ky1, int32_t kx0, int32_t kx1, int32_t xz) {
    const uint32_t in_hw = (uint32_t)in->h * in->w, ksize = (uint32_t)op->kh * op->kw;
    int32_t acc = 0;
    for (uint32_t c = 0; c < cpg; c++) {
        const int8_t *xc = xg + (size_t)c * in_hw + ix0;
        const int8_t *wc = wo + (size_t)c * ksize;
        for (int32_t ky = ky0; ky < ky1; ky++) {
            const int8_t *xr = xc + (iy0 + ky) * in->w;
            const int8_t *wr = wc + ky * op->kw;
            for (int32_t kx = kx0; kx < kx1; kx++) {
                acc += (xr[kx] - xz) * wr[kx];
            }
        }
    }
    return acc;
}

void mct_conv2d_s8(const mct_op_t *op, const mct_act_t *in, const int8_t *x, const mct_act_t *out,
    int8_t *y, const mct_rows_t *weight, const int32_t *bias, const int32_t *mult, const int32_t *shift) {
    const uint32_t cpg = in->c / op->groups, opg = out->c / op->groups;
    const uint32_t in_hw = (uint32_t)in->h * in->w, ksize = (uint32_t)op->kh * op->kw;
    const int32_t xz = op->in0_zero;
    for (uint32_t o = 0; o < out->c; o++) {
        const int8_t *xg = x + (size_t)(o / opg) * cpg * in_hw;
        const int8_t *wo = mct_row(weight, o);
        int8_t *yo = y + (size_t)o * out->h * out->w;
        for (uint32_t oy = 0; oy < out->h; oy++) {
            const int32_t iy0 = (int32_t)(oy * op->sh) - op->ph;
            const int32_t ky0 = imax(0, -iy0), ky1 = imin(op->kh, (int32_t)in->h - iy0);
            for (uint32_t ox = 0; ox < out->w; ox++) {
                const int32_t ix0 = (int32_t)(ox * op->sw) - op->pw;
                const int32_t kx0 = imax(0, -ix0), kx1 = imin(op->kw, (int32_t)in->w - ix0);
                /* the window's sum fits int32 (fan-in checked on load); the bias is added in 64 bits */
                int32_t acc = 0;
                if (ksize == 1) {
                    /* pointwise: one tap per input channel, most of a MobileNet's MACs */
                    if (ky0 < ky1 && kx0 < kx1) {
                        const int8_t *xp = xg + iy0 * in->w + ix0;
                        for (uint32_t c = 0; c < cpg; c++) {
                            acc += (xp[(size_t)c * in_hw] - xz) * wo[c];
                        }
                    }
                } else {
                    acc += window(xg, wo, in, op, cpg, iy0, ix0, ky0, ky1, kx0, kx1, xz);
                }
                yo[oy * out->w + ox] = mct_requant_s8((int64_t)bias[o] + acc, mult[o], shift[o], op->out_zero,
                    op->act_min, op->act_max);
            }
        }
    }
}
