/* int8 pointwise (1x1) convolution on channels-last activations: an int8 GEMM y[p][o] = w[o] . x[p],
 * two output channels x two pixels at a time (each input word and weight word loaded once for two
 * products), requantization fused. Also a fully connected layer (one pixel). On DSP cores the channel
 * pair's weights are unpacked once (mct_hwc_dot2x2_u: 16 instructions for 16 MACs, 17 with the loop),
 * and few input channels (up to 64) take a kernel of their own, the pixel held in registers (narrow). */
#include "mct_kernels_hwc.h"
#include "mct_gemm_s8_hwc.h"
#include "mct_gemm_s8_sse2.h"

/* DSP cores: a channel pair's weights are unpacked once onto the stack, up to this many input channels
 * (1 KB; the channels beyond are unpacked at every pixel pair), which saves unpacking them at each. */
#define UNPACKED_MAX 256u

#if MCT_HWC_DSP
/* The constants of pairs_full, right after the weights' unpacked groups (the dot loop ends where they
 * start): int32 at these indices. */
enum { K_START, K_MULT = 2, K_ROUND = 4, K_RIGHT = 6, K_Y = 8, K_YSTEP, K_WQ, K_TAIL, K_TAIL_END, K_SIZE };

/* Pixel pairs of two adjacent output channels, lean requantization with the full int8 range, every
 * input channel unpacked and doubled (wq: 4 * n4 words, then k = wq + 4 * n4: 2 s0, 2 s1, mult0,
 * mult1, round0, round1, right0, right1, y, ystep, wq, the raw weights past the unpacked ones (or 0), their
 * end). One asm block per pair: the dot loop of mct_hwc_dot2x2_u
 * (unrolled twice) and the four requantizations, 34 instructions besides the loop's 17 per four input
 * channels (GCC spills and reloads a dozen values around the loop otherwise). Returns x past the pairs; k[K_Y]: y. */
