/* Integer-only backward pass (header byte 50, bit 2): for MCUs without an FPU.
 *
 * Every gradient buffer holds int32 mantissas G with one exponent per activation (block floating
 * point): the real gradient is G * 2^E. An op turns its output gradient into contributions T with a
 * common exponent chosen from a bound, so that the exact integer sum of its contributions to any
 * input element stays below 2^29; a buffer written by several ops is first brought to the coarser of
 * the two exponents; after each op its input buffer is renormalized below 2^29. Integer sums are
 * exact, so only the roundings named here matter; host_tools/reference/int_backward.py repeats each of them.
 * Per output channel a few float32 operations remain (lr, scales); no float per element.
 * Updates are integer steps in 1/256 of a weight step through the update rule (mct_update_rule.c). */
#include "mct_backward_conv_int.h"
#include "mct_requant.h"     /* mct_mul64 */

#define BOUND_BITS 29
#define GEXP_UNSET (-32768)
#define STEP_Q8_LIMIT (1ll << 38)

/* Bits of v: CLZ where the compiler has it (a step per weight update and per channel, so the
 * bit-by-bit loop showed in the profile), else that loop. */
static int32_t bitlen64(uint64_t v) {
#if defined(__GNUC__)
    const uint32_t hi = (uint32_t)(v >> 32), lo = (uint32_t)v;
    return hi ? 64 - __builtin_clz(hi) : (lo ? 32 - __builtin_clz(lo) : 0);
#else
    int32_t n = 0;
    while (v) {
        n++;
        v >>= 1;
    }
    return n;
#endif
}

static uint64_t abs64(int64_t v) {
    return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

/* v * 2^-s rounded half up (s > 0); v * 2^-s exactly (s <= 0), saturated at +-2^62 (only a
 * misused custom loop, a backward without its loss, gets there). */
int64_t mct_shift_round(int64_t v, int32_t s) {
    if (s <= 0) {
        if (v == 0) {
            return 0;
        }
        if (s < -62 || abs64(v) >= ((uint64_t)1 << (62 + s))) {
            return v < 0 ? -((int64_t)1 << 62) : ((int64_t)1 << 62);
        }
        return v * ((int64_t)1 << -s);
    }
    if (s > 62) {
        return 0;
    }
    return (v + ((int64_t)1 << (s - 1))) >> s;
}

/* A positive or negative float as mant * 2^exp, |mant| < 2^24, exactly, from its bits. */
void mct_f32_split(float f, int32_t *mant, int32_t *exp) {
    uint32_t u;
    memcpy(&u, &f, 4);
    const int32_t e = (int32_t)((u >> 23) & 0xff);
    int32_t mt = (int32_t)(u & 0x7fffff);
    if (e) {
        mt |= 0x800000;
    }
    *mant = (u >> 31) ? -mt : mt;
    *exp = (e ? e : 1) - 150;
}

int16_t *mct_gexp(const mct_model_t *m) {
    return (int16_t *)(m->workspace + m->gexp_offset);
}

/* max |g[i]| (a uint32: |INT32_MIN| = 2^31 fits). */
static uint64_t max_abs(const int32_t *g, uint32_t n) {
    uint32_t mx = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint32_t v = g[i] < 0 ? 0u - (uint32_t)g[i] : (uint32_t)g[i];
        mx = v > mx ? v : mx;
    }
    return mx;
}

/* g[i] * 2^-d rounded half up for i < n, d >= 1 (mct_shift_round's results) in 32 bits: floor(g 2^-d)
 * plus the bit below the point, the per-element step of a rescaling. */
static void shift_round_all(int32_t *g, uint32_t n, int32_t d) {
    if (d >= 32) {              /* |g| < 2^31 <= 2^(d - 1): every result 0 */
        memset(g, 0, 4u * n);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        g[i] = (g[i] >> d) + ((g[i] >> (d - 1)) & 1);
    }
}

/* Exponent E_T wanted for contributions to activation a: when a already holds other contributions,
 * the coarser exponent wins and the buffer is rescaled to it. Returns the exponent to use. */
