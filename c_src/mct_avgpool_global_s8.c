/* Global average pool in the int8 domain: round(mean), ties to even (as the MIT models define it). */
#include "mct_internal.h"

void mct_avgpool_global_s8(uint16_t c, uint32_t hw, const int8_t *x, int8_t *y) {
    for (uint32_t ch = 0; ch < c; ch++) {
        int32_t total = 0;          /* fits: at most 2^24 values per channel (checked on load) */
        for (uint32_t i = 0; i < hw; i++) {
            total += x[(size_t)i * c + ch];     /* channels last */
        }
        /* floor division, then round half to even on the remainder */
        int32_t q = total / (int32_t)hw;
        int32_t r = total - q * (int32_t)hw;
        if (r < 0) {
            q -= 1;
            r += (int32_t)hw;
        }
        if (2 * r > (int32_t)hw || (2 * r == (int32_t)hw && (q & 1))) {
            q += 1;
        }
        y[ch] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
    }
}
