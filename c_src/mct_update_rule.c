/* How an update step (a float32, in integer units of the trained tensor) reaches the integer the
 * forward reads: the update rule of header byte 50, chosen per model file at convert time.
 *
 *  master      float32 shadow per element: master -= step, int = round(master)      (+4 B/element)
 *  frac8       int8 shadow: the fraction of a step in 1/256, v = int*256 + frac;
 *              v -= round(step*256), int = round(v/256)                             (+1 B/element)
 *  stochastic  no shadow: int -= floor(step) + (u < frac(step)), u from a counter-based PRNG
 *  nearest     no shadow: int -= round(step) (steps below half an integer step are lost)
 *
 * host_tools/reference/oracle.py (update_rule section) repeats every operation, bit for bit. */
#include "mct_backward_pw_f32.h"
#include "mct_requant.h"     /* MCT_HOT */
#include "mct_mla_f32.h"      /* MCT_FPU_VRINT */

/* Largest step applied at once by the shadow-less rules and frac8 (in integer steps; in 1/256 for
 * frac8): enough to move any int8 weight across its range, and a float->int32 conversion that
 * cannot overflow. */
#define STEP_LIMIT 1073741824.0f

/* Round half away from zero, then clamp: trunc(x + copysign(0.5, x)). */
int32_t mct_round_clamp(float x, float lo, float hi) {
    float r = x + (x >= 0.0f ? 0.5f : -0.5f);
    if (r < lo) {
        r = lo;
    } else if (r > hi) {
        r = hi;
    }
    return (int32_t)r;
}

/* The i-th number of the model's stream: a Weyl sequence through a 32-bit avalanche mix
 * (lowbias32). Counter-based, so the host reference draws a whole tensor's numbers at once. */
MCT_HOT uint32_t rng_at(uint32_t seed, uint32_t i) {
    uint32_t z = seed + i * 0x9E3779B9u;
    z ^= z >> 16;
    z *= 0x7feb352du;
    z ^= z >> 15;
    z *= 0x846ca68bu;
    z ^= z >> 16;
    return z;
}

uint32_t mct_rng_at(uint32_t seed, uint32_t i) {
    return rng_at(seed, i);
}

/* floor(x) + (u < x - floor(x)), u uniform in [0, 1) with 24 bits: E[result] = x (|x| <= STEP_LIMIT). */
MCT_HOT int32_t round_randomly(float x, uint32_t r) {
    int32_t t = (int32_t)x;
    if ((float)t > x) {
        t -= 1;
    }
    const float frac = x - (float)t;
    const float u = (float)(r >> 8) * 5.9604644775390625e-08f;     /* 2^-24 */
    return t + (u < frac ? 1 : 0);
}

#ifdef MCT_FPU_VRINT
/* round_randomly with FPv5's rounding instructions (VRINTM, VRINTP): floorf(x) is the float of t
 * above, so frac is the same; u < frac is (r >> 8) < frac * 2^24 (both sides scaled by 2^24, exactly),
 * which for an integer left side is (r >> 8) < ceil(frac * 2^24). The same result, no compares in
 * the FPU's flags. */
static inline int32_t round_randomly_vrint(float x, uint32_t r) {
    const float fl = __builtin_floorf(x);
    const float frac = x - fl;
    return (int32_t)fl + ((r >> 8) < (uint32_t)(int32_t)__builtin_ceilf(frac * 16777216.0f) ? 1 : 0);
}
#define ROUND_RANDOMLY round_randomly_vrint
#else
#define ROUND_RANDOMLY round_randomly
#endif

MCT_HOT int32_t stochastic_round(float x, uint32_t r) {
    if (x < -STEP_LIMIT) {
        x = -STEP_LIMIT;
    } else if (x > STEP_LIMIT) {
        x = STEP_LIMIT;
    }
    return round_randomly(x, r);
}

static int32_t clamp64(int64_t v, int32_t lo, int32_t hi) {
    return v < lo ? lo : (v > hi ? hi : (int32_t)v);
}

/* The new value of element i (now w, bounds [lo, hi]) after `step`; *skipped counts a step that
 * is not finite (or, for master, whose result is not): the element is then left as it was. */