static int32_t align_grad(mct_model_t *m, uint16_t a, int32_t e_t) {
    int16_t *gexp = mct_gexp(m);
    if (gexp[a] == GEXP_UNSET || gexp[a] >= e_t) {
        if (gexp[a] == GEXP_UNSET) {
            gexp[a] = (int16_t)e_t;
        }
        return gexp[a];
    }
    mct_act_t act;
    mct_act_decode(m, a, &act);
    int32_t *g = (int32_t *)mct_act_grad(m, &act);
    shift_round_all(g, act.size, e_t - gexp[a]);
    gexp[a] = (int16_t)e_t;
    return e_t;
}

/* After an op: bring activation a's gradient below 2^29 again. */
static void normalize_grad(mct_model_t *m, uint16_t a) {
    mct_act_t act;
    mct_act_decode(m, a, &act);
    int32_t *g = (int32_t *)mct_act_grad(m, &act);
    const int32_t d = bitlen64(max_abs(g, act.size)) - BOUND_BITS;
    if (d > 0) {
        shift_round_all(g, act.size, d);
        mct_gexp(m)[a] = (int16_t)(mct_gexp(m)[a] + d);
    }
}


/* Loss: p_i = t_i / S with t the exp table in Q24 (from the float bits), G_i = round(2^30 t_i / S)
 * minus 2^30 at the label; exponent -30. The loss value itself (reported only) is float. */
float mct_softmax_xent_int(mct_model_t *m, const int32_t *logits, uint32_t n, uint32_t label, float out_scale,
    const float *exp_table, int32_t *g, uint16_t out_act) {
    const int32_t mx = mct_logits_max(logits, n, NULL);
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        int32_t mant, e;
        mct_f32_split(mct_exp_neg(exp_table, (uint32_t)mx - (uint32_t)logits[i]), &mant, &e);
        const uint64_t q = (uint64_t)mct_shift_round(mant < 0 ? 0 : mant, -(e + 24));
        g[i] = (int32_t)(q > (1u << 24) ? (1u << 24) : q);
        total += (uint32_t)g[i];
    }
    for (uint32_t i = 0; i < n && total; i++) {
        g[i] = (int32_t)((((uint64_t)g[i] << 30) + total / 2) / total);
    }
    g[label] -= 1 << 30;
    mct_gexp(m)[out_act] = -30;
    return mct_logf((float)total * (1.0f / 16777216.0f)) + out_scale * (float)((uint32_t)mx - (uint32_t)logits[label]);
}

/* Step of a trained element in 1/256 of an integer step: R * x * 2^-sh (|R x| < 2^63), clamped
 * to 2^38 (a left shift that would pass it saturates). */
static int64_t step_q8(int64_t r, int32_t x, int32_t sh) {
    const int64_t v = r * x;
    if (sh < 0 && v != 0 && bitlen64(abs64(v)) - sh > 39) {
        return v < 0 ? -STEP_Q8_LIMIT : STEP_Q8_LIMIT;
    }
    const int64_t s = mct_shift_round(v, sh);
    return s > STEP_Q8_LIMIT ? STEP_Q8_LIMIT : (s < -STEP_Q8_LIMIT ? -STEP_Q8_LIMIT : s);
}

/* A per-channel factor c * 2^(e_t + 8) (T units to 1/256 of a step) as mant(c) * 2^-sh, split once
 * per channel; ok = 0 when c is not finite (the channel is skipped). */
typedef struct {
    int ok;
    int32_t mc, sh;
} factor_t;

static factor_t split_factor(float c, int32_t e_t) {
    factor_t f = { mct_isfinite(c), 0, 0 };
    if (f.ok) {
        int32_t ec;
        mct_f32_split(c, &f.mc, &ec);
        f.sh = -(ec + e_t + 8);
    }
    return f;
}

/* The factor applied to a sum S as (R, sh), R = S' * mant(c) < 2^62 with S' = S shifted below
 * 2^sum_bits_max, and the step = R * x * 2^-sh. */
static int64_t factor_r(const factor_t *f, int64_t sum, int32_t sum_bits_max, int32_t *sh) {
    /* keep R * x within 2^62: |x| < 2^9 (x - x_zero of int8, or 1), |mant| < 2^24 */
    const int32_t bits = bitlen64(abs64(sum));
    const int32_t d = bits > sum_bits_max ? bits - sum_bits_max : 0;
    *sh = f->sh - d;
    return mct_shift_round(sum, d) * f->mc;
}

