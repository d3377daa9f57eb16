/* int8 pointwise (1x1) convolution on channels-last activations: an int8 GEMM y[p][o] = w[o] . x[p],
 * two output channels x two pixels at a time (each input word and weight word loaded once for two
 * products), requantization fused. Also a fully connected layer (one pixel). */
#include "mct_kernels_hwc.h"
#include "mct_gemm_s8_hwc.h"

/* Output channels o0, o1 (equal for the last of an odd count) over every pixel. */
MCT_LOOP void channel_pair(const int8_t *x, uint32_t pixels, uint32_t cin, const int8_t *w0, const int8_t *w1,
    const mct_rq_t *q0, const mct_rq_t *q1, uint32_t xzw0, uint32_t xzw1, uint32_t cout, int8_t *y0, int8_t *y1) {
    for (uint32_t p = 0; p < pixels; p += 2) {
        const int8_t *x0 = x + (size_t)p * cin;
        const int last = p + 1 == pixels;   /* an odd pixel count: its partner is itself, not stored */
        int32_t acc[4] = { (int32_t)-xzw0, (int32_t)-xzw1, (int32_t)-xzw0, (int32_t)-xzw1 };
        mct_hwc_dot2x2(x0, last ? x0 : x0 + cin, w0, w1, cin, acc);
        const size_t at = (size_t)p * cout;
        y0[at] = mct_rq_s8(q0, acc[0]);
        y1[at] = mct_rq_s8(q1, acc[1]);
        if (!last) {
            y0[at + cout] = mct_rq_s8(q0, acc[2]);
            y1[at + cout] = mct_rq_s8(q1, acc[3]);
        }
    }
}

void mct_pointwise_s8_hwc(const int8_t *x, uint32_t pixels, uint32_t cin, const int8_t *w, uint32_t cout,
    const mct_hwc_quant_t *q, int8_t *y) {
    const uint64_t bound = mct_acc_bound(cin, q->x_zero);
    for (uint32_t o = 0; o < cout; o += 2) {
        const uint32_t o1 = o + 1 < cout ? o + 1 : o;
        mct_rq_t rq[2];
        mct_rq_init(&rq[0], q->bias[o], bound, q->mult[o], q->shift[o], q->y_zero, q->act_min, q->act_max);
        mct_rq_init(&rq[1], q->bias[o1], bound, q->mult[o1], q->shift[o1], q->y_zero, q->act_min, q->act_max);
        const int8_t *w0 = w + (size_t)o * cin, *w1 = w + (size_t)o1 * cin;
        channel_pair(x, pixels, cin, w0, w1, &rq[0], &rq[1], mct_hwc_xzw(w0, cin, q->x_zero),
            mct_hwc_xzw(w1, cin, q->x_zero), cout, y + o, y + o1);
    }
}