int32_t mct_apply_step(mct_model_t *m, int32_t w, void *shadow, uint32_t i, float step, int32_t lo,
    int32_t hi, uint32_t *skipped) {
    const uint8_t rule = m->train_flags & MCT_TRAIN_RULE_MASK;
    if (rule == MCT_RULE_MASTER) {
        float *master = (float *)shadow + i;
        const float v = *master - step;
        if (!mct_isfinite(v)) {
            (*skipped)++;
            return w;
        }
        *master = v;
        return mct_round_clamp(v, (float)lo, (float)hi);
    }
    /* stochastic: one number per element update, drawn even when the step is then skipped */
    const uint32_t r = rule == MCT_RULE_STOCHASTIC ? mct_rng_at(m->rng_seed, m->rng_counter++) : 0;
    if (!mct_isfinite(step)) {
        (*skipped)++;
        return w;
    }
    if (rule == MCT_RULE_FRAC8) {
        int8_t *frac = (int8_t *)shadow + i;
        const int32_t s = mct_round_clamp(step * 256.0f, -STEP_LIMIT, STEP_LIMIT);
        int64_t v = (int64_t)w * 256 + *frac - s;
        const int64_t vlo = (int64_t)lo * 256 - 128, vhi = (int64_t)hi * 256 + 127;
        v = v < vlo ? vlo : (v > vhi ? vhi : v);
        /* arithmetic shift: floor((v + 128) / 256), the nearest integer (ties up) */
        const int32_t nw = (int32_t)((v + 128) >> 8);
        *frac = (int8_t)(v - (int64_t)nw * 256);
        return nw;
    }
    const int32_t k = rule == MCT_RULE_STOCHASTIC ? stochastic_round(step, r)
                                                  : mct_round_clamp(step, -STEP_LIMIT, STEP_LIMIT);
    return clamp64((int64_t)w - k, lo, hi);
}

/* The stochastic rule's steps of n int8 elements in a row (mct_apply_steps_s8; qas a constant where
 * inlined with one). One number per element, drawn even when its step is skipped. A step of 256 or
 * more either way takes the element to its bound, as mct_apply_step's would: one comparison
 * finds those, and the steps that are not finite, at once. */
MCT_HOT uint32_t stochastic_steps_s8(mct_model_t *m, int8_t *w, uint32_t n, const float *total, float lr,
    float x_scale, float ws, int qas) {
    const uint32_t seed = m->rng_seed;
    uint32_t at = m->rng_counter, skipped = 0;
    for (uint32_t j = 0; j < n; j++, at++) {
        float step = (lr * total[j]) * x_scale;
        step = qas ? step / ws : step * ws;
        if (!(__builtin_fabsf(step) < 256.0f)) {         /* NaN too */
            if (!mct_isfinite(step)) {
                skipped++;
            } else {
                w[j] = step > 0.0f ? -127 : 127;
            }
            continue;
        }
        const int32_t v = (int32_t)w[j] - ROUND_RANDOMLY(step, rng_at(seed, at));
        w[j] = (int8_t)(v < -127 ? -127 : (v > 127 ? 127 : v));
    }
    m->rng_counter = at;
    return skipped;
}

/* Steps of n int8 elements in a row, w[j] (element i0 + j of the tensor), lo = -127, hi = 127: step j
 * is (lr * total[j]) * x_scale, then divided by ws (qas) or multiplied by it; each element as
 * mct_apply_step would update it, in order, the rule looked up once. Returns the updates skipped. */
uint32_t mct_apply_steps_s8(mct_model_t *m, int8_t *w, void *shadow, uint32_t i0, uint32_t n, const float *total,
    float lr, float x_scale, float ws, int qas) {
    if ((m->train_flags & MCT_TRAIN_RULE_MASK) == MCT_RULE_STOCHASTIC) {
        return qas ? stochastic_steps_s8(m, w, n, total, lr, x_scale, ws, 1)
                   : stochastic_steps_s8(m, w, n, total, lr, x_scale, ws, 0);
    }
    uint32_t skipped = 0;
    for (uint32_t j = 0; j < n; j++) {
        float step = (lr * total[j]) * x_scale;
        step = qas ? step / ws : step * ws;
        w[j] = (int8_t)mct_apply_step(m, w[j], shadow, i0 + j, step, -127, 127, &skipped);
    }
    return skipped;
}

