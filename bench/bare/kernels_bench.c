/* Instructions per layer of the int8 forward kernels, bare-metal (make bench-kernels,
 * bench/bench_kernels.py): for each layer of `layers.bin` (int32 kind 0 pointwise / 1 depthwise /
 * 2 conv, in_h, in_w, in_c, out_h, out_w, out_c, k, stride, pad_top, pad_left), random data, then each
 * implementation between two bare_mark() calls (the insn-count plugin counts between them):
 *   hwc     this project's channels-last kernels (c_src/mct_*_s8_hwc.c), weights in their order
 *   cmsis*  CMSIS-NN v7 (built with -DBENCH_CMSIS): arm_convolve_1x1_s8_fast, arm_depthwise_conv_3x3_s8,
 *           arm_depthwise_conv_s8_opt, arm_convolve_s8
 * After each measured call one line "R <layer> <impl> <bytes that differ from hwc's output>" to stdout;
 * first a calibration "R -1 empty 0" (two marks back to back). */
#include <string.h>
#include "bare.h"
#include "mct_kernels_hwc.h"
#ifdef BENCH_CMSIS
#include "arm_nnfunctions.h"
#endif

#define BIG (64u * 64u * 48u)           /* the largest activation of MobileNetV2-w0.35 at 128x128 */
#define MAX_W (1280u * 112u)
#define MAX_C 1280u
#define SCRATCH 16384u

static int8_t x_hwc[BIG], y_ref[BIG], y_out[BIG], w_hwc[MAX_W], w_ours[4096];
static int32_t bias[MAX_C], mult[MAX_C], shift[MAX_C];
static int16_t scratch[SCRATCH / 2];

static uint32_t rng = 12345u;
static int8_t rand8(void) {
    rng = rng * 1664525u + 1013904223u;
    return (int8_t)(rng >> 24);
}

