/* int8 2-D convolution (any kernel, stride, padding, groups) with fused bias, requantization and
 * clamp. Portable reference: one output at a time, padding skipped (it is x_zero, real zero). */
#include "mct_internal.h"
#include "mct_requant.h"

void mct_conv2d_s8(const mct_op_t *op, const mct_act_t *in, const int8_t *x, const mct_act_t *out,
    int8_t *y, const int8_t *weight, const int32_t *bias, const int32_t *mult, const int32_t *shift) {
    const uint32_t cpg = in->c / op->groups, opg = out->c / op->groups;
    const int32_t xz = op->in0_zero;
    for (uint32_t o = 0; o < out->c; o++) {
        const uint32_t c0 = (o / opg) * cpg;
        const int8_t *wo = weight + (size_t)o * cpg * op->kh * op->kw;
        for (uint32_t oy = 0; oy < out->h; oy++) {
            for (uint32_t ox = 0; ox < out->w; ox++) {
                int32_t acc = bias[o];
                const int32_t iy0 = (int32_t)(oy * op->sh) - op->ph;
                const int32_t ix0 = (int32_t)(ox * op->sw) - op->pw;
                for (uint32_t c = 0; c < cpg; c++) {
                    const int8_t *xc = x + (size_t)(c0 + c) * in->h * in->w;
                    const int8_t *wc = wo + (size_t)c * op->kh * op->kw;
                    for (int32_t ky = 0; ky < op->kh; ky++) {
                        const int32_t iy = iy0 + ky;
                        if (iy < 0 || iy >= in->h) {
                            continue;
                        }
                        for (int32_t kx = 0; kx < op->kw; kx++) {
                            const int32_t ix = ix0 + kx;
                            if (ix < 0 || ix >= in->w) {
                                continue;
                            }
                            acc += (xc[iy * in->w + ix] - xz) * wc[ky * op->kw + kx];
                        }
                    }
                }
                int32_t v = mct_requant(acc, mult[o], shift[o]) + op->out_zero;
                y[((size_t)o * out->h + oy) * out->w + ox] = mct_clamp_s8(v, op->act_min, op->act_max);
            }
        }
    }
}
