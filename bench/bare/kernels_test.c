/* The channels-last kernels on a bare-metal Cortex-M (tests/test_kernels_hwc.py): reads the cases of
 * `cases.bin` one by one, runs each kernel, appends its output to `out.bin`. A case is 26 int32 (kind
 * 0 pointwise, 1 depthwise, 2 conv; the geometry's 20 fields, windows included; x_zero, y_zero, act_min,
 * act_max; the input's bytes), then bias, mult, shift (int32 [out_c]), the input and the weights (int8,
 * each padded to 4 bytes). */
#include <string.h>
#include "bare.h"
#include "mct_kernels_hwc.h"

#define ARENA 200000u
static int32_t arena[ARENA / 4];

int main(void) {
    int in, out;
    if (bare_open_cases(&in, &out) != 0) {
        return 1;
    }
    int32_t h[26];
    while (bare_read(in, h, sizeof h) == sizeof h) {
        const mct_hwc_geom_t g = { (uint32_t)h[1], (uint32_t)h[2], (uint32_t)h[3], (uint32_t)h[4], (uint32_t)h[5],
            (uint32_t)h[6], (uint32_t)h[7], (uint32_t)h[8], (uint32_t)h[9], (uint32_t)h[10], (uint32_t)h[11],
            (uint32_t)h[12], (uint32_t)h[13], (uint32_t)h[14], (uint32_t)h[15], (uint32_t)h[16], (uint32_t)h[17],
            (uint32_t)h[18], (uint32_t)h[19], (uint32_t)h[20] };
        const uint32_t nx = (uint32_t)h[25], ny = g.out_h * g.out_w * g.out_c;
        const uint32_t nw = h[0] == 1 ? g.kh * g.kw * g.in_c : g.out_c * g.kh * g.kw * g.in_c;
        const uint32_t need = 12 * g.out_c + bare_pad4(nx) + bare_pad4(nw) + ny;
        if (need > ARENA) {
            bare_puts("kernels_test: a case larger than the arena\n");
            return 1;
        }
        int32_t *bias = arena, *mult = bias + g.out_c, *shift = mult + g.out_c;
        int8_t *x = (int8_t *)(shift + g.out_c), *w = x + bare_pad4(nx), *y = w + bare_pad4(nw);
        if (bare_read(in, arena, 12 * g.out_c + bare_pad4(nx) + bare_pad4(nw)) != 12 * g.out_c + bare_pad4(nx) + bare_pad4(nw)) {
            bare_puts("kernels_test: cases.bin ends inside a case\n");
            return 1;
        }
        const mct_hwc_quant_t q = { h[21], h[22], h[23], h[24], bias, mult, shift };
        memset(y, 0x5A, ny);
        if (h[0] == 0) {
            mct_pointwise_s8_hwc(x, g.in_h * g.in_w, g.in_c, w, g.out_c, &q, y, g.out_c);
        } else if (h[0] == 1) {
            if (mct_depthwise_s8_hwc(x, &g, w, &q, y) != 0) {
                bare_puts("kernels_test: depthwise kernel too large\n");
                return 1;
            }
        } else if (mct_conv_s8_hwc(x, &g, w, &q, y) != 0) {
            bare_puts("kernels_test: conv column too long\n");
            return 1;
        }
        bare_write(out, y, ny);
    }
    bare_close(out);
    bare_close(in);
    return 0;
}
