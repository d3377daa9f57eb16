/* The one transcendental function the core needs (for reporting the loss), without libm. */
#include "mct_internal.h"

/* Natural log for x > 0: x = m * 2^e with m in [sqrt(1/2), sqrt(2)), log m from the atanh series
 * 2(t + t^3/3 + t^5/5 + t^7/7 + t^9/9), t = (m-1)/(m+1), |t| < 0.172: error below 1e-7 relative. */
float mct_logf(float x) {
    if (!(x > 0.0f)) {
        /* log(0) = -inf, log(negative or NaN) = NaN, as the reference's np.log: the softmax sum is
         * never below 1 with a sound table, and a loss that is not finite skips the step */
        const uint32_t u = x == 0.0f ? 0xff800000u : 0x7fc00000u;
        float r;
        memcpy(&r, &u, 4);
        return r;
    }
    if (!mct_isfinite(x)) {
        return x;
    }
    uint32_t u;
    memcpy(&u, &x, 4);
    int32_t e = (int32_t)((u >> 23) & 0xff);
    if (e == 0) {
        /* subnormal: scale up by 2^23 first */
        x *= 8388608.0f;
        memcpy(&u, &x, 4);
        e = (int32_t)((u >> 23) & 0xff) - 23;
    }
    e -= 127;
    u = (u & 0x007fffffu) | 0x3f800000u;
    float mant;
    memcpy(&mant, &u, 4);
    if (mant > 1.41421356f) {
        mant *= 0.5f;
        e += 1;
    }
    const float t = (mant - 1.0f) / (mant + 1.0f);
    const float t2 = t * t;
    const float series = t * (2.0f + t2 * (0.6666667f + t2 * (0.4f + t2 * (0.2857143f + t2 * 0.2222222f))));
    return series + (float)e * 0.69314718f;
}
