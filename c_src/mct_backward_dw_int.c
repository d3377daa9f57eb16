/* The integer backward kernels of depthwise convs, and of other convs than pointwise, one pair of
 * input and output channels at a time. Input gradient, stride 1:
 * each input pixel gathers its taps' products (the outputs it fed) in a register, four pixels of a
 * row at a time, and is read and written once; on small maps T first goes into a zero-bordered tile
 * on the stack so that every pixel can, elsewhere pixels whose taps fall off the output's edge take
 * a per-pixel path. Other strides: one tap at a time along output rows (a read-modify-write per
 * product, without index arithmetic per product). Weight sums: per tap, in int32 over runs short
 * enough not to overflow, then in int64 (no 64-bit multiply in the inner loop). */
#include "mct_backward_conv_int.h"
#include "mct_requant.h"     /* MCT_LOOP */

/* Stack words for a small map's zero-bordered T (an 8x8 map with a 3x3 kernel: 144; 1.6 KB). */
#define DW_TILE 400u

void mct_conv_taps(uint32_t out_len, uint32_t stride, int32_t pad, int32_t k, int32_t in_len, uint32_t *lo,
    uint32_t *hi) {
    const int32_t first = pad - k, last = in_len - 1 + pad - k;
    uint32_t a = first <= 0 ? 0 : (uint32_t)((first + (int32_t)stride - 1) / (int32_t)stride);
    uint32_t b = last < 0 ? 0 : (uint32_t)(last / (int32_t)stride) + 1;
    *lo = a;
    *hi = b < out_len ? b : out_len;
    if (*hi < *lo) {
        *hi = *lo;
    }
}

/* The outputs a stride-1 gather may read: rows [y0, y1), columns [x0, x1), row r at t + r * stride. */
typedef struct {
    const int32_t *t;
    int32_t stride, y0, y1, x0, x1;
} plane_t;

/* Input pixel ix of a row: *g += the sum over its taps whose output column ix + pw - kx lies inside
 * the plane (rows[ky] as gather4's, at column pw). */
static void gather1(const mct_op_t *op, const plane_t *pl, const int8_t *w, const int32_t *const *rows, int32_t ix,
    int32_t *g) {
    const int32_t c = ix + op->pw;
    const int32_t kx0 = c - (pl->x1 - 1) > 0 ? c - (pl->x1 - 1) : 0;
    const int32_t kx1 = c - pl->x0 + 1 < op->kw ? c - pl->x0 + 1 : op->kw;
    int32_t a = *g;
    for (int32_t ky = 0; ky < op->kh; ky++) {
        if (rows[ky] == NULL) {
            continue;
        }
        const int32_t *tp = rows[ky] + ix;
        const int8_t *wk = w + ky * op->kw;
        for (int32_t kx = kx0; kx < kx1; kx++) {
            a += wk[kx] * tp[-kx];
        }
    }
    *g = a;
}

/* Four input pixels of a row whose every tap column lands inside the output: rows[ky] points at
 * output row iy + ph - ky, column ix + pw (NULL where that row is outside). */
MCT_LOOP void gather4(int32_t kh, int32_t kw, const int8_t *w, const int32_t *const *rows, int32_t *g) {
    int32_t a0 = g[0], a1 = g[1], a2 = g[2], a3 = g[3];
    for (int32_t ky = 0; ky < kh; ky++) {
        const int32_t *tp = rows[ky];
        const int8_t *wk = w + ky * kw;
        for (int32_t kx = 0; tp != NULL && kx < kw; kx++, tp--) {
            const int32_t wv = wk[kx];
            a0 += wv * tp[0];
            a1 += wv * tp[1];
            a2 += wv * tp[2];
            a3 += wv * tp[3];
        }
    }
    g[0] = a0;
    g[1] = a1;
    g[2] = a2;
    g[3] = a3;
}

/* The stride-1 input gradient of every input pixel from the plane's outputs: blocks of four pixels
 * from ix_lo on while their taps' columns stay inside the plane, single pixels around them. */
static void gather_plane(const mct_op_t *op, const mct_act_t *in, const plane_t *pl, const int8_t *w, int32_t *gin) {
    const int32_t ix_lo = op->kw - 1 - op->pw + pl->x0 > 0 ? op->kw - 1 - op->pw + pl->x0 : 0;
    const int32_t ix_end = pl->x1 - op->pw < in->w ? pl->x1 - op->pw : in->w;     /* block ends at most here */
    for (int32_t iy = 0; iy < in->h; iy++) {
        int32_t *g = gin + iy * in->w;
        const int32_t *rows[MCT_DW_KH_MAX];
        for (int32_t ky = 0; ky < op->kh; ky++) {
            const int32_t oy = iy + op->ph - ky;
            rows[ky] = oy >= pl->y0 && oy < pl->y1 ? pl->t + oy * pl->stride + op->pw : NULL;
        }
        int32_t ix = 0;
        for (; ix < ix_lo && ix < in->w; ix++) {
            gather1(op, pl, w, rows, ix, g + ix);
        }
        for (; ix + 4 <= ix_end; ix += 4) {
            const int32_t *at[MCT_DW_KH_MAX];
            for (int32_t ky = 0; ky < op->kh; ky++) {
                at[ky] = rows[ky] != NULL ? rows[ky] + ix : NULL;
            }
            gather4(op->kh, op->kw, w, at, g + ix);
        }
        for (; ix < in->w; ix++) {
            gather1(op, pl, w, rows, ix, g + ix);
        }
    }
}

