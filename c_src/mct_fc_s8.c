/* int8 fully connected layer on the flattened input, fused bias, requantization and clamp. */
#include "mct_internal.h"
#include "mct_requant.h"

void mct_fc_s8(const mct_op_t *op, uint32_t n_in, const int8_t *x, uint32_t n_out, int8_t *y,
    const mct_rows_t *weight, const int32_t *bias, const int32_t *mult, const int32_t *shift) {
    const int32_t xz = op->in0_zero;
    for (uint32_t o = 0; o < n_out; o++) {
        const int8_t *w = mct_row(weight, o);
        int32_t acc = 0;        /* fits int32: fan-in checked on load */
        for (uint32_t i = 0; i < n_in; i++) {
            acc += (x[i] - xz) * w[i];
        }
        mct_rq_t q;
        mct_rq_init(&q, bias[o], mct_acc_bound(n_in, xz), mult[o], shift[o], op->out_zero, op->act_min, op->act_max);
        mct_rq_run(&q, &acc, 1, 0, y + o);
    }
}