static const int8_t *pairs_full(const int8_t *x, uint32_t pairs, uint32_t cin, int32_t *k) {
    for (; pairs; pairs--) {
        int32_t a00, a01, a10, a11, xa, xb, e, f, w0, w1;
        const int16x2_t *wq;
        __asm__ volatile(
            "ldrd %[a00], %[a01], [%[k]]\n\t"
            "mov %[a10], %[a00]\n\t"
            "mov %[a11], %[a01]\n\t"
            "ldr %[wq], [%[k], #40]\n\t"
            "tst %[s], #4\n\t"            /* an odd count of 4-channel groups: in at the second step */
            "bne 2f\n\t"
            "1:\n\t"
            MCT_HWC_DOT2X2_U_STEP
            "2:\n\t"
            MCT_HWC_DOT2X2_U_STEP
            "cmp %[wq], %[k]\n\t"
            "bne 1b\n\t"
            /* the channels past the unpacked ones, both operands unpacked here: the weights are not
             * doubled, so the accumulators are halved before (2P is even: exact; P mod 2^31 then) and
             * doubled after (which restores 2P + 2T mod 2^32) */
            "ldr %[wq], [%[k], #44]\n\t"
            "cmp %[wq], #0\n\t"
            "beq 3f\n\t"
            "asr %[a00], %[a00], #1\n\t"
            "asr %[a01], %[a01], #1\n\t"
            "asr %[a10], %[a10], #1\n\t"
            "asr %[a11], %[a11], #1\n\t"
            "4:\n\t"
            "ldr %[xb], [%[x], %[s]]\n\t"
            "ldr %[xa], [%[x]], #4\n\t"
            "sxtb16 %[e], %[xa]\n\t"
            "sxtb16 %[xa], %[xa], ror #8\n\t"
            "sxtb16 %[f], %[xb]\n\t"
            "sxtb16 %[xb], %[xb], ror #8\n\t"
            "ldr %[w0], [%[wq], %[s]]\n\t"         /* row 1's word */
            "sxtb16 %[w1], %[w0]\n\t"
            "sxtb16 %[w0], %[w0], ror #8\n\t"
            "smlad %[a01], %[e], %[w1], %[a01]\n\t"
            "smlad %[a01], %[xa], %[w0], %[a01]\n\t"
            "smlad %[a11], %[f], %[w1], %[a11]\n\t"
            "smlad %[a11], %[xb], %[w0], %[a11]\n\t"
            "ldr %[w0], [%[wq]], #4\n\t"           /* row 0's */
            "sxtb16 %[w1], %[w0]\n\t"
            "sxtb16 %[w0], %[w0], ror #8\n\t"
            "smlad %[a00], %[e], %[w1], %[a00]\n\t"
            "smlad %[a00], %[xa], %[w0], %[a00]\n\t"
            "smlad %[a10], %[f], %[w1], %[a10]\n\t"
            "smlad %[a10], %[xb], %[w0], %[a10]\n\t"
            "ldr %[w0], [%[k], #48]\n\t"
            "cmp %[wq], %[w0]\n\t"
            "bne 4b\n\t"
            "lsl %[a00], %[a00], #1\n\t"
            "lsl %[a01], %[a01], #1\n\t"
            "lsl %[a10], %[a10], #1\n\t"
            "lsl %[a11], %[a11], #1\n\t"
            "3:\n\t"
            /* the accumulators hold 2v (doubled weights and starts; |v| < 2^30 on the lean path):
             * z + round = SMMLAR(2v, mult, round); r = (z + round + (v < 0 ? -1 : 0)) >> right; SSAT 8. The sign
             * of v for that of z: they differ only where z = 0 > v, and there -1 changes nothing (right >= 1:
             * (2^(right-1) - 1 + zero * 2^right) >> right = zero) */
            "ldrd %[w0], %[w1], [%[k], #8]\n\t"
            "ldrd %[xa], %[xb], [%[k], #16]\n\t"
            "smmlar %[e], %[a00], %[w0], %[xa]\n\t"
            "add %[a00], %[e], %[a00], asr #31\n\t"
            "smmlar %[e], %[a10], %[w0], %[xa]\n\t"
            "add %[a10], %[e], %[a10], asr #31\n\t"
            "smmlar %[e], %[a01], %[w1], %[xb]\n\t"
            "add %[a01], %[e], %[a01], asr #31\n\t"
            "smmlar %[e], %[a11], %[w1], %[xb]\n\t"
            "add %[a11], %[e], %[a11], asr #31\n\t"
            "ldrd %[w0], %[w1], [%[k], #24]\n\t"
            "asr %[a00], %[a00], %[w0]\n\t"
            "asr %[a10], %[a10], %[w0]\n\t"
            "asr %[a01], %[a01], %[w1]\n\t"
            "asr %[a11], %[a11], %[w1]\n\t"
            "ssat %[a00], #8, %[a00]\n\t"
            "ssat %[a10], #8, %[a10]\n\t"
            "ssat %[a01], #8, %[a01]\n\t"
            "ssat %[a11], #8, %[a11]\n\t"
            "ldrd %[w0], %[w1], [%[k], #32]\n\t"
            "strb %[a00], [%[w0]]\n\t"
            "strb %[a01], [%[w0], #1]\n\t"
            "add %[e], %[w0], %[w1]\n\t"
            "strb %[a10], [%[e]]\n\t"
            "strb %[a11], [%[e], #1]\n\t"
            "add %[w0], %[e], %[w1]\n\t"
            "str %[w0], [%[k], #32]\n\t"
            "add %[x], %[x], %[s]"
            : [a00] "=&r"(a00), [a01] "=&r"(a01), [a10] "=&r"(a10), [a11] "=&r"(a11), [x] "+&r"(x),
              [wq] "=&r"(wq), [xa] "=&r"(xa), [xb] "=&r"(xb), [e] "=&r"(e), [f] "=&r"(f), [w0] "=&r"(w0),
              [w1] "=&r"(w1)
            : [k] "r"(k), [s] "r"(cin)
            : "memory", "cc");
    }
    return x;
}

/* pairs_full's operands for output channels w0, w1 (rows of cin inputs; the first 4 * n4 unpacked and
 * doubled into wq, the constants after them): s[0], s[1] the accumulators' start without the zero
 * point's term, which this adds to them. y and ystep are the caller's to set. */
static void pair_prepare(int32_t *wq, const int8_t *w0, const int8_t *w1, uint32_t cin, uint32_t n4, int32_t *s,
    int32_t x_zero, const mct_hwc_rqc_t *c) {
    int32_t sum[2];                 /* the rows' sums, taken while unpacking them */
    const uint32_t done = 4 * n4;
    mct_hwc_unpack2_twice(w0, w1, n4, wq, sum);
    const int32_t s0 = (int32_t)((uint32_t)s[0] - (uint32_t)x_zero * (uint32_t)sum[0] -
        mct_hwc_xzw(w0 + done, cin - done, x_zero));
    const int32_t s1 = (int32_t)((uint32_t)s[1] - (uint32_t)x_zero * (uint32_t)sum[1] -
        mct_hwc_xzw(w1 + done, cin - done, x_zero));
    s[0] = s0;
    s[1] = s1;
    const int32_t kv[K_SIZE] = { (int32_t)((uint32_t)s0 * 2u), (int32_t)((uint32_t)s1 * 2u), c[0].mult, c[1].mult,
        c[0].round, c[1].round, c[0].right, c[1].right, 0, 0, (int32_t)(uintptr_t)wq,
        (int32_t)(uintptr_t)(done < cin ? w0 + done : NULL), (int32_t)(uintptr_t)(w0 + cin) };
    memcpy(wq + done, kv, sizeof kv);
}

