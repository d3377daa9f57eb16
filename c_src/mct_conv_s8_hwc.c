/* int8 full convolution (groups 1) on channels-last activations through a small im2col: the first
 * layer of a CNN (3 input channels), whose column KH*KW*Cin is short. Two pixels' columns are copied
 * at a time (padding filled with x_zero, a real zero), then multiplied by the pointwise kernels' GEMM
 * core with the weights of eight output channels per pass over the image (their requantization
 * prepared once, and their weights reordered from [Cout][Cin][KH][KW] to the column's order, on the
 * stack). */
#include <stddef.h>
#include "mct_kernels_hwc.h"
#include "mct_gemm_s8_hwc.h"
#include "mct_gemm_s8_sse2.h"

#define RQ_BLOCK 8u
/* DSP cores: the block's weights unpacked once onto the stack where the column is this short (512 B;
 * 3x3 over 3 channels is 27), which saves unpacking them at every pixel pair. */
#define UNPACKED_K 32u

/* The column of output pixel (oy, ox) of the window: KH rows of KW*Cin bytes (channels last, as the
 * input holds them: whole runs copied). */
static void column(const int8_t *x, const mct_hwc_geom_t *g, uint32_t xpix, uint32_t xrow, uint32_t oy, uint32_t ox,
    int8_t xz, int8_t *col) {
    const uint32_t c = g->in_c, run = g->kw * c;
    const int32_t iy = (int32_t)((g->y0 + oy) * g->stride_h) - (int32_t)g->pad_h;
    const int32_t ix = (int32_t)((g->x0 + ox) * g->stride_w) - (int32_t)g->pad_w;
    const uint32_t kx0 = ix < 0 ? (uint32_t)-ix : 0;
    const int32_t left = (int32_t)g->in_w - ix;                 /* input columns from ix on */
    const uint32_t kx1 = left <= 0 ? 0 : ((uint32_t)left < g->kw ? (uint32_t)left : g->kw);
    for (uint32_t ky = 0; ky < g->kh; ky++, col += run) {
        const int32_t y = iy + (int32_t)ky;
        if (y < 0 || y >= (int32_t)g->in_h || kx0 >= kx1) {
            memset(col, xz, run);
            continue;
        }
        const int8_t *src = x + (ptrdiff_t)(y - (int32_t)g->in_y0) * (ptrdiff_t)xrow +
            (ptrdiff_t)(ix + (int32_t)kx0 - (int32_t)g->in_x0) * (ptrdiff_t)xpix;
        if (xpix != c) {                            /* pixels further apart than their channels */
            memset(col, xz, run);
            for (uint32_t kx = kx0; kx < kx1; kx++, src += xpix) {
                memcpy(col + kx * c, src, c);
            }
            continue;
        }
        if (kx0 == 0 && kx1 == g->kw) {             /* the whole row inside: one copy, no calls */
            uint32_t i = 0;
#if MCT_HWC_DSP
            for (; i + 4 <= run; i += 4) {          /* words: ARMv7-M loads and stores them unaligned */
                const uint32_t v = mct_hwc_rd32(src + i);
                memcpy(col + i, &v, 4);
            }
#endif
            for (; i < run; i++) {
                col[i] = src[i];
            }
            continue;
        }
        memset(col, xz, kx0 * c);
        memcpy(col + kx0 * c, src, (kx1 - kx0) * c);
        memset(col + kx1 * c, xz, (g->kw - kx1) * c);
    }
}

