/* The float32 backward of a depthwise conv, one channel at a time, as a gather: each input-gradient
 * element adds its taps' products in (ky, kx) order, in a register, from the gradient already scaled
 * by w_scale (go * w_scale is the factor of every product: computed once per element, not once per
 * tap). Each element sees the float operations of the scatter in mct_conv2d_input_grad_f32 in the
 * same order (host_tools/reference/oracle.py repeats them); only the taps inside the input are
 * visited. At stride 1, kernels 3 or 5 wide take an unrolled loop, the weights in registers, for the
 * elements whose columns' taps all fall inside (most of an 8x8 map). */
#include "mct_backward_dw_f32.h"
#include "mct_requant.h"     /* MCT_HOT */
#include "mct_mla_f32.h"

/* The kernel taps of one axis that reach input position i: k = first, first + s, ... (the count is
 * returned), those with k = i + pad - out * s for an output position out in [0, out_len). */
MCT_HOT uint32_t axis_taps(int32_t i, int32_t pad, int32_t s, int32_t k_len, int32_t out_len, int32_t *first) {
    const int32_t u = i + pad;                          /* out * s + k */
    int32_t lo = u - s * (out_len - 1);                 /* k of the last output position */
    if (lo < 0) {
        lo = s == 1 ? 0 : u % s;
    }
    int32_t hi = u < k_len - 1 ? u : k_len - 1;         /* k of output position 0, or the last tap */
    if (s != 1) {
        hi -= (u - hi) % s;
    }
    *first = lo;
    return hi < lo ? 0 : (uint32_t)((hi - lo) / s) + 1;
}

/* One element's taps at column stride 1, n of them per kernel row (n a constant where inlined with
 * one): acc += a[c] * b[-c] for c < n, then the next row (a += a_step, b -= b_step), ny rows. */
MCT_HOT float rows_taps(float acc, const float *a, const float *b, uint32_t ny, int32_t a_step, uint32_t b_step,
    uint32_t n) {
    for (uint32_t r = 0; r < ny; r++, a += a_step, b -= b_step) {
MCT_UNROLL(7)
        for (uint32_t c = 0; c < n; c++) {
            acc = mct_mla_f32(acc, a[c], b[-(int32_t)c]);
        }
    }
    return acc;
}

/* Elements [x_a, x_b) of one input row g, whose taps are in kernel rows ky0, ky0 + sh, ... (ny of
 * them): g[ix] += w[ky][kx] * s[oy][ox] over the taps, in order (uy = iy + ph). At stride 1, up to
 * 7 taps per kernel row take a loop unrolled for their count. */
MCT_HOT void row_elements(float *g, int32_t x_a, int32_t x_b, const float *w, const float *s, uint32_t ow,
    int32_t kw, int32_t pw, int32_t sw, int32_t sh, int32_t uy, int32_t ky0, uint32_t ny) {
    const int32_t a_step = kw * sh;
    for (int32_t ix = x_a; ix < x_b; ix++) {
        int32_t kx0;
        const uint32_t nx = axis_taps(ix, pw, sw, kw, (int32_t)ow, &kx0);
        const float *a = w + ky0 * kw + kx0;
        const float *b = s + (uint32_t)((uy - ky0) / sh) * ow + (uint32_t)((ix + pw - kx0) / sw);
        float acc = g[ix];
        if (sw == 1) {
            switch (nx) {
                case 1: acc = rows_taps(acc, a, b, ny, a_step, ow, 1); break;
                case 2: acc = rows_taps(acc, a, b, ny, a_step, ow, 2); break;
                case 3: acc = rows_taps(acc, a, b, ny, a_step, ow, 3); break;
                case 4: acc = rows_taps(acc, a, b, ny, a_step, ow, 4); break;
                case 5: acc = rows_taps(acc, a, b, ny, a_step, ow, 5); break;
                case 6: acc = rows_taps(acc, a, b, ny, a_step, ow, 6); break;
                case 7: acc = rows_taps(acc, a, b, ny, a_step, ow, 7); break;
                default: acc = rows_taps(acc, a, b, ny, a_step, ow, nx); break;
            }
        } else {
            for (uint32_t r = 0; r < ny; r++, a += a_step, b -= ow) {
                for (uint32_t c = 0; c < nx; c++) {
                    acc = mct_mla_f32(acc, a[(int32_t)c * sw], b[-(int32_t)c]);
                }
            }
        }
        g[ix] = acc;
    }
}