/* the header's count of pairs_full's constants (C99: an array of size -1 where it is wrong) */
typedef char mct_hwc_pair_words_check[MCT_HWC_PAIR_WORDS(0) == K_SIZE ? 1 : -1];

void mct_hwc_pair_prepare(int32_t *area, const int8_t *w0, uint32_t cin, int32_t bias0, int32_t bias1,
    int32_t x_zero, const mct_hwc_rqc_t *c) {
    int32_t s[2] = { bias0, bias1 };
    pair_prepare(area, w0, w0 + cin, cin, cin / 4, s, x_zero, c);
}

void mct_hwc_pair_run(const int8_t *x, uint32_t pairs, uint32_t cin, int32_t *area, int8_t *y, uint32_t ystep) {
    int32_t *k = area + cin;
    k[K_Y] = (int32_t)(uintptr_t)y;
    k[K_YSTEP] = (int32_t)ystep;
    pairs_full(x, pairs, cin, k);
}
#endif

/* Output channels o and o + d (d = 0: the last of an odd count) over every pixel; w0 is o's row, s0 and
 * s1 the accumulators' start, bias - x_zero * sum(w), of which DSP cores get the bias alone (the sums
 * come with the unpacked weights). Inlined three times: lean 2, the lean path with
 * the full int8 range; 1, the lean path; 0, the reference path. */
MCT_HOT void pixels(const int8_t *x, uint32_t pixels, uint32_t cin, const int8_t *w0, uint32_t d, int32_t s0,
    int32_t s1, int32_t x_zero, const mct_hwc_rqc_t *rc, const mct_rq_t *q, const int lean, uint32_t ystep,
    int8_t *y) {
    /* the lean constants as locals: the int8 stores to y could alias rc's fields and would reload them */
    const mct_hwc_rqc_t c[2] = { rc[0], rc[1] };
    const int8_t *w1 = w0 + d * cin;
#if MCT_HWC_DSP
    int16x2_t wq[UNPACKED_MAX + K_SIZE];        /* pairs_full's constants after the unpacked words */
    /* unpacked channels: past UNPACKED_MAX, a count of groups of four as odd as cin's (pairs_full's loop
     * entry), the channels beyond in pairs_full's tail loop */
    const uint32_t most = UNPACKED_MAX - 4u * ((cin / 4) & 1);
    const uint32_t n4 = (cin < most ? cin : most) / 4, done = n4 * 4;
    const int full = lean == 2 && d && cin % 4 == 0 && n4;      /* the common case: pairs_full */
    if (full) {
        int32_t s[2] = { s0, s1 };
        pair_prepare(wq, w0, w1, cin, n4, s, x_zero, c);
        s0 = s[0];
        s1 = s[1];
    } else {
        s0 = (int32_t)((uint32_t)s0 - mct_hwc_xzw(w0, cin, x_zero));
        s1 = (int32_t)((uint32_t)s1 - mct_hwc_xzw(w1, cin, x_zero));
        if (d) {
            mct_hwc_unpack2(w0, w1, n4, wq);
        }
    }
#else
    (void)x_zero;                   /* the caller took x_zero * sum(w) off */
#endif
    uint32_t p = 0;
#if MCT_HWC_DSP
    if (full) {
        int32_t *k = wq + 4 * n4;
        k[K_Y] = (int32_t)(uintptr_t)y;
        k[K_YSTEP] = (int32_t)ystep;
        x = pairs_full(x, pixels / 2, cin, k);
        y = (int8_t *)(uintptr_t)(uint32_t)k[K_Y];
        p = pixels & ~1u;
    }
#endif
    for (; p + 1 < pixels; p += 2, x += 2 * cin, y += 2 * ystep) {
        int32_t acc[4] = { s0, s1, s0, s1 };
#if MCT_HWC_DSP
        if (d) {
            mct_hwc_dot2x2_u(x, cin, wq, n4, acc);
            if (done < cin) {
                mct_hwc_dot2x2(x + done, w0 + done, cin - done, cin, acc);     /* the channels beyond */
            }
        } else
#endif
        if (d) {
            mct_hwc_dot2x2(x, w0, cin, cin, acc);
        } else {
            mct_hwc_dot2x2_any(x, x + cin, w0, w0, cin, acc);
        }
        y[0] = mct_hwc_rq(&c[0], &q[0], lean, acc[0]);
        y[d] = mct_hwc_rq(&c[1], &q[1], lean, acc[1]);
        y[ystep] = mct_hwc_rq(&c[0], &q[0], lean, acc[2]);
        y[ystep + d] = mct_hwc_rq(&c[1], &q[1], lean, acc[3]);
    }
    if (p < pixels) {                   /* an odd pixel count: the last pixel alone */
        int32_t acc[4] = { s0, s1, s0, s1 };
        mct_hwc_dot2x2_any(x, x, w0, w1, cin, acc);
        y[0] = mct_hwc_rq(&c[0], &q[0], lean, acc[0]);
        y[d] = mct_hwc_rq(&c[1], &q[1], lean, acc[1]);
    }
}

