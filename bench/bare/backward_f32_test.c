/* The pointwise float backward kernels (c_src/mct_backward_pw_f32.c) on a bare-metal Cortex-M
 * (tests/test_backward_f32_bare.py): with an FPU and MCT_FPU_VMLA their multiply-adds are VMLA.F32,
 * which must give the separately rounded products and sums of the numpy reference, bit for bit.
 * Reads the cases of `cases.bin` one by one, appends each kernel's float output to `out.bin`. A case
 * is 4 int32 (hw, n, zero, kind: 0 input_grad4, 1 weight_grad4, 2 input_grad, 3 weight_grad, 4 and 5
 * input_grad_col2 with and without w_scale), then
 * the weights int8 [4][n] (padded to 4 bytes), x int8 [hw][n] (padded), g float [4][hw], ws float [4],
 * gin float [n][hw] (the sums the input gradients add to). The col2 kinds read the weights as [n][4]
 * (columns 1 and 2; rows below n / 2 "in SRAM", the others "in Flash"), gin as the output channels'
 * gradients [n][hw], w_scale ws[j % 4] for row j, and add into g[0] and g[1]. */
#include "bare.h"
#include "mct_backward_pw_f32.h"

#define ARENA 120000u
static int32_t arena[ARENA / 4];

int main(void) {
    int in, out;
    if (bare_open_cases(&in, &out) != 0) {
        return 1;
    }
    int32_t h[4];
    while (bare_read(in, h, sizeof h) == sizeof h) {
        const uint32_t hw = (uint32_t)h[0], n = (uint32_t)h[1];
        const uint32_t size = bare_pad4(4u * n) + bare_pad4(hw * n) + 4u * (4u * hw + 4u + n * hw) + 4u * (4u * n + 2u * hw);
        if (size > ARENA) {
            bare_puts("backward_f32_test: case too large\n");
            return 1;
        }
        char *at = (char *)arena;
        const uint32_t record = size - 4u * (4u * n + 2u * hw);
        if (bare_read(in, at, record) != record) {
            return 1;
        }
        const int8_t *w = (const int8_t *)at;
        const int8_t *x = w + bare_pad4(4u * n);
        const float *g = (const float *)(x + bare_pad4(hw * n));
        const float *ws = g + 4u * hw;
        float *gin = (float *)(ws + 4);
        float *total = gin + n * hw;
        const int8_t *rows[4] = { w, w + n, w + 2u * n, w + 3u * n };
        switch (h[3]) {
            case 0:
                mct_pw_input_grad4_f32(hw, n, rows, g, ws, gin);
                bare_write(out, gin, 4u * n * hw);
                break;
            case 1:
                mct_pw_weight_grad4_f32(hw, n, x, n, h[2], g, total, n);
                bare_write(out, total, 4u * 4u * n);
                break;
            case 2:
                mct_pw_input_grad_f32(hw, n, w, g, ws[0], gin);
                bare_write(out, gin, 4u * n * hw);
                break;
            case 4:
            case 5: {
                const mct_rows_t wr = { w, w, n / 2u, 4u };
                float *acc = total, *wsn = total + 2u * hw;
                for (uint32_t i = 0; i < 2u * hw; i++) {
                    acc[i] = g[i];
                }
                for (uint32_t j = 0; j < n; j++) {
                    wsn[j] = ws[j % 4u];
                }
                mct_pw_input_grad_col2_f32(hw, &wr, 1, 0, n, gin, h[3] == 4 ? wsn : NULL, acc, acc + hw);
                bare_write(out, acc, 4u * 2u * hw);
                break;
            }
            default:
                mct_pw_weight_grad_f32(hw, n, x, n, h[2], g, total);
                bare_write(out, total, 4u * n);
                break;
        }
    }
    bare_close(out);
    return 0;
}
