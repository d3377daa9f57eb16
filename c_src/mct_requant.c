/* The out-of-line parts of the kernels' requantization (see mct_requant.h): one copy for all kernels. */
#include "mct_requant.h"

void mct_rq_init(mct_rq_t *q, int32_t bias, uint64_t acc_bound, int32_t mult, int32_t shift,
    int32_t zero, int32_t lo, int32_t hi) {
    const int32_t s = shift > 30 ? 30 : (shift < -31 ? -31 : shift);
    q->bias = bias;
    q->mult = mult;
    q->shift = shift;
    q->left = s > 0 ? s : 0;
    q->right = s > 0 ? 0 : -s;
    q->zero = zero;
    q->out_lo = lo;
    q->out_hi = hi;
    const int64_t rel_lo = (int64_t)lo - zero, rel_hi = (int64_t)hi - zero;
    q->lo = (int32_t)(rel_lo < INT32_MIN ? INT32_MIN : rel_lo);
    q->hi = (int32_t)(rel_hi > INT32_MAX ? INT32_MAX : rel_hi);
    const uint64_t mag = (uint64_t)(bias < 0 ? -(int64_t)bias : (int64_t)bias) + acc_bound;
    q->fast = mult >= 0 && mag <= ((uint64_t)INT32_MAX >> q->left) && rel_lo >= INT32_MIN && rel_hi <= INT32_MAX;
#ifdef MCT_REFERENCE_KERNELS
    q->fast = 0;            /* the baseline build of the benchmarks: every output step by step */
#endif
    if (q->right == 0) {
        q->round_pos = q->round_neg = (int64_t)1 << 30;
    } else {
        q->round_pos = ((int64_t)1 << 30) + ((int64_t)1 << (30 + q->right));
        q->round_neg = q->round_pos - ((int64_t)1 << 31);
    }
}

int8_t mct_rq_slow(const mct_rq_t *q, int32_t acc) {
    return mct_requant_s8((int64_t)q->bias + acc, q->mult, q->shift, q->zero, q->out_lo, q->out_hi);
}

void mct_rq_run(const mct_rq_t *q, const int32_t *acc, uint32_t n, uint32_t xzw, int8_t *y) {
    for (uint32_t i = 0; i < n; i++) {
        y[i] = mct_rq_s8(q, (int32_t)((uint32_t)acc[i] - xzw));
    }
}