MCT_HWC_LOOP void channel_pair(const int8_t *x, uint32_t n, uint32_t cin, const int8_t *w0, uint32_t d, int32_t s0,
    int32_t s1, int32_t x_zero, const mct_hwc_rqc_t *c, const mct_rq_t *q, int lean, uint32_t ystep, int8_t *y) {
    if (lean && q[0].out_lo == -128 && q[0].out_hi == 127) {     /* the clamp becomes one SSAT */
        pixels(x, n, cin, w0, d, s0, s1, x_zero, c, q, 2, ystep, y);
    } else if (lean) {
        pixels(x, n, cin, w0, d, s0, s1, x_zero, c, q, 1, ystep, y);
    } else {
        pixels(x, n, cin, w0, d, s0, s1, x_zero, c, q, 0, ystep, y);
    }
}

/* Output channels [o, end), two at a time. */
static void pairs_of_channels(const int8_t *x, uint32_t pixels, uint32_t cin, const int8_t *w, uint32_t o,
    uint32_t end, const mct_hwc_quant_t *q, uint64_t bound, int8_t *y, uint32_t y_pixel) {
    const uint32_t limit = mct_hwc_rq_bias_limit(bound, q->y_zero, q->act_min, q->act_max);
    for (; o < end; o += 2) {
        const uint32_t o1 = o + 1 < end ? o + 1 : o;
        mct_rq_t rq[2];
        mct_hwc_rqc_t c[2];
        const int lean = mct_hwc_rq_channel(&c[0], limit, q->bias[o], q->mult[o], q->shift[o], q->y_zero) &
            mct_hwc_rq_channel(&c[1], limit, q->bias[o1], q->mult[o1], q->shift[o1], q->y_zero);
        if (lean) {                     /* all that the lean path reads of rq */
            rq[0].out_lo = rq[1].out_lo = q->act_min;
            rq[0].out_hi = rq[1].out_hi = q->act_max;
        } else {                        /* the reference requantization's constants */
            mct_rq_init(&rq[0], q->bias[o], bound, q->mult[o], q->shift[o], q->y_zero, q->act_min, q->act_max);
            mct_rq_init(&rq[1], q->bias[o1], bound, q->mult[o1], q->shift[o1], q->y_zero, q->act_min, q->act_max);
        }
        const int8_t *w0 = w + (size_t)o * cin;
#if MCT_HWC_DSP
        const int32_t s0 = q->bias[o], s1 = q->bias[o1];
#else
        const int32_t s0 = (int32_t)((uint32_t)q->bias[o] - mct_hwc_xzw(w0, cin, q->x_zero));
        const int32_t s1 = (int32_t)((uint32_t)q->bias[o1] - mct_hwc_xzw(w + (size_t)o1 * cin, cin, q->x_zero));
#endif
        channel_pair(x, pixels, cin, w0, o1 - o, s0, s1, q->x_zero, c, rq, lean, y_pixel, y + o);
    }
}

#if MCT_HWC_DSP
/* Few input channels (a multiple of 8 up to 64: the expansion convs of MobileNets and their like): the
 * pixel's channels unpacked once into registers (16 at most: eight registers), then every output channel
 * of a chunk from a table of unpacked doubled weights and requantization constants, read with LDM. Per
 * output channel with 8 inputs one LDM, 4 SMLADs and the requantization: 10 instructions for 8 MACs,
 * where the 2x2 blocking pays 16. Past 16 inputs, passes of 16 per pixel (the first of 8 or 16): each
 * but the last stores its partial sums as the next pass's accumulator starts, the last requantizes.
 * The tables' layout: narrow(). The last channel of a chunk has NARROW_LAST in its entry's last word,
 * which ends the pass (ASR reads the low byte of right). */