static int channel_factor(float c, int64_t sum, int32_t sum_bits_max, int32_t e_t, int64_t *r, int32_t *sh) {
    const factor_t f = split_factor(c, e_t);
    if (f.ok) {
        *r = factor_r(&f, sum, sum_bits_max, sh);
    }
    return f.ok;
}

/* Biases of a conv/FC channel o from S = sum of its T (exponent e_t). */
static void bias_update(mct_model_t *m, const mct_op_t *op, uint32_t o, int64_t sum, int32_t e_t, float lr,
    float ws) {
    int64_t r;
    int32_t sh;
    int32_t *b = (int32_t *)mct_tensor(m, op->bias);
    /* g = T 2^e_t / ws: QAS step lr g / (ws x_s), else lr g ws x_s */
    const float c = m->qas ? ((lr / ws) / ws) / op->in0_scale : lr * op->in0_scale;
    const int ok = channel_factor(c, sum, 38, e_t, &r, &sh);
    b[o] = mct_apply_step_q8(m, b[o], mct_shadow(m, op->bias), o, ok ? step_q8(r, 1, sh) : 0, ok,
        -MCT_BIAS_LIMIT, MCT_BIAS_LIMIT, &m->skipped_updates);
}

/* The weight factor of channel o: g = T 2^e_t / ws, QAS step lr g x_s (x - x_zero) / ws. */
static float weight_factor(const mct_model_t *m, const mct_op_t *op, float lr, float ws) {
    return m->qas ? ((lr * op->in0_scale) / ws) / ws : lr * op->in0_scale;
}

/* Contributions of a conv/FC: T = G * ws in a common exponent with |T| < 2^(29 - bitlen(127 n)).
 * Returns e_t; writes T over G (n_out channels of hw values). */
static int32_t weighted_contributions(mct_model_t *m, const mct_op_t *op, int32_t *g, uint32_t n_out,
    uint32_t hw, uint32_t n_terms, int32_t e_g, uint16_t gin_act, int has_gin) {
    const float *ws = (const float *)mct_tensor(m, op->wscale);
    int32_t top = -100000;
    for (uint32_t o = 0; o < n_out; o++) {
        int32_t mw, ew;
        mct_f32_split(ws[o], &mw, &ew);
        const uint64_t mx = max_abs(g + (size_t)o * hw, hw);
        if (mx) {
            const int32_t l = bitlen64(mx * (uint64_t)mw) + ew;
            top = l > top ? l : top;
        }
    }
    const int32_t bound = BOUND_BITS - bitlen64(127ull * n_terms);
    int32_t e_t = top == -100000 ? e_g : top + e_g - bound;
    if (has_gin) {
        e_t = align_grad(m, gin_act, e_t);
    }
    for (uint32_t o = 0; o < n_out; o++) {
        int32_t mw, ew;
        mct_f32_split(ws[o], &mw, &ew);
        int32_t *go = g + (size_t)o * hw;
        const int32_t s = e_t - e_g - ew;
        if (s < 1 || s > 62) {
            for (uint32_t p = 0; p < hw; p++) {
                go[p] = (int32_t)mct_shift_round((int64_t)go[p] * mw, s);
            }
            continue;
        }
        /* mct_shift_round's right shift inlined (the usual case: a step per element): |G mw| < 2^55; from
         * s = 32 on (the usual s), a 32-bit shift of the high word after the rounding term's carry */
        const int64_t half = (int64_t)1 << (s - 1);
        if (s >= 32) {
            for (uint32_t p = 0; p < hw; p++) {
                go[p] = (int32_t)((mct_mul64(go[p], mw) + half) >> 32) >> (s - 32);
            }
            continue;
        }
        for (uint32_t p = 0; p < hw; p++) {
            go[p] = (int32_t)((mct_mul64(go[p], mw) + half) >> s);
        }
    }
    return e_t;
}