/* Bytes of the shadow of n trained elements under the model's rule. */
uint64_t mct_shadow_bytes(uint8_t train_flags, uint32_t n) {
    switch (train_flags & MCT_TRAIN_RULE_MASK) {
        case MCT_RULE_MASTER:
            return 4ull * n;
        case MCT_RULE_FRAC8:
            return ((uint64_t)n + 3u) & ~3ull;
        default:
            return 0;
    }
}

/* The shadow starts as the file's values: master = int, fraction = 0. */
void mct_shadow_init(uint8_t train_flags, void *shadow, const void *src, uint8_t dtype, uint32_t n) {
    const uint8_t rule = train_flags & MCT_TRAIN_RULE_MASK;
    if (rule == MCT_RULE_MASTER) {
        float *master = (float *)shadow;
        for (uint32_t i = 0; i < n; i++) {
            master[i] = dtype == MCT_INT8 ? (float)((const int8_t *)src)[i] : (float)((const int32_t *)src)[i];
        }
    } else if (rule == MCT_RULE_FRAC8) {
        memset(shadow, 0, n);
    }
}

/* The next number of the model's stream (stochastic rounding). */
uint32_t mct_rng_draw(mct_model_t *m) {
    return mct_rng_at(m->rng_seed, m->rng_counter++);
}

/* The integer backward's update: a step s in 1/256 of an integer step (|s| <= 2^38). `valid` 0:
 * the step could not be computed (its channel factor is not finite), the element is left as it
 * was and counted. frac8: v -= s; stochastic: w -= floor(s/256) + (8 random bits < s mod 256);
 * nearest: w -= floor((s + 128) / 256). The master rule is not used with the integer backward. */
MCT_HOT int32_t step_q8_rule(uint8_t rule, uint32_t r, int32_t w, int8_t *frac, int64_t s, int32_t lo, int32_t hi) {
    if (rule == MCT_RULE_FRAC8) {
        int64_t v = (int64_t)w * 256 + *frac - s;
        const int64_t vlo = (int64_t)lo * 256 - 128, vhi = (int64_t)hi * 256 + 127;
        v = v < vlo ? vlo : (v > vhi ? vhi : v);
        const int32_t nw = (int32_t)((v + 128) >> 8);
        *frac = (int8_t)(v - (int64_t)nw * 256);
        return nw;
    }
    const int64_t whole = s >> 8;           /* floor: arithmetic shift */
    int64_t k;
    if (rule == MCT_RULE_STOCHASTIC) {
        k = whole + ((int64_t)(r >> 24) < s - whole * 256 ? 1 : 0);
    } else {
        k = (s + 128) >> 8;
    }
    const int64_t v = (int64_t)w - k;
    return v < lo ? lo : (v > hi ? hi : (int32_t)v);
}

int32_t mct_apply_step_q8(mct_model_t *m, int32_t w, void *shadow, uint32_t i, int64_t s, int valid,
    int32_t lo, int32_t hi, uint32_t *skipped) {
    const uint8_t rule = m->train_flags & MCT_TRAIN_RULE_MASK;
    const uint32_t r = rule == MCT_RULE_STOCHASTIC ? mct_rng_draw(m) : 0;
    if (!valid) {
        (*skipped)++;
        return w;
    }
    return step_q8_rule(rule, r, w, rule == MCT_RULE_FRAC8 ? (int8_t *)shadow + i : NULL, s, lo, hi);
}

void mct_apply_steps_q8_s8(mct_model_t *m, int8_t *w, void *shadow, uint32_t i0, uint32_t n, const int64_t *s) {
    const uint8_t rule = m->train_flags & MCT_TRAIN_RULE_MASK;
    int8_t *frac = rule == MCT_RULE_FRAC8 ? (int8_t *)shadow + i0 : NULL;
    for (uint32_t j = 0; j < n; j++) {
        const uint32_t r = rule == MCT_RULE_STOCHASTIC ? mct_rng_draw(m) : 0;
        w[j] = (int8_t)step_q8_rule(rule, r, w[j], frac != NULL ? frac + j : NULL, s[j], -127, 127);
    }
}