static void say(int layer, const char *impl, uint32_t diff) {
    char line[48], num[12];
    int n = 0, k;
    line[n++] = 'R';
    line[n++] = ' ';
    uint32_t v[2] = { (uint32_t)layer, diff };
    for (int f = 0; f < 2; f++) {
        if (f == 1) {
            for (const char *s = impl; *s; s++) {
                line[n++] = *s;
            }
            line[n++] = ' ';
        }
        uint32_t u = v[f];
        if (f == 0 && layer < 0) {
            line[n++] = '-';
            u = (uint32_t)-layer;
        }
        k = 0;
        do {
            num[k++] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        while (k) {
            line[n++] = num[--k];
        }
        line[n++] = f == 0 ? ' ' : '\n';
    }
    line[n] = 0;
    bare_puts(line);
}

static uint32_t diff(const int8_t *a, const int8_t *b, uint32_t n) {
    uint32_t d = 0;
    for (uint32_t i = 0; i < n; i++) {
        d += a[i] != b[i];
    }
    return d;
}

int main(void) {
    const int in = bare_open("layers.bin", 0);
    if (in < 0) {
        bare_puts("kernels_bench: cannot open layers.bin\n");
        return 1;
    }
    bare_mark();
    bare_mark();
    say(-1, "empty", 0);
    int32_t l[11];
    for (int layer = 0; bare_read(in, l, sizeof l) == sizeof l; layer++) {
        const int kind = l[0];
        const mct_hwc_geom_t g = { (uint32_t)l[1], (uint32_t)l[2], (uint32_t)l[3], (uint32_t)l[4], (uint32_t)l[5],
            (uint32_t)l[6], (uint32_t)l[7], (uint32_t)l[7], (uint32_t)l[8], (uint32_t)l[8], (uint32_t)l[9],
            (uint32_t)l[10] };
        const uint32_t nx = g.in_h * g.in_w * g.in_c, ny = g.out_h * g.out_w * g.out_c;
        const uint32_t fan = kind == 1 ? g.kh * g.kw : g.kh * g.kw * g.in_c;
        const uint32_t nw = kind == 1 ? fan * g.in_c : fan * g.out_c;
        if (nx > BIG || ny > BIG || nw > MAX_W || g.out_c > MAX_C || (kind != 0 && nw > sizeof w_ours)) {
            bare_puts("kernels_bench: a layer larger than the buffers\n");
            return 1;
        }
        for (uint32_t i = 0; i < nx; i++) {
            x_hwc[i] = rand8();
        }
        for (uint32_t i = 0; i < nw; i++) {
            w_hwc[i] = rand8();
        }
        int32_t half_log2_fan = 0;
        while ((1u << (2 * half_log2_fan + 2)) <= fan) {
            half_log2_fan++;
        }
        for (uint32_t o = 0; o < g.out_c; o++) {
            bias[o] = (int32_t)(rand8() * 64);
            mult[o] = (int32_t)(0x40000000u + ((uint32_t)(uint8_t)rand8() << 21));
            shift[o] = -(7 + half_log2_fan) + (rand8() & 1);      /* outputs spread over the int8 range */
        }
        const mct_hwc_quant_t q = { -128, 5, -128, 127, bias, mult, shift };
        /* w_hwc is in CMSIS-NN's order (depthwise [KH][KW][C], conv [O][KH][KW][I]); ours is one row per
         * output channel in PyTorch's order (depthwise [C][KH][KW], conv [O][I][KH][KW]) */
        const int8_t *wp = w_hwc;
        if (kind != 0) {
            const uint32_t outs = kind == 1 ? g.in_c : g.out_c, cin = kind == 1 ? 1 : g.in_c, taps = g.kh * g.kw;
            for (uint32_t o = 0; o < outs; o++) {
                for (uint32_t c = 0; c < cin; c++) {
                    for (uint32_t t = 0; t < taps; t++) {
                        w_ours[(o * cin + c) * taps + t] =
                            kind == 1 ? w_hwc[t * g.in_c + o] : w_hwc[(o * taps + t) * cin + c];
                    }
                }
            }
            wp = w_ours;
        }

        /* ours */
        bare_mark();
        if (kind == 0) {
            mct_pointwise_s8_hwc(x_hwc, g.in_h * g.in_w, g.in_c, wp, g.out_c, &q, y_ref, g.out_c);
        } else if (kind == 1) {
            mct_depthwise_s8_hwc(x_hwc, &g, wp, &q, y_ref);
        } else {
            mct_conv_s8_hwc(x_hwc, &g, wp, &q, y_ref);
        }
        bare_mark();
        say(layer, "hwc", 0);

#ifdef BENCH_CMSIS
        const cmsis_nn_dims din = { 1, (int32_t)g.in_h, (int32_t)g.in_w, (int32_t)g.in_c };
        const cmsis_nn_dims dout = { 1, (int32_t)g.out_h, (int32_t)g.out_w, (int32_t)g.out_c };
        const cmsis_nn_dims dw = { kind == 1 ? 1 : (int32_t)g.out_c, (int32_t)g.kh, (int32_t)g.kw,
            kind == 1 ? (int32_t)g.out_c : (int32_t)g.in_c };
        const cmsis_nn_dims db = { 1, 1, 1, (int32_t)g.out_c };
        const cmsis_nn_per_channel_quant_params qp = { mult, shift };
        const cmsis_nn_tile stride = { (int32_t)g.stride_w, (int32_t)g.stride_h };
        const cmsis_nn_tile pad = { (int32_t)g.pad_w, (int32_t)g.pad_h };
        const cmsis_nn_tile dil = { 1, 1 };
        const cmsis_nn_activation act = { q.act_min, q.act_max };
        cmsis_nn_context ctx = { scratch, SCRATCH };
        int32_t need;
        if (kind == 1) {
            const cmsis_nn_dw_conv_params p = { -q.x_zero, q.y_zero, 1, stride, pad, dil, act };
            if (g.kh == 3 && g.pad_w <= 1) {
                memset(y_out, 0, ny);
                bare_mark();
                arm_cmsis_nn_status s = arm_depthwise_conv_3x3_s8(&ctx, &p, &qp, &din, x_hwc, &dw, w_hwc, &db, bias,
                    &dout, y_out);
                bare_mark();
                say(layer, s == ARM_CMSIS_NN_SUCCESS ? "cmsis_3x3" : "cmsis_3x3_failed", diff(y_out, y_ref, ny));
            }
            need = arm_depthwise_conv_s8_opt_get_buffer_size(&din, &dw);
            memset(y_out, 0, ny);
            bare_mark();
            arm_cmsis_nn_status s = need > (int32_t)SCRATCH ? ARM_CMSIS_NN_ARG_ERROR
                : arm_depthwise_conv_s8_opt(&ctx, &p, &qp, &din, x_hwc, &dw, w_hwc, &db, bias, &dout, y_out);
            bare_mark();
            say(layer, s == ARM_CMSIS_NN_SUCCESS ? "cmsis_opt" : "cmsis_opt_failed", diff(y_out, y_ref, ny));
        } else {
            const cmsis_nn_conv_params p = { -q.x_zero, q.y_zero, stride, pad, dil, act };
            need = kind == 0 ? arm_convolve_1x1_s8_fast_get_buffer_size(&din) : arm_convolve_s8_get_buffer_size(&din, &dw);
            memset(y_out, 0, ny);
            bare_mark();
            arm_cmsis_nn_status s = need > (int32_t)SCRATCH ? ARM_CMSIS_NN_ARG_ERROR
                : kind == 0 ? arm_convolve_1x1_s8_fast(&ctx, &p, &qp, &din, x_hwc, &dw, w_hwc, &db, bias, &dout, y_out)
                : arm_convolve_s8(&ctx, &p, &qp, &din, x_hwc, &dw, w_hwc, &db, bias, NULL, &dout, y_out);
            bare_mark();
            say(layer, s == ARM_CMSIS_NN_SUCCESS ? "cmsis" : "cmsis_failed", diff(y_out, y_ref, ny));
        }
#endif
    }
    return 0;
}