#define NARROW_WORDS 320u
#define NARROW_CIN_MAX 64u
#define NARROW_PIXELS_MIN 32u       /* with more than 32 inputs */
#define NARROW_LAST 0x100
enum { C_X, C_XEND, C_TABLE, C_YSKIP, C_Y, C_TABLE2, C_SPAN, NARROW_CTX };

#define UNPACK2(lo, hi) "sxtb16 " lo ", " hi "\n\t" "sxtb16 " hi ", " hi ", ror #8\n\t"
/* The pixel's next 8 channels into r0-r3, or 16 into r0-r7, unpacked; p: the x pointer, advanced. */
#define NARROW_X8(p) "ldr r3, [" p ", #4]\n\t" "ldr r1, [" p "], #8\n\t" UNPACK2("r0", "r1") UNPACK2("r2", "r3")
#define NARROW_X16(p) "ldr r3, [" p ", #4]\n\t" "ldr r5, [" p ", #8]\n\t" "ldr r7, [" p ", #12]\n\t" \
    "ldr r1, [" p "], #16\n\t" UNPACK2("r0", "r1") UNPACK2("r2", "r3") UNPACK2("r4", "r5") UNPACK2("r6", "r7")
/* The requantization of the accumulator a (2v): round + (v < 0 ? -1 : 0), SMMLAR, the shift, SSAT,
 * stored at y (lr), advanced. */
#define NARROW_RQ(a, mult, round, right) "add " round ", " round ", " a ", asr #31\n\t" \
    "smmlar " a ", " a ", " mult ", " round "\n\t" "asr " a ", " a ", " right "\n\t" "ssat " a ", #8, " a "\n\t" \
    "strb " a ", [lr], #1\n\t"
/* One output channel of 8 inputs (r0-r3), requantized: r4-r11. */
#define NARROW_CH8 "ldmia r12!, {r4-r11}\n\t" "smlad r4, r0, r5, r4\n\t" "smlad r4, r1, r6, r4\n\t" \
    "smlad r4, r2, r7, r4\n\t" "smlad r4, r3, r8, r4\n\t" NARROW_RQ("r4", "r9", "r10", "r11")
/* The dot product of 16 inputs (r0-r7) into r8 from its start; r9-r11. */
#define NARROW_DOT16 "ldmia r12!, {r8-r11}\n\t" "smlad r8, r0, r9, r8\n\t" "smlad r8, r1, r10, r8\n\t" \
    "smlad r8, r2, r11, r8\n\t" "ldmia r12!, {r9-r11}\n\t" "smlad r8, r3, r9, r8\n\t" "smlad r8, r4, r10, r8\n\t" \
    "smlad r8, r5, r11, r8\n\t"
/* One output channel of 16 inputs, requantized. */
#define NARROW_CH16 NARROW_DOT16 "ldrd r9, r10, [r12], #8\n\t" "smlad r8, r6, r9, r8\n\t" \
    "smlad r8, r7, r10, r8\n\t" "ldmia r12!, {r9-r11}\n\t" NARROW_RQ("r8", "r9", "r10", "r11")
/* The loop back to label 3 while the channel was not the chunk's last. */
#define NARROW_LOOP "tst r11, #256\n\t" "beq 3b\n\t"
/* The end of a pixel (r12: the context): y past the chunk's skip, the next pixel (label 1). */
#define NARROW_NEXT "ldrd r4, r5, [r12]\n\t" "ldr r6, [r12, #12]\n\t" "add lr, lr, r6\n\t" "cmp r4, r5\n\t" \
    "bne 1b"

/* A function running `code` on the context ctx (in r12), every other register but sp its own. */
#define NARROW_RUN(name, code) \
    static void name(int32_t *ctx) { \
        register int32_t *k __asm__("r12") = ctx; \
        __asm__ volatile(code : "+r"(k) : : "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", \
            "r11", "lr", "memory", "cc"); \
    }

/* 8 inputs: two output channels per step (a chunk holds an even count, as every one-pass loop and
 * requantizing pass takes two channels a step). */
NARROW_RUN(narrow8_run,
        "ldr lr, [r12, #16]\n\t"
        "1:\n\t"
        "ldr r4, [r12]\n\t" NARROW_X8("r4") "str r4, [r12]\n\t"
        "ldr r12, [r12, #8]\n\t"
        "3:\n\t"
        NARROW_CH8 NARROW_CH8
        "tst r11, #256\n\t"
        "beq 3b\n\t"
        NARROW_NEXT)

/* 16 inputs: two output channels per step. */
NARROW_RUN(narrow16_run,
        "ldr lr, [r12, #16]\n\t"
        "1:\n\t"
        "ldr r8, [r12]\n\t" NARROW_X16("r8") "str r8, [r12]\n\t"
        "ldr r12, [r12, #8]\n\t"
        "3:\n\t"
        NARROW_CH16 NARROW_CH16 NARROW_LOOP
        NARROW_NEXT)

