/* int8 fully connected layer on the flattened input, fused bias, requantization and clamp. The weights'
 * columns are in PyTorch's flatten order (c, y, x); a channels-last input with more than one pixel is
 * read in that order. */
#include "mct_internal.h"
#include "mct_requant.h"

void mct_fc_s8(const mct_op_t *op, const mct_act_t *in, const int8_t *x, uint32_t n_out, int8_t *y,
    const mct_rows_t *weight, const int32_t *bias, const int32_t *mult, const int32_t *shift) {
    const int32_t xz = op->in0_zero;
    const uint32_t n_in = in->size, hw = (uint32_t)in->h * in->w;
    for (uint32_t o = 0; o < n_out; o++) {
        const int8_t *w = mct_row(weight, o);
        int32_t acc = 0;        /* fits int32: fan-in checked on load */
        if (hw == 1) {
            for (uint32_t i = 0; i < n_in; i++) {
                acc += (x[i] - xz) * w[i];
            }
        } else {
            for (uint32_t c = 0; c < in->c; c++, w += hw) {
                for (uint32_t p = 0; p < hw; p++) {
                    acc += (x[(size_t)p * in->c + c] - xz) * w[p];
                }
            }
        }
        mct_rq_t q;
        mct_rq_init(&q, bias[o], mct_acc_bound(n_in, xz), mult[o], shift[o], op->out_zero, op->act_min, op->act_max);
        mct_rq_run(&q, &acc, 1, 0, y + o);
    }
}
