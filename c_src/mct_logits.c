/* The logits that the loss and predict read: the last op's output before its int8 clamp, in integer
 * steps of its scale from its zero point. New data can drive logits past the range calibrated on
 * the old data; saturated at int8, the loss would see no difference between a logit at the edge and
 * one far past it, and its gradient could not pull them back (docs/numerics.md, "Clamps in the
 * backward"). They are K int32 values kept after the output's K int8 values, in its arena buffer
 * (host_tools/memory/arena.py logits_size), written by the last op's forward. Bit-exact with
 * host_tools/reference/ (oracle.py forward_op_z, kernels.py softmax_exp). */
#include "mct_internal.h"
#include "mct_requant.h"

int32_t *mct_logits32(const mct_model_t *m, uint32_t *n) {
    mct_act_t out;
    mct_act_decode(m, m->output, &out);
    *n = out.size;
    return (int32_t *)(void *)(m->workspace + out.offset + ((out.size + 3u) & ~3u));
}

/* One conv output before its clamp: bias + the window's sum (padding adds 0), requantized. */
static int32_t conv_z(const mct_op_t *op, const mct_act_t *in, const int8_t *x, const int8_t *w_row,
    int32_t bias, int32_t mult, int32_t shift, uint32_t c0, uint32_t oy, uint32_t ox) {
    const uint32_t cpg = in->c / op->groups;
    int64_t acc = bias;
    for (uint32_t c = 0; c < cpg; c++) {
        for (int32_t ky = 0; ky < op->kh; ky++) {
            const int32_t iy = (int32_t)(oy * op->sh) - op->ph + ky;
            for (int32_t kx = 0; kx < op->kw && iy >= 0 && iy < in->h; kx++) {
                const int32_t ix = (int32_t)(ox * op->sw) - op->pw + kx;
                if (ix >= 0 && ix < in->w) {
                    acc += (int32_t)(x[((size_t)iy * in->w + (uint32_t)ix) * in->c + c0 + c] - op->in0_zero) *
                        w_row[((size_t)c * op->kh + (uint32_t)ky) * op->kw + (uint32_t)kx];
                }
            }
        }
    }
    return mct_requant(acc, mult, shift);
}

/* After the last op's forward (op, its inputs x and x1, whole tensors: the last op is never in the
 * patch-based stage nor in a row-streamed block). A conv or FC computes its accumulators again,
 * once more the work of the last layer (a classifier: a small share of the step). */
void mct_logits_save(mct_model_t *m, const mct_op_t *op, const int8_t *x, const int8_t *x1) {
    mct_act_t in, out;
    mct_act_decode(m, op->in0, &in);
    mct_act_decode(m, op->out, &out);
    uint32_t n;
    int32_t *z = mct_logits32(m, &n);
    const int8_t *y = mct_act_data(m, &out);
    if (op->type == MCT_OP_FC || op->type == MCT_OP_CONV2D) {
        const uint32_t row = op->type == MCT_OP_FC ? in.size : (uint32_t)(in.c / op->groups) * op->kh * op->kw;
        const mct_rows_t w = mct_weight_rows(m, op->weight, row);
        const int32_t *bias = (const int32_t *)mct_tensor(m, op->bias);
        const int32_t *mult = (const int32_t *)mct_tensor(m, op->mult), *shift = (const int32_t *)mct_tensor(m, op->shift);
        const uint32_t hw = (uint32_t)out.h * out.w, opg = out.c / (op->groups ? op->groups : 1);
        for (uint32_t o = 0; o < out.c; o++) {
            const int8_t *wr = mct_row(&w, o);
            if (op->type == MCT_OP_FC) {
                int64_t acc = bias[o];
                const uint32_t hw = in.size / in.c;
                for (uint32_t ch = 0, i = 0; ch < in.c; ch++) {      /* flatten order (c, pixel) */
                    for (uint32_t p = 0; p < hw; p++, i++) {
                        acc += (int32_t)(x[(size_t)p * in.c + ch] - op->in0_zero) * wr[i];
                    }
                }
                z[o] = mct_requant(acc, mult[o], shift[o]);
                continue;
            }
            for (uint32_t p = 0; p < hw; p++) {
                z[p * out.c + o] = conv_z(op, &in, x, wr, bias[o], mult[o], shift[o], (o / opg) * (in.c / op->groups),
                    p / out.w, p % out.w);
            }
        }
    } else if (op->type == MCT_OP_ADD) {
        const int32_t ls = op->add_left_shift;
        for (uint32_t i = 0; i < n; i++) {
            const int32_t a2 = mct_requant((int64_t)(x[i] - op->in0_zero) * ((int64_t)1 << ls), op->add_mult[0], op->add_shift[0]);
            const int32_t b2 = mct_requant((int64_t)(x1[i] - op->in1_zero) * ((int64_t)1 << ls), op->add_mult[1], op->add_shift[1]);
            z[i] = mct_requant((int64_t)a2 + b2, op->add_mult[2], op->add_shift[2]);
        }
    } else if (op->type == MCT_OP_MUL) {       /* the gate multiply's product, requantized */
        for (uint32_t i = 0; i < n; i++) {
            z[i] = mct_requant((int64_t)(x[i] - op->in0_zero) * (x1[i % out.c] - op->in1_zero), op->add_mult[0],
                op->add_shift[0]);
        }
    } else {
        for (uint32_t i = 0; i < n; i++) {     /* pools and the concatenation clamp nothing */
            z[i] = y[i] - op->out_zero;
        }
    }
}

int32_t mct_logits_max(const int32_t *z, uint32_t n, uint32_t *at) {
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++) {
        if (z[i] > z[best]) {
            best = i;
        }
    }
    if (at != NULL) {
        *at = best;
    }
    return z[best];
}

/* exp(-s d) from the file's table T[d] = exp(-s d), d < 256: d = 255 q + r gives T[r] * T[255]^q, the
 * power by squaring from the low bits (float32, in this order: the reference repeats it). */
float mct_exp_neg(const float *table, uint32_t d) {
    float e = table[d % 255u];
    float base = table[255];
    for (uint32_t q = d / 255u; q != 0u && e != 0.0f; q >>= 1) {
        if (q & 1u) {
            e = e * base;
        }
        base = base * base;
    }
    return e;
}