/* 24 to 64 inputs: passes per pixel, the first over 8 or 16 inputs (`first`: its x load and channel
 * loop, which stores each partial sum through lr into the next table's starts), middle ones over 16
 * (label 6), the requantizing one over the last 16 (label 8), two channels a step. After each pass's
 * table a link word: the context's address, | 1 where the next table is the requantizing one. */
#define NARROW_PASSES(first) \
    "ldr lr, [r12, #16]\n\t" \
    "1:\n\t" \
    "str lr, [r12, #16]\n\t" \
    first \
    "5:\n\t" \
    "ldr r9, [r12], #4\n\t" \
    "tst r9, #1\n\t" \
    "bic r9, r9, #1\n\t" \
    "bne 8f\n\t" \
    "ldr r8, [r9]\n\t" NARROW_X16("r8") "str r8, [r9]\n\t" \
    "ldr lr, [r9, #24]\n\t" \
    "add lr, lr, r12\n\t" \
    "6:\n\t" \
    NARROW_DOT16 \
    "ldrd r9, r10, [r12], #8\n\t" \
    "smlad r8, r6, r9, r8\n\t" \
    "smlad r8, r7, r10, r8\n\t" \
    "ldmia r12!, {r9-r11}\n\t" \
    "str r8, [lr], #48\n\t" \
    "tst r11, #256\n\t" \
    "beq 6b\n\t" \
    "b 5b\n\t" \
    "8:\n\t" \
    "ldr r8, [r9]\n\t" NARROW_X16("r8") "str r8, [r9]\n\t" \
    "ldr lr, [r9, #16]\n\t" \
    "3:\n\t" \
    NARROW_CH16 NARROW_CH16 NARROW_LOOP \
    "ldr r12, [r12]\n\t" \
    NARROW_NEXT

/* The first pass over 8 inputs. */
NARROW_RUN(narrow_passes8_run,
        NARROW_PASSES(
            "ldr r4, [r12]\n\t" NARROW_X8("r4") "str r4, [r12]\n\t"
            "ldr lr, [r12, #20]\n\t"
            "ldr r12, [r12, #8]\n\t"
            "2:\n\t"
            "ldmia r12!, {r4-r9}\n\t"
            "smlad r4, r0, r5, r4\n\t"
            "smlad r4, r1, r6, r4\n\t"
            "smlad r4, r2, r7, r4\n\t"
            "smlad r4, r3, r8, r4\n\t"
            "str r4, [lr], #48\n\t"
            "tst r9, #256\n\t"
            "beq 2b\n\t"))

/* The first pass over 16 inputs. */
NARROW_RUN(narrow_passes16_run,
        NARROW_PASSES(
            "ldr r8, [r12]\n\t" NARROW_X16("r8") "str r8, [r12]\n\t"
            "ldr lr, [r12, #20]\n\t"
            "ldr r12, [r12, #8]\n\t"
            "2:\n\t"
            NARROW_DOT16
            "ldmia r12!, {r9-r11}\n\t"
            "smlad r8, r6, r9, r8\n\t"
            "smlad r8, r7, r10, r8\n\t"
            "str r8, [lr], #48\n\t"
            "tst r11, #256\n\t"
            "beq 2b\n\t"))

/* n input channels of a weight row, unpacked and doubled, into e; their sum added to *sum. */
static int32_t *narrow_weights(int32_t *e, const int8_t *w, uint32_t n, int32_t *sum) {
    int32_t s = *sum;
    for (const int8_t *end = w + n; w != end; w += 4, e += 2) {
        const uint32_t v = mct_hwc_rd32(w);
        const int16x2_t v02 = __sxtb16(v), v13 = mct_sxtb16_ror8(v);
        s = __smlad(__sadd16(v02, v13), (int16x2_t)0x00010001, s);
        e[0] = __sadd16(v02, v02);
        e[1] = __sadd16(v13, v13);
    }
    *sum = s;
    return e;
}

/* Output channels [o, cout & ~1) of a layer with 8 to 64 input channels (a multiple of 8) and the
 * output range [-128, 127], chunk by chunk (o: a chunk's start), up to a chunk with a channel off the
 * lean requantization: returns its start, *stop its end (the caller runs it through channel pairs,
 * this function's table off the stack), or cout & ~1 when done.
 * Tables, per output channel: one pass (8 or 16 inputs): start, weights, mult, round, right; then the
 * context. More passes: the context; the first pass's table (start, 4 or 8 words of weights, a flag
 * word); then 12 words per channel for each further pass: the partial sum, 8 words of weights, and
 * for a middle pass 2 unused words and the flag, for the last mult, round, right; each table followed
 * by its link word. */