/* The conv for a column of k <= MCT_HWC_COL_MAX bytes. */
MCT_HWC_LOOP void conv(const int8_t *x, const mct_hwc_geom_t *g, const int8_t *wt, const mct_hwc_quant_t *q,
    int8_t *y, uint32_t k) {
    const uint32_t taps_n = g->kh * g->kw;
    int8_t w[RQ_BLOCK * MCT_HWC_COL_MAX];    /* a block's weights in the column's order, [i][KH][KW][Cin] */
    const uint32_t cout = g->out_c, pixels = g->out_h * g->out_w;
    uint32_t xpix, xrow, ypix, yrow;
    mct_hwc_strides(g, g->in_c, g->out_c, &xpix, &xrow, &ypix, &yrow);
    int8_t col[2 * MCT_HWC_COL_MAX];     /* two columns, k apart: the offset of the weights' next row */
    const uint64_t bound = mct_acc_bound(k, q->x_zero);
    for (uint32_t o0 = 0; o0 < cout; o0 += RQ_BLOCK) {
        const uint32_t nb = cout - o0 < RQ_BLOCK ? cout - o0 : RQ_BLOCK;
        for (uint32_t i = 0; i < nb; i++) {
            for (uint32_t c = 0; c < g->in_c; c++) {
                for (uint32_t t = 0; t < taps_n; t++) {
                    w[i * k + t * g->in_c + c] = wt[(size_t)(o0 + i) * k + c * taps_n + t];
                }
            }
        }
        mct_rq_t rq[RQ_BLOCK];
        mct_hwc_rqc_t rc[RQ_BLOCK];
        int32_t start[RQ_BLOCK];            /* bias - x_zero * sum(w): where the raw dot products start */
        int lean = 1;
        for (uint32_t i = 0; i < nb; i++) {
            const uint32_t o = o0 + i;
            mct_rq_init(&rq[i], q->bias[o], bound, q->mult[o], q->shift[o], q->y_zero, q->act_min, q->act_max);
            start[i] = (int32_t)((uint32_t)q->bias[o] - mct_hwc_xzw(w + (size_t)i * k, k, q->x_zero));
            lean = mct_hwc_rq_prepare(&rc[i], &rq[i], q->bias[o], bound) && lean;
        }
#if MCT_HWC_DSP
        int16x2_t wq[RQ_BLOCK / 2][UNPACKED_K];
        const uint32_t n4 = k / 4, done = k <= UNPACKED_K ? n4 * 4 : 0;   /* the channels unpacked */
        for (uint32_t i = 0; done && i + 1 < nb; i += 2) {
            mct_hwc_unpack2(w + (size_t)i * k, w + (size_t)(i + 1) * k, n4, wq[i / 2]);
        }
#else
        const uint32_t done = 0;
#endif
#if MCT_HWC_SSE2
        /* x86-64 hosts: the block as two quads of mct_sse2_dot2x4, weights widened to int16 */
        int16_t w16[RQ_BLOCK * MCT_HWC_COL_MAX];
        const uint32_t ws = (k + 7u) & ~7u;
        mct_sse2_widen_rows(w, nb, k, RQ_BLOCK, ws, w16);
        mct_sse2_rq_t r[RQ_BLOCK / 4];
        for (uint32_t i = nb; i < RQ_BLOCK; i++) {
            start[i] = 0;
        }
        for (uint32_t h = 0; h * 4 < nb; h++) {
            mct_sse2_rq_init(&r[h], rc + 4 * h, nb - 4 * h < 4 ? nb - 4 * h : 4, q->act_min, q->act_max);
        }
#endif
        for (uint32_t p = 0; p < pixels; p += 2) {
            const int last = p + 1 == pixels;   /* an odd pixel count: its partner is itself, not stored */
            column(x, g, xpix, xrow, p / g->out_w, p % g->out_w, (int8_t)q->x_zero, col);
            if (!last) {
                column(x, g, xpix, xrow, (p + 1) / g->out_w, (p + 1) % g->out_w, (int8_t)q->x_zero, col + k);
            }
            const uint32_t p1 = last ? p : p + 1;
            int8_t *yp = y + (size_t)(p / g->out_w) * yrow + (size_t)(p % g->out_w) * ypix + o0;
            int8_t *yq = y + (size_t)(p1 / g->out_w) * yrow + (size_t)(p1 % g->out_w) * ypix + o0;
#if MCT_HWC_SSE2
            for (uint32_t h = 0; h * 4 < nb; h++) {
                const uint32_t n = nb - 4 * h < 4 ? nb - 4 * h : 4;
                __m128i s0 = _mm_loadu_si128((const __m128i *)(const void *)(start + 4 * h)), s1 = s0;
                /* the column buffer holds 2 * MCT_HWC_COL_MAX bytes: both columns may be read up to k rounded to 8 */
                mct_sse2_dot2x4(col, last ? col : col + k, w16 + (size_t)4 * h * ws, ws, k, 1, &s0, &s1);
                if (lean) {
                    mct_sse2_store2(mct_sse2_rq8(&r[h], s0, s1), n, yp + 4 * h, last ? NULL : yq + 4 * h);
                    continue;
                }
                int32_t a[8];
                _mm_storeu_si128((__m128i *)(void *)a, s0);
                _mm_storeu_si128((__m128i *)(void *)(a + 4), s1);
                for (uint32_t i = 0; i < n; i++) {
                    yp[4 * h + i] = mct_hwc_rq(&rc[4 * h + i], &rq[4 * h + i], 0, a[i]);
                    if (!last) {
                        yq[4 * h + i] = mct_hwc_rq(&rc[4 * h + i], &rq[4 * h + i], 0, a[4 + i]);
                    }
                }
            }
            continue;
#endif
            uint32_t i = 0;
            for (; i + 1 < nb; i += 2) {
                int32_t acc[4] = { start[i], start[i + 1], start[i], start[i + 1] };
#if MCT_HWC_DSP
                if (done) {
                    mct_hwc_dot2x2_u(col, k, wq[i / 2], n4, acc);
                }
#endif
                mct_hwc_dot2x2(col + done, w + (size_t)i * k + done, k - done, k, acc);
                yp[i] = mct_hwc_rq(&rc[i], &rq[i], lean, acc[0]);
                yp[i + 1] = mct_hwc_rq(&rc[i + 1], &rq[i + 1], lean, acc[1]);
                if (!last) {
                    yq[i] = mct_hwc_rq(&rc[i], &rq[i], lean, acc[2]);
                    yq[i + 1] = mct_hwc_rq(&rc[i + 1], &rq[i + 1], lean, acc[3]);
                }
            }
            if (i < nb) {                       /* an odd channel count: the last channel alone */
                const int8_t *wi = w + (size_t)i * k;
                int32_t acc[4] = { start[i], start[i], start[i], start[i] };
                mct_hwc_dot2x2_any(col, col + k, wi, wi, k, acc);
                yp[i] = mct_hwc_rq(&rc[i], &rq[i], lean, acc[0]);
                if (!last) {
                    yq[i] = mct_hwc_rq(&rc[i], &rq[i], lean, acc[2]);
                }
            }
        }
    }
}

