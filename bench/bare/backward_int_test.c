/* The integer backward kernels of pointwise and depthwise convs (c_src/mct_backward_pw_int.c,
 * mct_backward_dw_int.c) on a bare-metal Cortex-M, or on the host with bench/bare/bare_stdio.c
 * (tests/test_backward_int_kernels.py): reads the cases of `cases.bin` one by one, appends each
 * case's input gradient (int32 [in_c][in_h * in_w]) and weight sums (int64 [out_c][row_len]) to
 * `out.bin`. A case is 16 int32 (kind: 0 pointwise, 1 depthwise; in_c, in_h, in_w, out_c, out_h,
 * out_w, kh, kw, sh, sw, ph, pw, x zero point, t_bits, weight rows in SRAM), then the weights int8
 * [out_c][row_len] (padded to 4 bytes), x int8 [in_h][in_w][in_c] (padded), T int32
 * [out_c][out_h * out_w], gin int32 [in_c][in_h * in_w] (what the input gradient adds to). */
#include <string.h>
#include "bare.h"
#include "mct_backward_conv_int.h"

#define ARENA 600000u
static int64_t arena[ARENA / 8];

int main(void) {
    int in, out;
    if (bare_open_cases(&in, &out) != 0) {
        return 1;
    }
    int32_t h[16];
    while (bare_read(in, h, sizeof h) == sizeof h) {
        const int depthwise = h[0] == 1;
        mct_act_t a_in = { (uint16_t)h[1], (uint16_t)h[2], (uint16_t)h[3], 0, 0, 0, 0 };
        mct_act_t a_out = { (uint16_t)h[4], (uint16_t)h[5], (uint16_t)h[6], 0, 0, 0, 0 };
        mct_op_t op;
        memset(&op, 0, sizeof op);
        op.kh = (uint8_t)h[7], op.kw = (uint8_t)h[8], op.sh = (uint8_t)h[9], op.sw = (uint8_t)h[10];
        op.ph = (uint8_t)h[11], op.pw = (uint8_t)h[12];
        const int32_t zero = h[13], t_bits = h[14];
        const uint32_t n_sram = (uint32_t)h[15];
        const uint32_t in_hw = (uint32_t)a_in.h * a_in.w, out_hw = (uint32_t)a_out.h * a_out.w;
        const uint32_t row_len = (depthwise ? 1u : a_in.c) * op.kh * op.kw;
        const uint32_t wbytes = bare_pad4(a_out.c * row_len), xbytes = bare_pad4(in_hw * a_in.c);
        const uint32_t size = wbytes + xbytes + 4u * (a_out.c * out_hw + a_in.c * in_hw);
        if (2u * wbytes + size + 8u * a_out.c * row_len > ARENA) {
            bare_puts("backward_int_test: case too large\n");
            return 1;
        }
        char *at = (char *)arena;
        if (bare_read(in, at, size) != size) {
            return 1;
        }
        int8_t *w = (int8_t *)at;
        const int8_t *x = w + wbytes;
        int32_t *t = (int32_t *)(x + xbytes);
        int32_t *gin = (int32_t *)(t + a_out.c * out_hw);
        int64_t *sums = (int64_t *)(at + bare_bytes8(size));
        /* the rows in SRAM and those in Flash in two places, the Flash copy's first rows spoilt */
        int8_t *sram = (int8_t *)(sums + a_out.c * row_len);
        memcpy(sram, w, n_sram * row_len);
        memset(w, 0x55, n_sram * row_len);
        const mct_rows_t rows = { sram, w, n_sram, row_len };
        if (depthwise) {
            for (uint32_t c = 0; c < a_out.c; c++) {
                mct_channel_input_grad_int(&op, &a_in, &a_out, mct_row(&rows, c), t + c * out_hw, gin + c * in_hw);
                for (uint32_t i = 0; i < row_len; i++) {
                    sums[c * row_len + i] = mct_tap_sum_int(&op, &a_in, &a_out, x + c, zero, t + c * out_hw, t_bits,
                        (int32_t)i / op.kw, (int32_t)i % op.kw);
                }
            }
        } else {
            mct_pw_input_grad_int(out_hw, a_in.c, a_out.c, &rows, t_bits, t, gin);
            for (uint32_t o = 0; o < a_out.c; o++) {
                int64_t t_sum = 0;
                for (uint32_t p = 0; p < out_hw; p++) {
                    t_sum += t[o * out_hw + p];
                }
                mct_pw_weight_sums_int(out_hw, a_in.c, x, a_in.c, zero, t + o * out_hw, t_sum, t_bits, sums + o * row_len);
            }
        }
        bare_write(out, gin, 4u * a_in.c * in_hw);
        bare_write(out, sums, 8u * a_out.c * row_len);
    }
    bare_close(out);
    return 0;
}