static void mask_i32(uint32_t n, const uint8_t *mask, int32_t *g) {
    for (uint32_t i = 0; i < n && mask != NULL; i += 8) {     /* none: the model output, never clamped */
        const uint32_t bits = mask[i >> 3];
        if (bits == 0xFFu) {               /* eight unclamped outputs: the usual byte */
            continue;
        }
        for (uint32_t j = 0; j < 8 && i + j < n; j++) {
            if (!(bits & (1u << j))) {
                g[i + j] = 0;
            }
        }
    }
}

/* Unweighted contributions (add, pools): T = round(G 2^k / div), with k from the bound
 * |sum of n_terms T| < 2^29, aligned with gin. Returns k (T's exponent is e_g - k). */
static int32_t plain_shift(mct_model_t *m, uint16_t gin_act, const int32_t *g, uint32_t n, int32_t e_g,
    uint32_t div, uint32_t n_terms) {
    const uint64_t mx = max_abs(g, n);
    int32_t k = 28 - bitlen64(mx) + bitlen64(div) - bitlen64(n_terms);
    const int32_t e_t = align_grad(m, gin_act, mx ? e_g - k : (mct_gexp(m)[gin_act] == GEXP_UNSET ? e_g : mct_gexp(m)[gin_act]));
    return e_g - e_t;
}

static int32_t plain_value(int32_t g, int32_t k, uint32_t div) {
    int64_t v = mct_shift_round(g, -k);
    if (div > 1) {
        const uint64_t a = (abs64(v) + div / 2) / div;
        v = v < 0 ? -(int64_t)a : (int64_t)a;
    }
    return (int32_t)v;
}

/* The step of a weight from its sum S (T units; f: its channel's factor, f->ok). */
static int64_t weight_step(const factor_t *f, int64_t sum) {
    if (sum > -((int64_t)1 << 38) && sum < ((int64_t)1 << 38) && f->sh >= 1 && f->sh <= 62) {
        /* the usual case, step_q8(factor_r(...)) without its branches: S needs no shift (d = 0), R = S mant(c)
         * and the step R 2^-sh rounded half up, clamped to 2^38 */
        const int64_t r = sum >= INT32_MIN && sum <= INT32_MAX ? mct_mul64((int32_t)sum, f->mc) : sum * f->mc;
        const int64_t v = r + ((int64_t)1 << (f->sh - 1));
        if (f->sh >= 32) {      /* |step| < 2^30: from the high word (no 64-bit shift: a call on ARMv6-M) */
            return (int32_t)(v >> 32) >> (f->sh - 32);
        }
        const int64_t step = v >> f->sh;
        return step > STEP_Q8_LIMIT ? STEP_Q8_LIMIT : (step < -STEP_Q8_LIMIT ? -STEP_Q8_LIMIT : step);
    }
    int32_t sh;
    const int64_t r = factor_r(f, sum, 38, &sh);
    return step_q8(r, 1, sh);
}

/* Weight element i of output channel o from its sum S (T units; f: the channel's factor). */
static void weight_update(mct_model_t *m, int8_t *wo, void *shadow, uint32_t o, uint32_t row_len, uint32_t i,
    int64_t sum, const factor_t *f) {
    wo[i] = (int8_t)mct_apply_step_q8(m, wo[i], shadow, o * row_len + i, f->ok ? weight_step(f, sum) : 0, f->ok,
        -127, 127, &m->skipped_updates);
}

/* Pointwise weight sums go through the stack this many input channels at a time. */
#define PW_SUMS 32u