/* Elements [x_a, x_b) of one input row whose columns' taps all fall inside, for a kernel kw wide at
 * stride 1, from ny consecutive kernel rows (both constants where inlined with them), the weights
 * in registers: w the first of those kernel rows, r0 its gradient row at the first element's tap 0. */
MCT_HOT void row_inside(float *g, int32_t x_a, int32_t x_b, const float *w, const float *r0, uint32_t ow,
    uint32_t kw, uint32_t ny) {
    float wr[5][5];
    const float *q[5];          /* the gradient rows, at the current element's tap 0 */
MCT_UNROLL(5)
    for (uint32_t r = 0; r < ny; r++) {
        q[r] = r0 - r * ow;
MCT_UNROLL(5)
        for (uint32_t c = 0; c < kw; c++) {
            wr[r][c] = w[r * kw + c];
        }
    }
    for (float *gx = g + x_a, *end = g + x_b; gx < end; gx++) {
        float acc = *gx;
MCT_UNROLL(5)
        for (uint32_t r = 0; r < ny; r++) {
MCT_UNROLL(5)
            for (uint32_t c = 0; c < kw; c++) {
                acc = mct_mla_f32(acc, wr[r][c], q[r][-(int32_t)c]);
            }
            q[r]++;
        }
        *gx = acc;
    }
}

/* row_inside for 3x3 and 5x5 kernels (ny <= kw), with the count of kernel rows made a constant. */
static void row_inside_any(float *g, int32_t x_a, int32_t x_b, const float *w, const float *r0, uint32_t ow,
    uint32_t kw, uint32_t ny) {
    switch (kw * 8 + ny) {
        case 3 * 8 + 1: row_inside(g, x_a, x_b, w, r0, ow, 3, 1); break;
        case 3 * 8 + 2: row_inside(g, x_a, x_b, w, r0, ow, 3, 2); break;
        case 3 * 8 + 3: row_inside(g, x_a, x_b, w, r0, ow, 3, 3); break;
        case 5 * 8 + 1: row_inside(g, x_a, x_b, w, r0, ow, 5, 1); break;
        case 5 * 8 + 2: row_inside(g, x_a, x_b, w, r0, ow, 5, 2); break;
        case 5 * 8 + 3: row_inside(g, x_a, x_b, w, r0, ow, 5, 3); break;
        case 5 * 8 + 4: row_inside(g, x_a, x_b, w, r0, ow, 5, 4); break;
        default: row_inside(g, x_a, x_b, w, r0, ow, 5, 5); break;
    }
}

/* gin (ih x iw) += the products of the taps of s (oh x ow, already times w_scale), w the kernel as
 * floats; sw a constant where inlined with one. */
MCT_HOT void input_grad_sw(const mct_op_t *op, uint32_t ih, uint32_t iw, uint32_t oh, uint32_t ow, const float *w,
    const float *s, float *gin, int32_t sw) {
    const int32_t kh = op->kh, kw = op->kw, sh = op->sh, ph = op->ph, pw = op->pw;
    /* 3x3 and 5x5 kernels at stride 1: the columns whose taps all fall inside, [x0, x1) */
    const int fast = (kw == 3 || kw == 5) && kh == kw && sh == 1 && sw == 1;
    int32_t x0 = kw - 1 - pw, x1 = (int32_t)ow - pw;
    x0 = x0 < 0 ? 0 : x0;
    x1 = x1 > (int32_t)iw ? (int32_t)iw : x1;
    for (int32_t iy = 0; iy < (int32_t)ih; iy++) {
        int32_t ky0;
        const uint32_t ny = axis_taps(iy, ph, sh, kh, (int32_t)oh, &ky0);
        float *g = gin + (uint32_t)iy * iw;
        if (fast && ny != 0 && x0 < x1) {
            row_elements(g, 0, x0, w, s, ow, kw, pw, sw, sh, iy + ph, ky0, ny);
            row_inside_any(g, x0, x1, w + ky0 * kw, s + (uint32_t)(iy + ph - ky0) * ow + (uint32_t)(x0 + pw), ow,
                (uint32_t)kw, ny);
            row_elements(g, x1, (int32_t)iw, w, s, ow, kw, pw, sw, sh, iy + ph, ky0, ny);
        } else if (ny != 0) {
            row_elements(g, 0, (int32_t)iw, w, s, ow, kw, pw, sw, sh, iy + ph, ky0, ny);
        }
    }
}

