/* Backward kernels in float32, gradients in real units (dL/d real value). The order of every float
 * operation is part of the contract: host_tools/reference/oracle.py repeats it to match bit for bit. */
#include "mct_backward_pw_f32.h"
#include "mct_mla_f32.h"

/* The clamp (ReLU, ReLU6 or int8 saturation) passes the gradient only where the output was not
 * clamped. The forward keeps that as one bit per element, 8x less than the output itself, written a
 * byte at a time in the gradient's order. */
void mct_clamp_mask_save(const mct_op_t *op, const mct_act_t *out, const int8_t *y, uint8_t *mask) {
    const uint32_t hw = (uint32_t)out->h * out->w, n_c = out->c;
    /* act_min < v < act_max as one unsigned comparison: v - (act_min + 1) < span */
    const int32_t lo = op->act_min + 1, width = op->act_max - op->act_min - 1;
    const uint32_t span = width > 0 ? (uint32_t)width : 0u;
    uint32_t bits = 0, k = 0;           /* the byte being filled, and its bits so far */
    for (uint32_t c = 0; c < n_c; c++) {
        const int8_t *v = y + c;        /* element (c, p) at v[p * n_c]: channels last */
        uint32_t p = 0;
        if (k == 0) {
            for (; p + 8 <= hw; p += 8, v += 8 * n_c) {
                uint32_t b = 0;
MCT_UNROLL(8)
                for (uint32_t j = 0; j < 8; j++) {
                    b |= (uint32_t)((uint32_t)(v[j * n_c] - lo) < span) << j;
                }
                *mask++ = (uint8_t)b;
            }
        }
        for (; p < hw; p++, v += n_c) {
            bits |= (uint32_t)((uint32_t)(*v - lo) < span) << k;
            if (++k == 8) {
                *mask++ = (uint8_t)bits;
                bits = k = 0;
            }
        }
    }
    if (k != 0) {
        *mask = (uint8_t)bits;
    }
}

void mct_clamp_mask_range_f32(const uint8_t *mask, uint32_t first, uint32_t n, float *g) {
    uint32_t i = 0;
    while (i < n) {
        const uint32_t b = first + i;
        if ((b & 7) == 0 && n - i >= 8) {   /* a whole byte: 8 elements, none to clear when all set */
            const uint32_t bits = mask[b >> 3];
            if (bits != 0xFFu) {            /* the loop unrolled: a test and a store per element */
MCT_UNROLL(8)
                for (uint32_t j = 0; j < 8; j++) {
                    if (!(bits & (1u << j))) {
                        g[i + j] = 0.0f;
                    }
                }
            }
            i += 8;
            continue;
        }
        if (!(mask[b >> 3] & (1u << (b & 7)))) {
            g[i] = 0.0f;
        }
        i++;
    }
}

void mct_clamp_mask_f32(uint32_t n, const uint8_t *mask, float *g) {
    if (mask != NULL) {                 /* none: the model output, never clamped */
        mct_clamp_mask_range_f32(mask, 0, n, g);
    }
}

/* The output positions [*lo, *hi) of one axis whose kernel tap k falls inside the input
 * (in = out * stride - pad + k in [0, in_len)): the padding taps are never visited. */
static void tap_range(uint32_t out_len, uint32_t stride, int32_t pad, int32_t k, int32_t in_len,
    uint32_t *lo, uint32_t *hi) {
    const int32_t first = pad - k;                          /* smallest out * stride allowed */
    const int32_t last = in_len - 1 + pad - k;              /* largest */
    uint32_t a = first <= 0 ? 0 : (uint32_t)((first + (int32_t)stride - 1) / (int32_t)stride);
    uint32_t b = last < 0 ? 0 : (uint32_t)(last / (int32_t)stride) + 1;
    *lo = a;
    *hi = b < out_len ? b : out_len;
    if (*hi < *lo) {
        *hi = *lo;
    }
}

/* The input gradient of output channel o: gin[c, iy, ix] += W[o, c, ky, kx] * (g[oy, ox] * w_scale),
 * in (ky, kx) order; called for o = 0, 1, ... so each input element accumulates in (o, ky, kx)
 * order. Contributions that fall on the padding are never computed. */
void mct_conv2d_input_grad_f32(const mct_op_t *op, const mct_act_t *in, const mct_act_t *out,
    uint32_t o, const int8_t *w_row, const float *g_row, float wscale, float *gin) {
    const uint32_t cpg = in->c / op->groups, opg = out->c / op->groups;
    const uint32_t c0 = (o / opg) * cpg;
    if (mct_pointwise_op(op)) {
        mct_pw_input_grad_f32((uint32_t)out->h * out->w, cpg, w_row, g_row, wscale, gin + (size_t)c0 * in->h * in->w);
        return;
    }
    for (int32_t ky = 0; ky < op->kh; ky++) {
        uint32_t oy0, oy1;
        tap_range(out->h, op->sh, op->ph, ky, in->h, &oy0, &oy1);
        for (int32_t kx = 0; kx < op->kw; kx++) {
            uint32_t ox0, ox1;
            tap_range(out->w, op->sw, op->pw, kx, in->w, &ox0, &ox1);
            for (uint32_t c = 0; c < cpg; c++) {
                const float w = (float)w_row[(c * op->kh + ky) * op->kw + kx];
                float *gc = gin + (size_t)(c0 + c) * in->h * in->w;
                for (uint32_t oy = oy0; oy < oy1; oy++) {
                    const int32_t iy = (int32_t)(oy * op->sh) - op->ph + ky;
                    for (uint32_t ox = ox0; ox < ox1; ox++) {
                        const int32_t ix = (int32_t)(ox * op->sw) - op->pw + kx;
                        gc[iy * in->w + ix] = mct_mla_f32(gc[iy * in->w + ix], w, g_row[oy * out->w + ox] * wscale);
                    }
                }
            }
        }
    }
}