#if MCT_HWC_DSP
/* DSP cores, a column of at most UNPACKED_K bytes (the first layer's 3x3 over 3 channels: 27): the
 * columns of up to SHORT_PIXELS output pixels at once (each copied once, where conv copies it once per
 * eight channels; a chunk spans rows where the output's are back to back), padded to whole words (zero
 * weights past k), and multiplied by the pointwise kernel's GEMM (its asm loop of channel pairs over
 * pixel pairs) with up to SHORT_BLOCK output channels per call. Stack: the columns (1 KB) and the
 * weights (512 B) here, the pointwise kernel's frame beneath, about 300 B past conv's own frame (64
 * pixels would save 7% more of the first conv's instructions for another KB). */
#define SHORT_BLOCK 16u
#define SHORT_PIXELS 16u

/* The column of a window inside the input: kh runs of `run` bytes, xrow apart, by words (ARMv7-M loads
 * and stores them unaligned). */
MCT_HOT void window(const int8_t *src, int8_t *dst, uint32_t kh, uint32_t run, uint32_t xrow) {
    for (uint32_t ky = 0; ky < kh; ky++, src += xrow, dst += run) {
        uint32_t j = 0;
        for (; j + 4 <= run; j += 4) {
            const uint32_t v = mct_hwc_rd32(src + j);
            memcpy(dst + j, &v, 4);
        }
        switch (run - j) {      /* the last 0-3 bytes (a loop would become a memcpy call) */
        case 3:
            dst[j + 2] = src[j + 2];
            /* fall through */
        case 2:
            dst[j + 1] = src[j + 1];
            /* fall through */
        case 1:
            dst[j] = src[j];
            break;
        default:
            break;
        }
    }
}