/* A k x k kernel (k = 3, 5 or 7) at stride st (1 or 2) with padding k / 2, on an input n columns wide
 * (n = 4 or 8) and ih rows (k, n and st constants where inlined with them; the output oh rows of
 * (n + 2 (k / 2) - k) / st + 1 columns): one input-gradient row at a time, its n sums and a gradient row
 * in registers, each weight loaded once per row. A tap that falls outside, or between two outputs at
 * stride 2, is skipped (a row by a test, a column by a test on constants once unrolled), so each element
 * sees the general loop's operations in the same (ky, kx) order. */
MCT_HOT void rows_same(float *gin, const float *s, uint32_t ih, uint32_t oh, const float *w, uint32_t k, uint32_t n,
    uint32_t st) {
    const uint32_t p = k / 2u, ow = (n + 2u * p - k) / st + 1u;
    for (uint32_t iy = 0; iy < ih; iy++, gin += n) {
        float a[8], v[8];
MCT_UNROLL(8)
        for (uint32_t i = 0; i < n; i++) {
            a[i] = gin[i];
        }
MCT_UNROLL(3)           /* a 3x3 kernel's nine weights stay in registers */
        for (uint32_t ky = 0; ky < k; ky++) {
            const uint32_t u = iy + p - ky;             /* oy * st; wraps below 0, then oy >= oh */
            if (u % st != 0 || u / st >= oh) {
                continue;
            }
            const float *r = s + (u / st) * ow;
MCT_UNROLL(8)
            for (uint32_t i = 0; i < ow; i++) {
                v[i] = r[i];
            }
            const float *wr = w + ky * k;
MCT_UNROLL(7)
            for (uint32_t kx = 0; kx < k; kx++) {
                const float wk = wr[kx];
MCT_UNROLL(8)
                for (uint32_t ix = 0; ix < n; ix++) {
                    const uint32_t ux = ix + p - kx;    /* ox * st */
                    if (ux % st == 0 && ux / st < ow) {
                        a[ix] = mct_mla_f32(a[ix], wk, v[ux / st]);
                    }
                }
            }
        }
MCT_UNROLL(8)
        for (uint32_t i = 0; i < n; i++) {
            gin[i] = a[i];
        }
    }
}

/* rows_same where it applies, with k, n and the stride made constants; 0 where it does not. Not in
 * the small native modules (MCT_SMALL_CODE) nor on cores without an FPU: there its nine unrolled copies
 * would cost 10 KB of Flash for the few instructions the soft-float products leave to save. */