static uint32_t narrow(const int8_t *x, uint32_t pixels, uint32_t cin, const int8_t *w, uint32_t cout,
    const mct_hwc_quant_t *q, uint64_t bound, int8_t *y, uint32_t ystep, uint32_t o, uint32_t *stop) {
    int32_t t[NARROW_WORDS];
    const uint32_t passes = (cin + 15) / 16, first = cin - 16 * (passes - 1);   /* the first pass's inputs */
    const uint32_t first_words = first / 2 + (passes > 1 ? 2 : 4);
    const uint32_t per = first_words + 12 * (passes - 1), fixed = NARROW_CTX + passes;
    if (cout < 2) {
        return 0;                       /* no pair of channels */
    }
    const uint32_t most = ((NARROW_WORDS - fixed) / per) & ~1u, even = cout & ~1u;
    const uint32_t chunks = (even + most - 1) / most, chunk = ((even + chunks - 1) / chunks + 1) & ~1u;   /* even */
    const uint32_t limit = mct_hwc_rq_bias_limit(bound, q->y_zero, q->act_min, q->act_max);
    for (; o < even; o += chunk) {
        const uint32_t n = even - o < chunk ? even - o : chunk;
        int32_t *ctx = passes > 1 ? t : t + n * first_words, *t1 = passes > 1 ? t + NARROW_CTX : t;
        int lean = limit != 0;
        for (uint32_t i = 0; lean && i < n; i++) {
            const int8_t *wi = w + (size_t)(o + i) * cin;
            const uint32_t k = o + i, last = i + 1 == n ? NARROW_LAST : 0;
            mct_hwc_rqc_t c;
            if (!mct_hwc_rq_channel(&c, limit, q->bias[k], q->mult[k], q->shift[k], q->y_zero)) {
                lean = 0;
                break;
            }
            int32_t *e = t1 + i * first_words, sum = 0;
            int32_t *start = e;
            e = narrow_weights(e + 1, wi, first, &sum);         /* e: past the entry's weights */
            if (passes > 1) {
                e[0] = (int32_t)last;                           /* the first pass's flag */
                for (uint32_t p = 1; p < passes; p++) {
                    e = t1 + n * first_words + 1 + (p - 1) * (n * 12 + 1) + i * 12;
                    e = narrow_weights(e + 1, wi + first + 16 * (p - 1), 16, &sum);
                    e[0] = e[1] = 0;                            /* a middle pass's; the last one's below */
                    e[2] = (int32_t)last;
                }
            }
            e[0] = c.mult;
            e[1] = c.round;
            e[2] = c.right | (int32_t)last;
            start[0] = (int32_t)(((uint32_t)q->bias[k] - (uint32_t)q->x_zero * (uint32_t)sum) * 2u);
        }
        if (!lean) {
            *stop = o + n;
            return o;
        }
        for (uint32_t p = 0; p + 1 < passes; p++) {           /* the links */
            t1[n * first_words + p * (n * 12 + 1)] = (int32_t)((uintptr_t)ctx | (p + 2 == passes));
        }
        if (passes > 1) {
            t1[n * first_words + (passes - 1) * (n * 12 + 1)] = (int32_t)(uintptr_t)ctx;
        }
        ctx[C_X] = (int32_t)(uintptr_t)x;
        ctx[C_XEND] = (int32_t)(uintptr_t)(x + (size_t)pixels * cin);
        ctx[C_TABLE] = (int32_t)(uintptr_t)t1;
        ctx[C_YSKIP] = (int32_t)(ystep - n);
        ctx[C_Y] = (int32_t)(uintptr_t)(y + o);
        ctx[C_TABLE2] = (int32_t)(uintptr_t)(t1 + n * first_words + 1);
        ctx[C_SPAN] = (int32_t)(n * 48 + 4);
        if (cin == 8) {
            narrow8_run(ctx);
        } else if (cin == 16) {
            narrow16_run(ctx);
        } else if (first == 8) {
            narrow_passes8_run(ctx);
        } else {
            narrow_passes16_run(ctx);
        }
    }
    return even;
}
#endif

#if MCT_HWC_SSE2
/* x86-64 hosts: four output channels x two pixels (mct_sse2_dot2x4), the four weight rows widened to
 * int16 on the stack (8 KB) up to this many input channels; beyond, the portable path. */
#define SSE2_CIN_MAX 1024u

/* Output channels o .. o + nb - 1 (nb <= 4) over every pixel; w: o's row; start: the accumulators'
 * start. The lean requantization four channels at a time (mct_sse2_rq8), else mct_hwc_rq's. */