/* The columns of output pixels (oy, ox .. ox + n - 1) of the window, kp apart from col on. */
static void columns(const int8_t *x, const mct_hwc_geom_t *g, uint32_t xpix, uint32_t xrow, uint32_t oy, uint32_t ox,
    uint32_t n, int8_t xz, uint32_t kp, int8_t *col) {
    const uint32_t run = g->kw * g->in_c, kh = g->kh;
    const int32_t sw = (int32_t)g->stride_w;
    /* whether the windows of this output row lie inside the input's rows; pixels [i0, i1) have them
     * inside its columns too */
    const int32_t iy = (int32_t)((g->y0 + oy) * g->stride_h) - (int32_t)g->pad_h;
    const int inside = xpix == g->in_c && iy >= 0 && iy + (int32_t)kh <= (int32_t)g->in_h;
    const int32_t first = (int32_t)(g->x0 + ox), lo = ((int32_t)g->pad_w + sw - 1) / sw - first;
    const int32_t hi = (int32_t)(g->in_w + g->pad_w) >= (int32_t)g->kw ?
        ((int32_t)(g->in_w + g->pad_w) - (int32_t)g->kw) / sw - first + 1 : 0;
    uint32_t i0 = lo > 0 ? (uint32_t)lo : 0, i1 = hi < 0 ? 0 : (uint32_t)hi < n ? (uint32_t)hi : n;
    if (!inside || i1 < i0) {
        i0 = i1 = n;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (i == i0) {
            const int8_t *src = x + (ptrdiff_t)(iy - (int32_t)g->in_y0) * (ptrdiff_t)xrow +
                (ptrdiff_t)(((first + (int32_t)i0) * sw - (int32_t)g->pad_w) - (int32_t)g->in_x0) * (ptrdiff_t)xpix;
            const uint32_t step = (uint32_t)sw * xpix;
            if (kh == 3 && run == 9) {      /* 3x3 over RGB: the copy unrolled, 3 x 2 words + 3 bytes */
                for (; i < i1; i++, src += step) {
                    window(src, col + i * kp, 3, 9, xrow);
                }
            }
            for (; i < i1; i++, src += step) {
                window(src, col + i * kp, kh, run, xrow);
            }
            if (i == n) {
                break;
            }
        }
        column(x, g, xpix, xrow, oy, ox + i, xz, col + i * kp);
    }
}