/* Accumulators: gin starts below 2^29 and its sum of products stays below 2^29 * 128/127
 * (mct_backward_conv_int.h), so no partial value reaches 2^31. */
void mct_channel_input_grad_int(const mct_op_t *op, const mct_act_t *in, const mct_act_t *out, const int8_t *w,
    const int32_t *t, int32_t *gin) {
    if (op->sh != 1 || op->sw != 1 || op->kh > MCT_DW_KH_MAX) {
        for (int32_t ky = 0; ky < op->kh; ky++) {
            uint32_t oy0, oy1;
            mct_conv_taps(out->h, op->sh, op->ph, ky, in->h, &oy0, &oy1);
            for (int32_t kx = 0; kx < op->kw; kx++) {
                uint32_t ox0, ox1;
                mct_conv_taps(out->w, op->sw, op->pw, kx, in->w, &ox0, &ox1);
                const int32_t wv = w[ky * op->kw + kx];
                for (uint32_t oy = oy0; oy < oy1 && ox0 < ox1; oy++) {
                    int32_t *q = gin + ((int32_t)(oy * op->sh) - op->ph + ky) * in->w
                        + (int32_t)(ox0 * op->sw) - op->pw + kx;
                    const int32_t *tp = t + oy * out->w + ox0;
                    for (uint32_t i = 0; i < ox1 - ox0; i++, q += op->sw) {
                        *q += wv * tp[i];
                    }
                }
            }
        }
        return;
    }
    const int32_t pw_ = op->kw - 1, ph_ = op->kh - 1;
    const int32_t tw = out->w + 2 * pw_, th = out->h + 2 * ph_;
    int32_t tile[DW_TILE];
    if (tw * th <= (int32_t)DW_TILE && in->w + op->pw <= out->w + pw_ && in->h + op->ph <= out->h + ph_) {
        /* a small map: T inside a zero border as wide as the kernel, so every tap a pixel can have is
         * inside the tile (the zeros add nothing) and whole rows go four pixels at a time */
        memset(tile, 0, 4u * (uint32_t)(tw * th));
        for (int32_t oy = 0; oy < out->h; oy++) {
            memcpy(tile + (oy + ph_) * tw + pw_, t + oy * out->w, 4u * out->w);
        }
        const plane_t pl = { tile + ph_ * tw + pw_, tw, -ph_, out->h + ph_, -pw_, out->w + pw_ };
        gather_plane(op, in, &pl, w, gin);
    } else {
        const plane_t pl = { t, out->w, 0, out->h, 0, out->w };
        gather_plane(op, in, &pl, w, gin);
    }
}

/* The int32 accumulator takes at most `run` products before it goes into the int64 sum:
 * |x - zero| <= 255 < 2^8 and |t| <= 2^t_bits, so 2^(22 - t_bits) products stay within 2^30. */
int64_t mct_tap_sum_int(const mct_op_t *op, const mct_act_t *in, const mct_act_t *out, const int8_t *x,
    int32_t zero, const int32_t *t, int32_t t_bits, int32_t ky, int32_t kx) {
    const uint32_t run = 1u << (22 - (t_bits < 0 ? 0 : t_bits));     /* t_bits <= 22: n_terms >= 1 */
    const uint32_t step = (uint32_t)op->sw * in->c;
    uint32_t oy0, oy1, ox0, ox1;
    mct_conv_taps(out->h, op->sh, op->ph, ky, in->h, &oy0, &oy1);
    mct_conv_taps(out->w, op->sw, op->pw, kx, in->w, &ox0, &ox1);
    int64_t sum = 0;
    int32_t a = 0;
    uint32_t left = run;
    for (uint32_t oy = oy0; oy < oy1; oy++) {
        const int32_t iy = (int32_t)(oy * op->sh) - op->ph + ky;
        const int8_t *xr = x + ((size_t)iy * in->w + (size_t)((int32_t)(ox0 * op->sw) - op->pw + kx)) * in->c;
        const int32_t *tp = t + oy * out->w + ox0;
        for (uint32_t i = 0, n = ox1 - ox0; i < n;) {
            if (left == 0) {
                sum += a;
                a = 0;
                left = run;
            }
            const uint32_t end = n - i < left ? n : i + left;
            left -= end - i;
            for (; i < end; i++, xr += step) {
                a += tp[i] * (xr[0] - zero);
            }
        }
    }
    return sum + a;
}
