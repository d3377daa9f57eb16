/* int8 pointwise (1x1) convolution on channels-last activations: an int8 GEMM y[p][o] = w[o] . x[p],
 * two output channels x two pixels at a time (each input word and weight word loaded once for two
 * products), requantization fused. Also a fully connected layer (one pixel). On DSP cores the channel
 * pair's weights are unpacked once (mct_hwc_dot2x2_u: 18 instructions for 16 MACs). */
#include "mct_kernels_hwc.h"
#include "mct_gemm_s8_hwc.h"

/* DSP cores: a channel pair's weights are unpacked once onto the stack, up to this many input channels
 * (1 KB; the channels beyond are unpacked at every pixel pair), which saves unpacking them at each. */
#define UNPACKED_MAX 256u

/* Output channels o and o + d (d = 0: the last of an odd count) over every pixel; w0 is o's row, s0 and
 * s1 the accumulators' start (bias - x_zero * sum(w)). Inlined three times: lean 2, the lean path with
 * the full int8 range; 1, the lean path; 0, the reference path. */
MCT_HOT void pixels(const int8_t *x, uint32_t pixels, uint32_t cin, const int8_t *w0, uint32_t d, int32_t s0,
    int32_t s1, const mct_hwc_rqc_t *c, const mct_rq_t *q, const int lean, uint32_t ystep, int8_t *y) {
    const int8_t *w1 = w0 + d * cin;
#if MCT_HWC_DSP
    int16x2_t wq[UNPACKED_MAX];
    const uint32_t n4 = (cin < UNPACKED_MAX ? cin : UNPACKED_MAX) / 4, done = n4 * 4;   /* unpacked channels */
    if (d) {
        mct_hwc_unpack2(w0, w1, n4, wq);
    }
#endif
    uint32_t p = 0;
    for (; p + 1 < pixels; p += 2, x += 2 * cin, y += 2 * ystep) {
        int32_t acc[4] = { s0, s1, s0, s1 };
#if MCT_HWC_DSP
        if (d) {
            mct_hwc_dot2x2_u(x, cin, wq, n4, acc);
            if (done < cin) {
                mct_hwc_dot2x2(x + done, w0 + done, cin - done, cin, acc);     /* the channels beyond */
            }
        } else
#endif
        if (d) {
            mct_hwc_dot2x2(x, w0, cin, cin, acc);
        } else {
            mct_hwc_dot2x2_any(x, x + cin, w0, w0, cin, acc);
        }
        y[0] = mct_hwc_rq(&c[0], &q[0], lean, acc[0]);
        y[d] = mct_hwc_rq(&c[1], &q[1], lean, acc[1]);
        y[ystep] = mct_hwc_rq(&c[0], &q[0], lean, acc[2]);
        y[ystep + d] = mct_hwc_rq(&c[1], &q[1], lean, acc[3]);
    }
    if (p < pixels) {                   /* an odd pixel count: the last pixel alone */
        int32_t acc[4] = { s0, s1, s0, s1 };
        mct_hwc_dot2x2_any(x, x, w0, w1, cin, acc);
        y[0] = mct_hwc_rq(&c[0], &q[0], lean, acc[0]);
        y[d] = mct_hwc_rq(&c[1], &q[1], lean, acc[1]);
    }
}

MCT_HWC_LOOP void channel_pair(const int8_t *x, uint32_t n, uint32_t cin, const int8_t *w0, uint32_t d, int32_t s0,
    int32_t s1, const mct_hwc_rqc_t *c, const mct_rq_t *q, int lean, uint32_t ystep, int8_t *y) {
    if (lean && q[0].out_lo == -128 && q[0].out_hi == 127) {     /* the clamp becomes one SSAT */
        pixels(x, n, cin, w0, d, s0, s1, c, q, 2, ystep, y);
    } else if (lean) {
        pixels(x, n, cin, w0, d, s0, s1, c, q, 1, ystep, y);
    } else {
        pixels(x, n, cin, w0, d, s0, s1, c, q, 0, ystep, y);
    }
}

void mct_pointwise_s8_hwc(const int8_t *x, uint32_t pixels, uint32_t cin, const int8_t *w, uint32_t cout,
    const mct_hwc_quant_t *q, int8_t *y, uint32_t y_pixel) {
    const uint64_t bound = mct_acc_bound(cin, q->x_zero);
    for (uint32_t o = 0; o < cout; o += 2) {
        const uint32_t o1 = o + 1 < cout ? o + 1 : o;
        mct_rq_t rq[2];
        mct_hwc_rqc_t c[2];
        mct_rq_init(&rq[0], q->bias[o], bound, q->mult[o], q->shift[o], q->y_zero, q->act_min, q->act_max);
        mct_rq_init(&rq[1], q->bias[o1], bound, q->mult[o1], q->shift[o1], q->y_zero, q->act_min, q->act_max);
        const int lean = mct_hwc_rq_prepare(&c[0], &rq[0], q->bias[o], bound) &&
            mct_hwc_rq_prepare(&c[1], &rq[1], q->bias[o1], bound);
        const int8_t *w0 = w + (size_t)o * cin, *w1 = w + (size_t)o1 * cin;
        const int32_t s0 = (int32_t)((uint32_t)q->bias[o] - mct_hwc_xzw(w0, cin, q->x_zero));
        const int32_t s1 = (int32_t)((uint32_t)q->bias[o1] - mct_hwc_xzw(w1, cin, q->x_zero));
        channel_pair(x, pixels, cin, w0, o1 - o, s0, s1, c, rq, lean, y_pixel, y + o);
    }
}