MCT_HWC_LOOP void quad(const int8_t *x, uint32_t n, uint32_t cin, const int8_t *w, uint32_t nb, const int32_t *start,
    const mct_hwc_rqc_t *c, const mct_rq_t *q, int lean, uint32_t ystep, int8_t *y) {
    int16_t w16[4 * SSE2_CIN_MAX];
    const uint32_t ws = (cin + 7u) & ~7u;       /* rows padded with zeros to whole groups of eight */
    mct_sse2_widen_rows(w, nb, cin, 4, ws, w16);
    mct_sse2_rq_t r;                /* read on the lean path only */
    mct_sse2_rq_init(&r, c, nb, q[0].out_lo, q[0].out_hi);
    const __m128i s = _mm_loadu_si128((const __m128i *)(const void *)start);
    for (uint32_t p = 0; p < n; p += 2, x += 2 * cin, y += 2 * ystep) {
        const uint32_t two = p + 1 < n;
        __m128i s0 = s, s1 = s;
        /* reads up to 7 bytes past the second pixel where the input goes on that far */
        const int over = (size_t)(p + 2) * cin + 7 <= (size_t)n * cin;
        mct_sse2_dot2x4(x, two ? x + cin : x, w16, ws, cin, over, &s0, &s1);
        if (lean) {
            mct_sse2_store2(mct_sse2_rq8(&r, s0, s1), nb, y, two ? y + ystep : NULL);
            continue;
        }
        int32_t a[8];
        _mm_storeu_si128((__m128i *)(void *)a, s0);
        _mm_storeu_si128((__m128i *)(void *)(a + 4), s1);
        for (uint32_t i = 0; i < nb; i++) {
            y[i] = mct_hwc_rq(&c[i], &q[i], 0, a[i]);
            if (two) {
                y[ystep + i] = mct_hwc_rq(&c[i], &q[i], 0, a[4 + i]);
            }
        }
    }
}

static void pointwise_sse2(const int8_t *x, uint32_t pixels, uint32_t cin, const int8_t *w, uint32_t cout,
    const mct_hwc_quant_t *q, int8_t *y, uint32_t y_pixel) {
    const uint64_t bound = mct_acc_bound(cin, q->x_zero);
    for (uint32_t o = 0; o < cout; o += 4) {
        const uint32_t nb = cout - o < 4 ? cout - o : 4;
        mct_rq_t rq[4];
        mct_hwc_rqc_t c[4];
        int32_t start[4] = { 0, 0, 0, 0 };
        int lean = 1;
        for (uint32_t i = 0; i < nb; i++) {
            const uint32_t k = o + i;
            mct_rq_init(&rq[i], q->bias[k], bound, q->mult[k], q->shift[k], q->y_zero, q->act_min, q->act_max);
            lean = mct_hwc_rq_prepare(&c[i], &rq[i], q->bias[k], bound) && lean;
            start[i] = (int32_t)((uint32_t)q->bias[k] - mct_hwc_xzw(w + (size_t)k * cin, cin, q->x_zero));
        }
        quad(x, pixels, cin, w + (size_t)o * cin, nb, start, c, rq, lean, y_pixel, y + o);
    }
}
#endif

void mct_pointwise_s8_hwc(const int8_t *x, uint32_t pixels, uint32_t cin, const int8_t *w, uint32_t cout,
    const mct_hwc_quant_t *q, int8_t *y, uint32_t y_pixel) {
#if MCT_HWC_SSE2
    if (cin <= SSE2_CIN_MAX) {
        pointwise_sse2(x, pixels, cin, w, cout, q, y, y_pixel);
        return;
    }
#endif
    const uint64_t bound = mct_acc_bound(cin, q->x_zero);
    uint32_t o = 0;
#if MCT_HWC_DSP
    /* more than two passes repay their tables over more pixels only (4x4 pixels of 56 inputs: 1.62
     * instructions/MAC here, 1.51 through channel pairs; 32x32 of 48: 1.15 here, 1.27) */
    if (cin && cin % 8 == 0 && cin <= NARROW_CIN_MAX && (cin <= 32 || pixels >= NARROW_PIXELS_MIN) &&
        q->act_min == -128 && q->act_max == 127 && pixels) {
        for (uint32_t stop; (o = narrow(x, pixels, cin, w, cout, q, bound, y, y_pixel, o, &stop)) < (cout & ~1u);
             o = stop) {
            pairs_of_channels(x, pixels, cin, w, o, stop, q, bound, y, y_pixel);
        }
    }
#endif
    pairs_of_channels(x, pixels, cin, w, o, cout, q, bound, y, y_pixel);
}