static void conv_backward(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in,
    const mct_act_t *out, int32_t *g, float lr) {
    const uint32_t hw = (uint32_t)out->h * out->w, in_hw = (uint32_t)in->h * in->w;
    const uint32_t cpg = in->c / op->groups, opg = out->c / op->groups;
    const uint32_t row_len = cpg * op->kh * op->kw;
    const mct_rows_t w = mct_weight_rows(m, op->weight, row_len);
    const int train_bias = mct_tensor_trained(m, op->bias);
    /* a depthwise conv the plan runs in place: input channel o overwrites output channel o-1 (its
     * T row, consumed by then); it is the input's only writer */
    const int inplace = mct_in_place(m, k, op, in, out);
    int32_t *gin = inplace ? (int32_t *)mct_act_grad(m, in) : (int32_t *)mct_input_grad(m, k, op->in0);
    if (inplace) {
        mct_gexp(m)[op->in0] = GEXP_UNSET;
    }
    const int32_t e_g = mct_gexp(m)[op->out];
    const uint32_t n_terms = opg * op->kh * op->kw;
    const int32_t e_t = weighted_contributions(m, op, g, out->c, hw, n_terms, e_g, op->in0, gin != NULL);
    const int32_t t_bits = BOUND_BITS - bitlen64(127ull * n_terms);      /* |T| <= 2^t_bits */
    const int pointwise = mct_pointwise_op(op) && op->groups == 1 && !inplace;
    const float *ws = (const float *)mct_tensor(m, op->wscale);
    const int8_t *x = mct_act_data(m, in);
    void *shadow = mct_shadow(m, op->weight);
    if (pointwise && gin != NULL) {     /* every input gradient first, from the weights before their update */
        mct_pw_input_grad_int(hw, in->c, out->c, &w, t_bits, g, gin);
    }
    for (uint32_t o = 0; o < out->c; o++) {
        int32_t *t = g + (size_t)o * hw;
        int64_t t_sum = 0;
        for (uint32_t p = 0; (train_bias || (pointwise && o < w.n_sram)) && p < hw; p++) {
            t_sum += t[p];
        }
        if (train_bias) {
            bias_update(m, op, o, t_sum, e_t, lr, ws[o]);
        }
        const uint32_t c0 = (o / opg) * cpg;
        const int8_t *wr = mct_row(&w, o);
        if (inplace) {
            memset(gin + (size_t)o * in_hw, 0, 4u * in_hw);
        }
        for (uint32_t c = 0; gin != NULL && !pointwise && c < cpg; c++) {
            mct_channel_input_grad_int(op, in, out, wr + (size_t)c * op->kh * op->kw, t,
                gin + (size_t)(c0 + c) * in_hw);
        }
        if (o >= w.n_sram) {
            continue;
        }
        /* weights of channel o: S = sum over positions of T (x - x_zero) at each tap */
        const factor_t f = split_factor(weight_factor(m, op, lr, ws[o]), e_t);
        int8_t *wo = w.sram + (size_t)o * row_len;
        const int8_t *xg = x + c0;             /* channels last */
        if (pointwise) {
            int64_t sums[PW_SUMS];
            for (uint32_t j0 = 0; j0 < cpg; j0 += PW_SUMS) {
                const uint32_t n = cpg - j0 < PW_SUMS ? cpg - j0 : PW_SUMS;
                mct_pw_weight_sums_int(hw, n, xg + j0, in->c, op->in0_zero, t, t_sum, t_bits, sums);
                for (uint32_t j = 0; j < n && !f.ok; j++) {
                    weight_update(m, wo, shadow, o, row_len, j0 + j, sums[j], &f);      /* skipped, counted */
                }
                for (uint32_t j = 0; j < n && f.ok; j++) {
                    sums[j] = weight_step(&f, sums[j]);
                }
                if (f.ok) {
                    mct_apply_steps_q8_s8(m, wo + j0, shadow, o * row_len + j0, n, sums);
                }
            }
            continue;
        }
        for (uint32_t ci = 0, i = 0; ci < cpg; ci++) {
            for (int32_t ky = 0; ky < op->kh; ky++) {
                for (int32_t kx = 0; kx < op->kw; kx++, i++) {
                    weight_update(m, wo, shadow, o, row_len, i,
                        mct_tap_sum_int(op, in, out, xg + ci, op->in0_zero, t, t_bits, ky, kx), &f);
                }
            }
        }
    }
    if (gin != NULL) {
        normalize_grad(m, op->in0);
    }
}

