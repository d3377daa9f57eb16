/* int8 residual add with requantization of both inputs to a common scale (TFLite's scheme). */
#include "mct_internal.h"
#include "mct_requant.h"

void mct_add_s8(const mct_op_t *op, uint32_t n, const int8_t *a, const int8_t *b, int8_t *y) {
    const int32_t ls = op->add_left_shift;
    for (uint32_t i = 0; i < n; i++) {
        int32_t a2 = mct_requant((int64_t)(a[i] - op->in0_zero) * ((int64_t)1 << ls), op->add_mult[0], op->add_shift[0]);
        int32_t b2 = mct_requant((int64_t)(b[i] - op->in1_zero) * ((int64_t)1 << ls), op->add_mult[1], op->add_shift[1]);
        y[i] = mct_requant_s8((int64_t)a2 + b2, op->add_mult[2], op->add_shift[2], op->out_zero, op->act_min,
            op->act_max);
    }
}
