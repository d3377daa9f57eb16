/* Global average pool in the int8 domain: round(mean), ties to even (as the MIT models define it). */
#include "mct_internal.h"

void mct_avgpool_global_s8(uint16_t c, uint32_t hw, const int8_t *x, int8_t *y) {
    for (uint32_t ch = 0; ch < c; ch++) {
        int64_t total = 0;          /* up to 2^31 values of +-128: beyond int32 */
        for (uint32_t i = 0; i < hw; i++) {
            total += x[(size_t)ch * hw + i];
        }
        /* floor division, then round half to even on the remainder */
        int64_t q = total / (int64_t)hw;
        int64_t r = total - q * (int64_t)hw;
        if (r < 0) {
            q -= 1;
            r += hw;
        }
        if (2 * r > (int64_t)hw || (2 * r == (int64_t)hw && (q & 1))) {
            q += 1;
        }
        y[ch] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
    }
}