static void fc_backward(mct_model_t *m, uint16_t k, const mct_op_t *op, const mct_act_t *in,
    const mct_act_t *out, int32_t *g, float lr) {
    const mct_rows_t w = mct_weight_rows(m, op->weight, in->size);
    int32_t *gin = (int32_t *)mct_input_grad(m, k, op->in0);
    const int32_t e_g = mct_gexp(m)[op->out];
    const int32_t e_t = weighted_contributions(m, op, g, out->size, 1, out->size, e_g, op->in0, gin != NULL);
    const float *ws = (const float *)mct_tensor(m, op->wscale);
    if (gin != NULL) {
        for (uint32_t o = 0; o < out->size; o++) {
            const int8_t *wr = mct_row(&w, o);
            for (uint32_t i = 0; i < in->size; i++) {
                gin[i] += wr[i] * g[o];
            }
        }
        normalize_grad(m, op->in0);
    }
    const int8_t *x = mct_act_data(m, in);
    void *shadow = mct_shadow(m, op->weight);
    for (uint32_t o = 0; o < w.n_sram; o++) {
        int64_t r = 0;
        int32_t sh = 0;
        /* R * (x - x_zero) < 2^63: T' < 2^30, mant < 2^24, |x - x_zero| < 2^8 */
        const int ok = channel_factor(weight_factor(m, op, lr, ws[o]), g[o], 30, e_t, &r, &sh);
        int8_t *wo = w.sram + (size_t)o * in->size;
        const uint32_t hw = in->size / in->c;
        for (uint32_t ch = 0, i = 0; ch < in->c; ch++) {       /* flatten order (c, pixel); x channels last */
            for (uint32_t p = 0; p < hw; p++, i++) {
                wo[i] = (int8_t)mct_apply_step_q8(m, wo[i], shadow, o * in->size + i,
                    ok ? step_q8(r, x[(size_t)p * in->c + ch] - op->in0_zero, sh) : 0, ok, -127, 127,
                    &m->skipped_updates);
            }
        }
    }
    if (mct_tensor_trained(m, op->bias)) {
        for (uint32_t o = 0; o < out->size; o++) {
            bias_update(m, op, o, g[o], e_t, lr, ws[o]);
        }
    }
}

int mct_backward_op_int(mct_model_t *m, uint16_t k, const mct_op_t *op, float lr) {
    mct_act_t in, out;
    mct_act_decode(m, op->out, &out);
    mct_act_decode(m, op->in0, &in);
    int32_t *g = (int32_t *)mct_act_grad(m, &out);
    const int32_t e_g = mct_gexp(m)[op->out];
    if (op->type == MCT_OP_AVGPOOL || op->type == MCT_OP_AVGPOOL2D || op->type == MCT_OP_MAXPOOL2D) {
        int32_t *gin = (int32_t *)mct_input_grad(m, k, op->in0);
        if (gin == NULL) {
            return MCT_OK;
        }
        const uint32_t kk = (uint32_t)op->kh * op->kw;
        if (op->type == MCT_OP_AVGPOOL) {
            const uint32_t hw = (uint32_t)in.h * in.w;
            const int32_t sh = plain_shift(m, op->in0, g, out.size, e_g, hw, 1);
            for (uint32_t c = 0; c < in.c; c++) {
                const int32_t v = plain_value(g[c], sh, hw);
                for (uint32_t i = 0; i < hw; i++) {
                    gin[c * hw + i] += v;
                }
            }
        } else {
            const int avg = op->type == MCT_OP_AVGPOOL2D;
            const int32_t sh = plain_shift(m, op->in0, g, out.size, e_g, avg ? kk : 1, kk);
            const int8_t *x = mct_act_data(m, &in);
            for (uint32_t c = 0; c < out.c; c++) {
                const int8_t *xc = x + c;      /* channels last */
                int32_t *gc = gin + (size_t)c * in.h * in.w;
                for (uint32_t oy = 0; oy < out.h; oy++) {
                    for (uint32_t ox = 0; ox < out.w; ox++) {
                        const int32_t v = plain_value(g[((size_t)c * out.h + oy) * out.w + ox], sh, avg ? kk : 1);
                        int32_t best = -129, at = -1;
                        for (int32_t ky = 0; ky < op->kh; ky++) {
                            const int32_t iy = (int32_t)(oy * op->sh) - op->ph + ky;
                            for (int32_t kx = 0; kx < op->kw && iy >= 0 && iy < in.h; kx++) {
                                const int32_t ix = (int32_t)(ox * op->sw) - op->pw + kx;
                                if (ix < 0 || ix >= in.w) {
                                    continue;
                                }
                                if (avg) {
                                    gc[iy * in.w + ix] += v;
                                } else if (xc[(size_t)(iy * in.w + ix) * in.c] > best) {
                                    best = xc[(size_t)(iy * in.w + ix) * in.c];
                                    at = iy * in.w + ix;
                                }
                            }
                        }
                        if (!avg && at >= 0) {
                            gc[at] += v;
                        }
                    }
                }
            }
        }
        normalize_grad(m, op->in0);
        return MCT_OK;
    }
    if (op->type == MCT_OP_LUT) {
        return mct_backward_lut_int(m, k, op, &in, g);
    }
    if (op->type == MCT_OP_CONCAT) {
        return mct_backward_concat_int(m, k, op, g);
    }
    mask_i32(out.size, mct_act_mask(m, &out), g);
    if (op->type == MCT_OP_MUL) {
        return mct_backward_mul_int(m, k, op, &in, g);
    }
    if (op->type == MCT_OP_ADD) {
        const uint16_t ins[2] = { op->in0, op->in1 };
        for (int j = 0; j < 2; j++) {
            int32_t *gi = (int32_t *)mct_input_grad(m, k, ins[j]);
            if (gi != NULL) {
                mct_add_plain_grad(m, ins[j], g, out.size, e_g, gi);
            }
        }
        return MCT_OK;
    }
    if (op->type == MCT_OP_CONV2D) {
        conv_backward(m, k, op, &in, &out, g, lr);
    } else {
        fc_backward(m, k, op, &in, &out, g, lr);
    }
    return MCT_OK;
}