/* dL/dW[o, c, ky, kx] in units of x's integer steps: sum over output positions, row-major, of
 * g[oy, ox] * (x[iy, ix, c_in] - x_zero); c is the channel within o's group (x points at the group's
 * first channel, channels last). */
float mct_conv2d_weight_grad_f32(const mct_op_t *op, const mct_act_t *in, const int8_t *x,
    const mct_act_t *out, uint32_t c, int32_t ky, int32_t kx, const float *g_row) {
    const int8_t *xc = x + c;
    float total = 0.0f;
    uint32_t oy0, oy1, ox0, ox1;
    tap_range(out->h, op->sh, op->ph, ky, in->h, &oy0, &oy1);
    tap_range(out->w, op->sw, op->pw, kx, in->w, &ox0, &ox1);
    for (uint32_t oy = oy0; oy < oy1; oy++) {
        const int32_t iy = (int32_t)(oy * op->sh) - op->ph + ky;
        for (uint32_t ox = ox0; ox < ox1; ox++) {
            const int32_t ix = (int32_t)(ox * op->sw) - op->pw + kx;
            total = mct_mla_f32(total, g_row[oy * out->w + ox], (float)(xc[(size_t)(iy * in->w + ix) * in->c] - op->in0_zero));
        }
    }
    return total;
}

/* gin[i] += W[o, i] * (g[o] * w_scale[o]), in o order. */
void mct_fc_input_grad_f32(uint32_t n_in, uint32_t n_out, const mct_rows_t *weight, const float *g,
    const float *wscale, float *gin) {
    for (uint32_t o = 0; o < n_out; o++) {
        const int8_t *w = mct_row(weight, o);
        const float t = g[o] * wscale[o];
        for (uint32_t i = 0; i < n_in; i++) {
            gin[i] = mct_mla_f32(gin[i], (float)w[i], t);
        }
    }
}

/* Softmax cross-entropy on the unclamped logits z (int32 steps of out_scale, mct_logits.c): p_i =
 * exp(-out_scale (max - z_i)) / sum, from the model's table (mct_exp_neg), so no exp is computed
 * here. Writes dL/dlogit (real units) to g, returns the loss. */
float mct_softmax_xent_f32(const int32_t *z, uint32_t n, uint32_t label, float out_scale,
    const float *exp_table, float *g) {
    const int32_t mx = mct_logits_max(z, n, NULL);
    float total = 0.0f;
    for (uint32_t i = 0; i < n; i++) {
        total += mct_exp_neg(exp_table, (uint32_t)mx - (uint32_t)z[i]);
    }
    for (uint32_t i = 0; i < n; i++) {
        g[i] = mct_exp_neg(exp_table, (uint32_t)mx - (uint32_t)z[i]) / total;
    }
    g[label] = g[label] - 1.0f;
    /* -log(p_label) = log(total) + out_scale * (max - z_label) */
    return mct_logf(total) + out_scale * (float)((uint32_t)mx - (uint32_t)z[label]);
}

/* Max pool: each output's gradient goes to the first maximum of its window (PyTorch's rule),
 * in output order. The input was kept for this by the memory plan. */
void mct_maxpool2d_input_grad_f32(const mct_op_t *op, const mct_act_t *in, const int8_t *x,
    const mct_act_t *out, const float *gout, float *gin) {
    for (uint32_t c = 0; c < out->c; c++) {
        const int8_t *xc = x + c;           /* channels last */
        float *gc = gin + (size_t)c * in->h * in->w;
        for (uint32_t oy = 0; oy < out->h; oy++) {
            for (uint32_t ox = 0; ox < out->w; ox++) {
                int32_t best = -129, at = -1;
                for (int32_t ky = 0; ky < op->kh; ky++) {
                    const int32_t iy = (int32_t)(oy * op->sh) - op->ph + ky;
                    for (int32_t kx = 0; kx < op->kw && iy >= 0 && iy < in->h; kx++) {
                        const int32_t ix = (int32_t)(ox * op->sw) - op->pw + kx;
                        if (ix >= 0 && ix < in->w && xc[(size_t)(iy * in->w + ix) * in->c] > best) {
                            best = xc[(size_t)(iy * in->w + ix) * in->c];
                            at = iy * in->w + ix;
                        }
                    }
                }
                if (at >= 0) {
                    gc[at] += gout[((size_t)c * out->h + oy) * out->w + ox];
                }
            }
        }
    }
}

/* Average pool: gout / (kH*kW) to every window position inside the input, in (oy, ox, ky, kx) order. */
void mct_avgpool2d_input_grad_f32(const mct_op_t *op, const mct_act_t *in, const mct_act_t *out,
    const float *gout, float *gin) {
    const float n = (float)((int32_t)op->kh * op->kw);
    for (uint32_t c = 0; c < out->c; c++) {
        float *gc = gin + (size_t)c * in->h * in->w;
        for (uint32_t oy = 0; oy < out->h; oy++) {
            for (uint32_t ox = 0; ox < out->w; ox++) {
                const float v = gout[((size_t)c * out->h + oy) * out->w + ox] / n;
                for (int32_t ky = 0; ky < op->kh; ky++) {
                    const int32_t iy = (int32_t)(oy * op->sh) - op->ph + ky;
                    for (int32_t kx = 0; kx < op->kw && iy >= 0 && iy < in->h; kx++) {
                        const int32_t ix = (int32_t)(ox * op->sw) - op->pw + kx;
                        if (ix >= 0 && ix < in->w) {
                            gc[iy * in->w + ix] += v;
                        }
                    }
                }
            }
        }
    }
}