MCT_LOOP void short_conv(const int8_t *x, const mct_hwc_geom_t *g, const int8_t *wt, const mct_hwc_quant_t *q,
    int8_t *y, uint32_t k) {
    const uint32_t taps_n = g->kh * g->kw, kp = (k + 3u) & ~3u, pixels = g->out_h * g->out_w;
    int8_t w[SHORT_BLOCK * UNPACKED_K];         /* a block's weights in the column's order, zero-padded */
    int8_t col[(SHORT_PIXELS + 1) * UNPACKED_K];    /* the columns, kp apart (+1: an odd last one twice) */
    int32_t area[SHORT_BLOCK / 2 * MCT_HWC_PAIR_WORDS(UNPACKED_K)];   /* the prepared channel pairs */
    mct_hwc_rqc_t rc[2];
    uint32_t xpix, xrow, ypix, yrow;
    mct_hwc_strides(g, g->in_c, g->out_c, &xpix, &xrow, &ypix, &yrow);
    /* output rows back to back (a patch buffer, a whole tensor): a chunk of pixels may span rows */
    const int dense = yrow == g->out_w * ypix;
    /* the prepared pairs where every channel takes the lean requantization with the full int8 range
     * and they pair up; else the pointwise kernel, which prepares them at every call */
    const uint32_t limit = q->act_min == -128 && q->act_max == 127 && g->out_c % 2 == 0 ?
        mct_hwc_rq_bias_limit(mct_acc_bound(kp, q->x_zero), q->y_zero, q->act_min, q->act_max) : 0;
    int prepared = limit != 0;
    for (uint32_t o = 0; prepared && o < g->out_c; o++) {
        prepared = mct_hwc_rq_channel(&rc[0], limit, q->bias[o], q->mult[o], q->shift[o], q->y_zero);
    }
    memset(col, 0, sizeof col);                 /* the padding bytes (times zero weights): defined */
    for (uint32_t o0 = 0; o0 < g->out_c; o0 += SHORT_BLOCK) {
        const uint32_t nb = g->out_c - o0 < SHORT_BLOCK ? g->out_c - o0 : SHORT_BLOCK;
        memset(w, 0, sizeof w);
        for (uint32_t i = 0; i < nb; i++) {
            for (uint32_t c = 0; c < g->in_c; c++) {
                for (uint32_t t = 0; t < taps_n; t++) {
                    w[i * kp + t * g->in_c + c] = wt[(size_t)(o0 + i) * k + c * taps_n + t];
                }
            }
        }
        mct_hwc_quant_t qb = *q;                /* the block's channels */
        qb.bias += o0;
        qb.mult += o0;
        qb.shift += o0;
        for (uint32_t i = 0; prepared && i < nb; i += 2) {
            mct_hwc_rq_channel(&rc[0], limit, qb.bias[i], qb.mult[i], qb.shift[i], q->y_zero);
            mct_hwc_rq_channel(&rc[1], limit, qb.bias[i + 1], qb.mult[i + 1], qb.shift[i + 1], q->y_zero);
            mct_hwc_pair_prepare(area + i / 2 * MCT_HWC_PAIR_WORDS(kp), w + (size_t)i * kp, kp, qb.bias[i],
                qb.bias[i + 1], q->x_zero, rc);
        }
        for (uint32_t p = 0, n; p < pixels; p += n) {
            const uint32_t oy = p / g->out_w, ox = p % g->out_w, left = dense ? pixels - p : g->out_w - ox;
            n = left < SHORT_PIXELS ? left : SHORT_PIXELS;
            for (uint32_t i = 0, seg; i < n; i += seg) {       /* the chunk's pieces of rows */
                const uint32_t sx = (ox + i) % g->out_w, sy = oy + (ox + i) / g->out_w;
                seg = g->out_w - sx < n - i ? g->out_w - sx : n - i;
                columns(x, g, xpix, xrow, sy, sx, seg, (int8_t)q->x_zero, kp, col + i * kp);
            }
            int8_t *yc = y + (size_t)oy * yrow + (size_t)ox * ypix + o0;
            if (!prepared) {
                mct_pointwise_s8_hwc(col, n, kp, w, nb, &qb, yc, ypix);
                continue;
            }
            if (n % 2) {
                memcpy(col + n * kp, col + (n - 1) * kp, kp);   /* the odd last pixel paired with itself */
            }
            for (uint32_t i = 0; i < nb; i += 2) {
                mct_hwc_pair_run(col, n / 2, kp, area + i / 2 * MCT_HWC_PAIR_WORDS(kp), yc + i, ypix);
                if (n % 2) {
                    mct_hwc_pair_run(col + (n - 1) * kp, 1, kp, area + i / 2 * MCT_HWC_PAIR_WORDS(kp),
                        yc + (size_t)(n - 1) * ypix + i, 0);
                }
            }
        }
    }
}
#endif

int mct_conv_s8_hwc(const int8_t *x, const mct_hwc_geom_t *g, const int8_t *w, const mct_hwc_quant_t *q, int8_t *y) {
    const uint32_t k = g->kh * g->kw * g->in_c;
    if (k > MCT_HWC_COL_MAX) {
        return -1;
    }
#if MCT_HWC_DSP
    if (k <= UNPACKED_K) {
        short_conv(x, g, w, q, y, k);
        return 0;
    }
#endif
    conv(x, g, w, q, y, k);
    return 0;
}