/* For the other ops' integer backward files (mct_backward_lut.c). */
int32_t mct_align_grad(mct_model_t *m, uint16_t a, int32_t e_t) {
    return align_grad(m, a, e_t);
}
void mct_normalize_grad(mct_model_t *m, uint16_t a) {
    normalize_grad(m, a);
}
int32_t mct_bitlen64(uint64_t v) {
    return bitlen64(v);
}

/* gin (activation a's gradient) += the n values of g (exponent e_g), unweighted, then renormalized:
 * the add's contribution to each input, and each slice of a concatenation's (mct_backward_concat.c). */
void mct_add_plain_grad(mct_model_t *m, uint16_t a, const int32_t *g, uint32_t n, int32_t e_g, int32_t *gin) {
    const int32_t sh = plain_shift(m, a, g, n, e_g, 1, 1);
    for (uint32_t i = 0; i < n; i++) {
        gin[i] += plain_value(g[i], sh, 1);
    }
    normalize_grad(m, a);
}

/* gin (activation a's gradient) += g[i] * w(i) for i < n, w a float32 weight (a lookup table's
 * derivative, a gate): P = G * mant(w) (exponent e_g + exp(w), exact in 64 bits); the contributions
 * T are P in one exponent e_t with |T| < 2^28, aligned with gin, added, then gin is renormalized. */
void mct_weighted_grad_int(mct_model_t *m, uint16_t a, const int32_t *g, uint32_t n, int32_t e_g,
    float (*w)(const void *ctx, uint32_t i), const void *ctx, int32_t *gin) {
    int32_t top = INT32_MIN;
    for (uint32_t i = 0; i < n; i++) {
        int32_t mant, e;
        mct_f32_split(w(ctx, i), &mant, &e);
        const int64_t p = (int64_t)g[i] * mant;
        if (p != 0) {
            const int32_t l = bitlen64(abs64(p)) + e;
            top = l > top ? l : top;
        }
    }
    const int16_t have = mct_gexp(m)[a];
    const int32_t e_t = align_grad(m, a, top != INT32_MIN ? top + e_g - 28 : (have == GEXP_UNSET ? e_g : have));
    for (uint32_t i = 0; i < n; i++) {
        int32_t mant, e;
        mct_f32_split(w(ctx, i), &mant, &e);
        gin[i] += (int32_t)mct_shift_round((int64_t)g[i] * mant, e_t - e_g - e);
    }
    normalize_grad(m, a);
}