static int input_grad_same(const mct_op_t *op, uint32_t ih, uint32_t iw, uint32_t oh, uint32_t ow,
    const float *w, const float *s, float *gin) {
#if defined(MCT_SMALL_CODE) || (defined(__arm__) && !defined(__ARM_FP))
    (void)op, (void)ih, (void)iw, (void)oh, (void)ow, (void)w, (void)s, (void)gin;
    return 0;
#else
    const int32_t k = op->kw, st = op->sw, p = k / 2;
    if (!(op->kh == k && op->sh == st && (st == 1 || st == 2) && op->ph == p && op->pw == p
          && oh == (ih + 2u * (uint32_t)p - (uint32_t)k) / (uint32_t)st + 1u
          && ow == (iw + 2u * (uint32_t)p - (uint32_t)k) / (uint32_t)st + 1u)) {
        return 0;
    }
    switch ((k * 16 + (int32_t)iw) * 4 + st) {
        case (3 * 16 + 4) * 4 + 1: rows_same(gin, s, ih, oh, w, 3, 4, 1); return 1;
        case (3 * 16 + 8) * 4 + 1: rows_same(gin, s, ih, oh, w, 3, 8, 1); return 1;
        case (5 * 16 + 4) * 4 + 1: rows_same(gin, s, ih, oh, w, 5, 4, 1); return 1;
        case (5 * 16 + 8) * 4 + 1: rows_same(gin, s, ih, oh, w, 5, 8, 1); return 1;
        case (7 * 16 + 4) * 4 + 1: rows_same(gin, s, ih, oh, w, 7, 4, 1); return 1;
        case (7 * 16 + 8) * 4 + 1: rows_same(gin, s, ih, oh, w, 7, 8, 1); return 1;
        case (3 * 16 + 8) * 4 + 2: rows_same(gin, s, ih, oh, w, 3, 8, 2); return 1;
        case (5 * 16 + 8) * 4 + 2: rows_same(gin, s, ih, oh, w, 5, 8, 2); return 1;
        case (7 * 16 + 8) * 4 + 2: rows_same(gin, s, ih, oh, w, 7, 8, 2); return 1;
        default: return 0;
    }
#endif
}

static void input_grad(const mct_op_t *op, uint32_t ih, uint32_t iw, uint32_t oh, uint32_t ow, const float *w,
    const float *s, float *gin) {
    if (input_grad_same(op, ih, iw, oh, ow, w, s, gin)) {
        return;
    }
    if (op->sw == 1) {
        input_grad_sw(op, ih, iw, oh, ow, w, s, gin, 1);
    } else {
        input_grad_sw(op, ih, iw, oh, ow, w, s, gin, op->sw);
    }
}

uint32_t mct_dw_channel_backward_f32(mct_model_t *m, const mct_op_t *op, const mct_act_t *in,
    const mct_act_t *out, uint32_t o, float *go, float *gi, float lr) {
    const uint32_t hw = (uint32_t)out->h * out->w, taps = (uint32_t)op->kh * op->kw;
    const mct_rows_t rows = mct_weight_rows(m, op->weight, taps);
    const float ws = ((const float *)mct_tensor(m, op->wscale))[o];
    const int8_t *wo = mct_row(&rows, o);
    uint32_t skipped = 0;
    /* untrained weights need go only for the bias and as go * w_scale: both in one pass */
    int scaled = gi != NULL && taps <= MCT_DW_TAPS && o >= rows.n_sram;
    if (mct_tensor_trained(m, op->bias)) {
        float total = 0.0f;
        if (scaled) {
MCT_UNROLL(4)
            for (uint32_t i = 0; i < hw; i++) {
                total += go[i];
                go[i] = go[i] * ws;
            }
        } else {
            for (uint32_t i = 0; i < hw; i++) {
                total += go[i];
            }
        }
        skipped += mct_update_bias(m, op, o, total, lr);
    } else {
        scaled = 0;
    }
    if (taps > MCT_DW_TAPS) {
        /* too large to hold: the input gradient first, with the weights before their update */
        if (gi != NULL) {
            mct_op_t one = *op;             /* the channel alone */
            mct_act_t in1 = *in, out1 = *out;
            one.groups = 1;
            in1.c = out1.c = 1;
            in1.size = (uint32_t)in->h * in->w;
            out1.size = hw;
            mct_conv2d_input_grad_f32(&one, &in1, &out1, 0, wo, go, ws, gi);
        }
        if (o < rows.n_sram) {
            skipped += mct_update_conv_weight(m, op, in, mct_act_data(m, in), out, o, go, lr);
        }
        return skipped;
    }
    float w[MCT_DW_TAPS];           /* this step's forward weights, before their update below */
    for (uint32_t t = 0; t < taps; t++) {
        w[t] = (float)wo[t];
    }
    if (o < rows.n_sram) {
        skipped += mct_update_conv_weight(m, op, in, mct_act_data(m, in), out, o, go, lr);
    }
    if (gi != NULL) {
        for (uint32_t i = 0; i < hw && !scaled; i++) {
            go[i] = go[i] * ws;
        }
        input_grad(op, in->h, in->w, out->h, out->w, w, go, gi);
    }
    return skipped;
}
