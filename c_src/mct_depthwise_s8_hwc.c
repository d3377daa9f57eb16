/* int8 depthwise convolution on channels-last activations (any KH x KW, strides, padding): a block of
 * channels at a time over every output pixel, the block's accumulators in registers across the taps.
 * - DSP cores: four channels per word load, SXTAB16 subtracting x_zero while it unpacks (so padded
 *   taps are simply skipped), the block's weights unpacked once, SMLABB/SMLATT per channel; a window's
 *   rows in asm (taps4: rows of 4, 5 or 7 taps unrolled, 9 instructions a tap), runs of interior
 *   pixels without the per-pixel border set-up.
 * - Portable: interior pixels multiply raw int8 values (x_zero * sum(w) folded into the accumulator's
 *   start), border pixels subtract x_zero per tap; blocks of 16 channels where the host has SIMD
 *   (GCC/Clang vectorize the channel loop), else 4.
 * On the lean requantization path (mct_gemm_s8_hwc.h), runs of interior pixels of a 3x3 kernel take an
 * unrolled loop (run3x3: on DSP cores four channels a pixel, in asm for the full int8 output range;
 * else one channel at a time, run3x3_chan); on DSP cores the border pixels too (run3x3_masked: the taps
 * outside skipped); small maps go through a padded tile (small_map: every row one run, no borders). On
 * DSP cores a 3x3 window of stride 1 across over rows of 4 outputs or more takes band_block instead
 * (SMLAD, two taps per instruction, from a channel-planar int16 tile, one channel at a time in asm).
 * The weights come
 * one row per channel ([C][KH][KW]); each block's are copied tap-major onto the stack first
 * ([KH][KW][block], like an input pixel's channels; DSP: unpacked to int16 pairs). */
#include <stddef.h>
#include "mct_kernels_hwc.h"
#include "mct_gemm_s8_hwc.h"
#include "mct_gemm_s8_sse2.h"

#if MCT_HWC_DSP
#define BLOCK 4u
#elif defined(__SSE2__) || defined(__ARM_NEON)
#define BLOCK 16u
#else
#define BLOCK 4u
#endif

/* acc[i] += sum over the taps [ky0, ky1) x [kx0, kx1) of (x - xz) * w, channels i < nb. xp points at
 * tap (0, 0) of the block's first channel, wp at the block's weights (BLOCK per tap); rs is the input's
 * row stride, c its pixel stride. */
MCT_HOT void taps(const int8_t *xp, uint32_t rs, uint32_t c, const int8_t *wp, uint32_t kw, uint32_t ky0,
    uint32_t ky1, uint32_t kx0, uint32_t kx1, int32_t xz, uint32_t nb, int32_t *acc) {
    for (uint32_t ky = ky0; ky < ky1; ky++) {
        const int8_t *xr = xp + (size_t)ky * rs, *wr = wp + (size_t)ky * kw * BLOCK;
        for (uint32_t kx = kx0; kx < kx1; kx++) {
            const int8_t *xt = xr + (size_t)kx * c, *wt = wr + (size_t)kx * BLOCK;
#pragma GCC unroll 16
            for (uint32_t i = 0; i < nb; i++) {         /* a whole block: unrolled, acc in registers */
                /* modulo 2^32 (the folded start may pass the int32 range on the way) */
                acc[i] = (int32_t)((uint32_t)acc[i] + (uint32_t)((xt[i] - xz) * wt[i]));
            }
        }
    }
}

#if MCT_HWC_DSP
static inline int16x2_t sxtab16_ror8(int16x2_t a, uint32_t x) {
    int16x2_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

/* One tap of four channels: (x - x_zero) by SXTAB16 (xz2: -x_zero in both halves), times the unpacked
 * weights (w02: channels 0 and 2, w13: 1 and 3). In asm: the compiler keeps the tap's six instructions
 * together instead of hoisting every tap's unpacking ahead of the products (which spills). */
#define TAP4_MATH \
    "sxtab16 %[e], %[z], %[x]\n\t" \
    "sxtab16 %[o], %[z], %[x], ror #8\n\t" \
    "smlabb %[a0], %[e], %[w02], %[a0]\n\t" \
    "smlatt %[a2], %[e], %[w02], %[a2]\n\t" \
    "smlabb %[a1], %[o], %[w13], %[a1]\n\t" \
    "smlatt %[a3], %[o], %[w13], %[a3]"
/* One tap with its loads: the input word at p + off, the weights at wq + 8 * t bytes (t constant). */
#define TAP4_LOADS(P_, OFF_, WQ_, T_, Z_, A_) \
    do { \
        int32_t e_, o_; \
        uint32_t x_, w02_, w13_; \
        __asm__("ldr %[x], [%[p], %[off]]\n\t" \
                "ldrd %[w02], %[w13], [%[wq], %[wo]]\n\t" TAP4_MATH \
                : [a0] "+r"(A_[0]), [a1] "+r"(A_[1]), [a2] "+r"(A_[2]), [a3] "+r"(A_[3]), [e] "=&r"(e_), \
                  [o] "=&r"(o_), [x] "=&r"(x_), [w02] "=&r"(w02_), [w13] "=&r"(w13_) \
                : [p] "r"(P_), [off] "rI"(OFF_), [wq] "r"(WQ_), [wo] "I"(8 * (T_)), [z] "r"(Z_) \
                : "memory"); \
    } while (0)

/* Taps of four channels in asm: per tap a word load (p then steps c bytes), the tap's two weight words
 * (wq steps 8 bytes) and TAP4_MATH, 9 instructions (taps' C loop spilled and took 16). */
#define TAP4_STEP \
    "ldr %[x], [%[p]]\n\t" \
    "add %[p], %[p], %[c]\n\t" \
    "ldrd %[w02], %[w13], [%[wq]], #8\n\t" \
    "sxtab16 %[e], %[z], %[x]\n\t" \
    "sxtab16 %[x], %[z], %[x], ror #8\n\t" \
    "smlabb %[a0], %[e], %[w02], %[a0]\n\t" \
    "smlatt %[a2], %[e], %[w02], %[a2]\n\t" \
    "smlabb %[a1], %[x], %[w13], %[a1]\n\t" \
    "smlatt %[a3], %[x], %[w13], %[a3]\n\t"
/* After a row: p on by skip bytes (wq by wskip), and rows (in memory: the registers are all taken)
 * counted down. */
#define ROW4_END \
    "ldr %[x], %[wskip]\n\t" \
    "add %[wq], %[wq], %[x]\n\t" \
    "ldr %[x], %[skip]\n\t" \
    "add %[p], %[p], %[x]\n\t" \
    "ldr %[x], %[rows]\n\t" \
    "subs %[x], %[x], #1\n\t" \
    "str %[x], %[rows]\n\t" \
    "bne 1b"
#define TAP4_OPERANDS \
    [a0] "+r"(a[0]), [a1] "+r"(a[1]), [a2] "+r"(a[2]), [a3] "+r"(a[3]), [e] "=&r"(e), [x] "=&r"(xv), \
    [w02] "=&r"(w02), [w13] "=&r"(w13), [p] "+&r"(p), [wq] "+&r"(wt), [rows] "+m"(rows)
/* rows > 0 window rows of N_ (4, 5 or 7) taps each. Spelt out, not .rept: GCC sizes an asm by its lines
 * for its branches' reach. */
#define TAP4_STEP4 TAP4_STEP TAP4_STEP TAP4_STEP TAP4_STEP
#define TAP4_STEP5 TAP4_STEP4 TAP4_STEP
#define TAP4_STEP7 TAP4_STEP5 TAP4_STEP TAP4_STEP
#define ROWS4(N_) \
    __asm__("1:\n\t" TAP4_STEP##N_ ROW4_END \
            : TAP4_OPERANDS : [c] "r"(c), [z] "r"(xz2), [skip] "m"(skip), [wskip] "m"(wskip) : "memory", "cc")

/* The taps [ky0, ky1) x [kx0, kx1) of four channels; wq: their weights unpacked, two words a tap. */
MCT_HOT void taps4(const int8_t *xp, uint32_t rs, uint32_t c, const int16x2_t *wq, uint32_t kw, uint32_t ky0,
    uint32_t ky1, uint32_t kx0, uint32_t kx1, int16x2_t xz2, int32_t *acc) {
    if (kx1 <= kx0 || ky1 <= ky0) {
        return;
    }
    int32_t a[4] = { acc[0], acc[1], acc[2], acc[3] };
    const uint32_t n = kx1 - kx0, skip = rs - n * c, wskip = 8 * (kw - n);
    uint32_t rows = ky1 - ky0;
    const int8_t *p = xp + (size_t)ky0 * rs + (size_t)kx0 * c;
    const int16x2_t *wt = wq + 2 * (ky0 * kw + kx0);
#if defined(__PIC__)
    /* A native .mpy (-fpic): its PIC register and the frame pointer leave too few registers for the
     * row loops below; one tap's asm at a time. */
    for (; rows; rows--, p += skip, wt += wskip / 4) {
        for (uint32_t k = 0; k < n; k++, p += c, wt += 2) {
            TAP4_LOADS(p, 0, wt, 0, xz2, a);
        }
    }
#else
    uint32_t xv, w02, w13, e;      /* the asm's scratch registers (TAP4_OPERANDS) */
    if (n == 5) {
        ROWS4(5);
    } else if (n == 7) {
        ROWS4(7);
    } else if (n == 4) {        /* a 7x7 window over a 4x4 map, the 5x5's borders */
        ROWS4(4);
    } else {                    /* n taps a row in a loop, 11 instructions a tap */
        uint32_t k;
        __asm__("1:\n\t"
                "ldr %[k], %[n]\n\t"
                "2:\n\t" TAP4_STEP
                "subs %[k], %[k], #1\n\t"
                "bne 2b\n\t" ROW4_END
                : TAP4_OPERANDS, [k] "=&r"(k)
                : [c] "r"(c), [z] "r"(xz2), [skip] "m"(skip), [n] "m"(n), [wskip] "m"(wskip)
                : "memory", "cc");
    }
#endif
    memcpy(acc, a, sizeof a);
}

/* run3x3's weights and constants on DSP cores. The asm path (full int8 output range) multiplies raw
 * values by the doubled weights from an accumulator start of 2 (bias - x_zero * sum(w)) (modulo 2^32),
 * which the requantization's SMMLAR takes as it is; the C path takes wq, bias and rc. The asm reads this
 * at fixed offsets: start2 0 (one LDM), rq 16 (one LDM a channel), w2 64. */
typedef struct {
    int32_t start2[4];
    int32_t rq[4][3];           /* mult, round, right of mct_hwc_rqc_t */
    int16x2_t w2[18];           /* per tap channels (0, 2), then (1, 3), doubled */
    const int16x2_t *wq;        /* the unpacked weights, per tap (0, 2), (1, 3) */
} weights_t;
#else
typedef int8_t weights_t;       /* run3x3's weights: the block's copy, [3][3][BLOCK] */
#endif

#if MCT_HWC_DSP
/* n consecutive output pixels of four channels, step bytes apart in the input and ystep in the output,
 * that read the taps of `mask` (bit 3 * ky + kx; 0x1FF: the whole 3x3 window inside the input), from the
 * accumulators' start `start` (the bias; x_zero subtracted per tap). Inlined by run3x3 (a clamp other
 * than the full int8 range, which takes run3x3_asm) and by run3x3_masked (border pixels, where the tap
 * checks cost two instructions each and the mask is the same over the run). */
MCT_HOT void run3x3_body(const int8_t *xp, uint32_t rs, uint32_t c, uint32_t step, uint32_t n, const weights_t *w,
    int32_t xz, const int32_t *start, const mct_hwc_rqc_t *rc, int32_t lo, int32_t hi, int8_t *y, uint32_t ystep,
    uint32_t mask) {
    const int16x2_t xz2 = (int16x2_t)(((uint32_t)-xz & 0xFFFFu) * 0x10001u);
    for (; n; n--, xp += step, y += ystep) {
        int32_t a[4] = { start[0], start[1], start[2], start[3] };
        const int8_t *xr = xp;
#pragma GCC unroll 3
        for (uint32_t r = 0; r < 3; r++, xr += rs) {
#pragma GCC unroll 3
            for (uint32_t k = 0; k < 3; k++) {
                if (!(mask & (1u << (3 * r + k)))) {
                    continue;
                }
                if (k == 0) {
                    TAP4_LOADS(xr, 0, w->wq, 3 * r + k, xz2, a);
                } else {
                    TAP4_LOADS(xr, k * c, w->wq, 3 * r + k, xz2, a);
                }
            }
        }
        y[0] = mct_hwc_rq_lean(&rc[0], a[0], lo, hi);
        y[1] = mct_hwc_rq_lean(&rc[1], a[1], lo, hi);
        y[2] = mct_hwc_rq_lean(&rc[2], a[2], lo, hi);
        y[3] = mct_hwc_rq_lean(&rc[3], a[3], lo, hi);
    }
}
#endif

#if MCT_HWC_DSP
/* One tap of four channels in run3x3_asm: the input word at ADDR_, weights w2[2 T_], w2[2 T_ + 1]. */
#define R3_TAP(T_, ADDR_) \
    "ldr %[x], " ADDR_ "\n\t" \
    "ldrd %[wa], %[wb], [%[k], #64 + 8 * (" #T_ ")]\n\t" \
    "sxtb16 %[e], %[x]\n\t" \
    "sxtb16 %[o], %[x], ror #8\n\t" \
    "smlabb %[a0], %[e], %[wa], %[a0]\n\t" \
    "smlatt %[a2], %[e], %[wa], %[a2]\n\t" \
    "smlabb %[a1], %[o], %[wb], %[a1]\n\t" \
    "smlatt %[a3], %[o], %[wb], %[a3]\n\t"
/* A row of three taps from row: kx 0 and 1 at row and row + c, kx 2 at row + 2c. */
#define R3_ROW(T_) \
    R3_TAP(T_, "[%[row]]") R3_TAP(T_ + 1, "[%[row], %[c]]") "add %[row], %[row], %[c]\n\t" \
    R3_TAP(T_ + 2, "[%[row], %[c]]")
/* Channel I_'s requantization: acc A_ into the output byte (stored after all four); o: its constants,
 * stepped on to the next channel's. */
#define R3_RQ(I_, A_) \
    "ldmia %[o]!, {%[wa], %[wb], %[x]}\n\t" \
    "smmlar %[e], %[" #A_ "], %[wa], %[wb]\n\t" \
    "add %[" #A_ "], %[e], %[" #A_ "], asr #31\n\t" \
    "asr %[" #A_ "], %[" #A_ "], %[x]\n\t" \
    "ssat %[" #A_ "], #8, %[" #A_ "]\n\t"

/* run3x3 for the full int8 output range, in asm (GCC spills the accumulators and pointers of the C
 * loop): 113 instructions per pixel of four channels, 9 of them loads of weights and 6 of constants and
 * loop state (st: ystep, step, end, y; one LDM). 13 registers, those that LDM loads fixed in ascending
 * order (r0-r3: the accumulators, r4-r6: a channel's mult, round, right, or the first three of st); the
 * frame pointer of the firmware's builds (r7) stays free. */
static void run3x3_asm(const int8_t *xp, uint32_t rs, uint32_t c, uint32_t step, uint32_t n, const weights_t *w,
    int8_t *y, uint32_t ystep) {
    const uint32_t rs2 = 2 * rs;
    uint32_t st[4] = { ystep, step, (uint32_t)(uintptr_t)(xp + (size_t)n * step), (uint32_t)(uintptr_t)y };
    uint32_t *const stp = st;
    register int32_t a0 __asm__("r0"), a1 __asm__("r1"), a2 __asm__("r2"), a3 __asm__("r3");
    register uint32_t wa __asm__("r4"), wb __asm__("r5"), x __asm__("r6");
    int32_t e, o;
    const int8_t *row;
    __asm__ __volatile__("1:\n\t"     /* volatile: its effect is the stores */
            "ldm %[k], {%[a0], %[a1], %[a2], %[a3]}\n\t"
            "mov %[row], %[xp]\n\t"
            R3_ROW(0)
            "ldr %[row], %[rs]\n\t"
            "add %[row], %[row], %[xp]\n\t"
            R3_ROW(3)
            "ldr %[row], %[rs2]\n\t"
            "add %[row], %[row], %[xp]\n\t"
            R3_ROW(6)
            "add %[o], %[k], #16\n\t"
            R3_RQ(0, a0) R3_RQ(1, a1) R3_RQ(2, a2) R3_RQ(3, a3)
            "ldr %[o], %[stp]\n\t"
            "ldm %[o], {%[wa], %[wb], %[x], %[row]}\n\t"
            "strb %[a0], [%[row]]\n\t"
            "strb %[a1], [%[row], #1]\n\t"
            "strb %[a2], [%[row], #2]\n\t"
            "strb %[a3], [%[row], #3]\n\t"
            "add %[row], %[row], %[wa]\n\t"
            "str %[row], [%[o], #12]\n\t"
            "add %[xp], %[xp], %[wb]\n\t"
            "cmp %[xp], %[x]\n\t"
            "bne 1b"
            : [xp] "+r"(xp), [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3),
              [e] "=&r"(e), [o] "=&r"(o), [x] "=&r"(x), [wa] "=&r"(wa), [wb] "=&r"(wb), [row] "=&r"(row)
            : [k] "r"(w), [c] "r"(c), [rs] "m"(rs), [rs2] "m"(rs2), [stp] "m"(stp)
            : "memory", "cc");
}
#endif

#if !MCT_HWC_DSP
/* mct_hwc_rq_lean of v from a = 2v, as its DSP path computes it: z + round = floor((a M + 2^31) / 2^32) +
 * round, the high word of one multiply-accumulate (SMLAL on ARMv7-M), and the sign of v for that of z. */
MCT_HOT int8_t rq_twice(const mct_hwc_rqc_t *c, int32_t a, int32_t lo, int32_t hi) {
    const int32_t zr = (int32_t)((mct_mul64(a, c->mult) + (int64_t)((uint64_t)(uint32_t)c->round << 32 |
        0x80000000u)) >> 32);
    const int32_t r = (zr + (a >> 31)) >> c->right;
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
    if (__builtin_constant_p(lo) && __builtin_constant_p(hi) && lo == -128 && hi == 127) {
        return (int8_t)__ssat(r, 8);
    }
#endif
    return (int8_t)(r < lo ? lo : (r > hi ? hi : r));
}

/* 2 v, hidden from the compiler (which would multiply by v and double each product: two instructions). */
static inline int32_t twice(int32_t v) {
    v *= 2;
#if defined(__GNUC__)
    __asm__("" : "+r"(v));
#endif
    return v;
}

/* run3x3 on cores without the DSP extension, one channel at a time over `rows` runs (xrow bytes apart in
 * the input, yrow in the output): its nine weights and requantization constants stay in registers (four
 * channels' at once spill, and their loads with them). */
MCT_HOT void run3x3_chan(const int8_t *xp, uint32_t rs, uint32_t c, uint32_t step, uint32_t n, uint32_t rows,
    uint32_t xrow, const weights_t *w, const int32_t *start, const mct_hwc_rqc_t *rc, int32_t lo, int32_t hi,
    int8_t *y, uint32_t ystep, uint32_t yrow) {
    for (uint32_t i = 0; i < 4; i++, xp++, y++, w++) {      /* doubled: the accumulator is 2v */
        const int32_t w0 = twice(w[0]), w1 = twice(w[BLOCK]), w2 = twice(w[2 * BLOCK]), w3 = twice(w[3 * BLOCK]),
            w4 = twice(w[4 * BLOCK]), w5 = twice(w[5 * BLOCK]), w6 = twice(w[6 * BLOCK]), w7 = twice(w[7 * BLOCK]),
            w8 = twice(w[8 * BLOCK]);
        const uint32_t s0 = 2u * (uint32_t)start[i];
        const mct_hwc_rqc_t q = rc[i];
        for (uint32_t r = 0; r < rows; r++) {
            const int8_t *xq = xp + (size_t)r * xrow;
            int8_t *yq = y + (size_t)r * yrow;
            for (uint32_t m = n; m; m--, xq += step, yq += ystep) {
                const int8_t *r1 = xq + rs, *r2 = r1 + rs;
                uint32_t a = s0 + (uint32_t)(xq[0] * w0) + (uint32_t)(xq[c] * w1) + (uint32_t)(xq[2 * c] * w2);
                a += (uint32_t)(r1[0] * w3) + (uint32_t)(r1[c] * w4) + (uint32_t)(r1[2 * c] * w5);
                a += (uint32_t)(r2[0] * w6) + (uint32_t)(r2[c] * w7) + (uint32_t)(r2[2 * c] * w8);
                *yq = rq_twice(&q, (int32_t)a, lo, hi);
            }
        }
    }
}
#endif

MCT_HWC_LOOP void run3x3(const int8_t *xp, uint32_t rs, uint32_t c, uint32_t step, uint32_t n, const weights_t *w,
    int32_t xz, const int32_t *start, const mct_hwc_rqc_t *rc, int32_t lo, int32_t hi, int8_t *y, uint32_t ystep) {
    if (lo == -128 && hi == 127) {
#if MCT_HWC_DSP
        if (n) {
            run3x3_asm(xp, rs, c, step, n, w, y, ystep);
        }
#else
        (void)xz;       /* (start has x_zero folded in) */
        run3x3_chan(xp, rs, c, step, n, 1, 0, w, start, rc, -128, 127, y, ystep, 0);
#endif
    } else {
#if MCT_HWC_DSP
        run3x3_body(xp, rs, c, step, n, w, xz, start, rc, lo, hi, y, ystep, 0x1FFu);
#else
        run3x3_chan(xp, rs, c, step, n, 1, 0, w, start, rc, lo, hi, y, ystep, 0);
#endif
    }
}
#if MCT_HWC_DSP
MCT_HWC_LOOP void run3x3_masked(const int8_t *xp, uint32_t rs, uint32_t c, uint32_t step, uint32_t n,
    const weights_t *w, int32_t xz, const int32_t *start, const mct_hwc_rqc_t *rc, int32_t lo, int32_t hi, int8_t *y,
    uint32_t ystep, uint32_t mask) {
    if (lo == -128 && hi == 127) {
        run3x3_body(xp, rs, c, step, n, w, xz, start, rc, -128, 127, y, ystep, mask);
    } else {
        run3x3_body(xp, rs, c, step, n, w, xz, start, rc, lo, hi, y, ystep, mask);
    }
}
#endif

#if !MCT_HWC_DSP && BLOCK == 4
/* run3x3_chan over a small map's tile (pixel stride 4), the full int8 output range. */
MCT_HWC_LOOP void run3x3_rows(const void *tile, uint32_t rs, uint32_t step, uint32_t n, uint32_t rows, uint32_t xrow,
    const weights_t *w, const int32_t *start, const mct_hwc_rqc_t *rc, int8_t *y, uint32_t ystep, uint32_t yrow) {
    run3x3_chan((const int8_t *)tile, rs, 4, step, n, rows, xrow, w, start, rc, -128, 127, y, ystep, yrow);
}
#endif

#if BLOCK == 4
/* Small maps: the four channels' input that the window reads, copied with its padding (x_zero bytes,
 * which add nothing on either path) into a tile of at most this many pixels on the stack (4 bytes
 * each: 400 bytes, a 3x3/1 window over 8x8), so that every output row is one run of run3x3. */
#define TILE_MAX 100u

/* Cores without unaligned word loads (ARMv6-M) copy the tile a byte at a time: a strided window reads
 * too few of its pixels for that to pay, so they take the tile for stride 1 only. */
#if defined(__arm__) && !defined(__ARM_FEATURE_UNALIGNED)
#define TILE_STRIDED 0
#else
#define TILE_STRIDED 1
#endif

/* The tile's width, or 0 where the window's tile would pass TILE_MAX (or is strided where it must not be). */
static inline uint32_t tile_width(const mct_hwc_geom_t *g) {
    const uint32_t tw = (g->out_w - 1) * g->stride_w + 3, th = (g->out_h - 1) * g->stride_h + 3;
    return (TILE_STRIDED || (g->stride_w == 1 && g->stride_h == 1)) && g->out_w <= TILE_MAX &&
            g->out_h <= TILE_MAX && tw * th <= TILE_MAX ? tw : 0;
}

/* Channels c0 .. c0 + 3 of a 3x3 window over a small map (tile_width(g) = tw): the tile, then run3x3
 * per output row. c, rs: the input's pixel and row strides; ypix, yrow: the output's. */
MCT_HWC_LOOP void small_map(const int8_t *x, const mct_hwc_geom_t *g, uint32_t c, uint32_t rs, uint32_t ypix,
    uint32_t yrow, uint32_t tw, const weights_t *w, int32_t xz, const int32_t *start, const mct_hwc_rqc_t *rc,
    int32_t lo, int32_t hi, uint32_t c0, int8_t *y) {
    uint32_t tile[TILE_MAX];
    const uint32_t th = (g->out_h - 1) * g->stride_h + 3, pad = (uint32_t)(uint8_t)xz * 0x01010101u;
    const int32_t iy0 = (int32_t)(g->y0 * g->stride_h) - (int32_t)g->pad_h;
    const int32_t ix0 = (int32_t)(g->x0 * g->stride_w) - (int32_t)g->pad_w;
    /* the tile's columns inside the input: [k0, k1) */
    const uint32_t k0 = ix0 < 0 ? ((uint32_t)-ix0 < tw ? (uint32_t)-ix0 : tw) : 0;
    const int32_t in_right = (int32_t)g->in_w - ix0;
    const uint32_t k1 = in_right <= (int32_t)k0 ? k0 : ((uint32_t)in_right < tw ? (uint32_t)in_right : tw);
    uint32_t *t = tile;
    for (uint32_t r = 0; r < th; r++) {
        const int32_t iy = iy0 + (int32_t)r;
        uint32_t k = 0;
        if (iy >= 0 && iy < (int32_t)g->in_h) {
            for (; k < k0; k++) {
                *t++ = pad;
            }
            const int8_t *xr = x + (ptrdiff_t)(iy - (int32_t)g->in_y0) * (ptrdiff_t)rs +
                (ptrdiff_t)(ix0 + (int32_t)k0 - (int32_t)g->in_x0) * (ptrdiff_t)c + c0;
            for (; k < k1; k++, xr += c) {
                memcpy(t++, xr, 4);
            }
        }
        for (; k < tw; k++) {
            *t++ = pad;
        }
    }
#if MCT_HWC_DSP
    if (lo == -128 && hi == 127) {      /* the asm loop, a call a row */
        for (uint32_t oy = 0; oy < g->out_h; oy++) {
            run3x3_asm((const int8_t *)(const void *)(tile + (size_t)oy * g->stride_h * tw), tw * 4, 4,
                g->stride_w * 4, g->out_w, w, y + (size_t)oy * yrow + c0, ypix);
        }
        return;
    }
#else
    if (lo == -128 && hi == 127) {      /* every row in one call */
        run3x3_rows(tile, tw * 4, g->stride_w * 4, g->out_w, g->out_h, g->stride_h * tw * 4, w, start, rc, y + c0,
            ypix, yrow);
        return;
    }
#endif
    for (uint32_t oy = 0; oy < g->out_h; oy++) {
        run3x3((const int8_t *)(const void *)(tile + (size_t)oy * g->stride_h * tw), tw * 4, 4, g->stride_w * 4,
            g->out_w, w, xz, start, rc, lo, hi, y + (size_t)oy * yrow + c0, ypix);
    }
}
#endif

#if MCT_HWC_DSP
/* 3x3 windows with stride 1 across on DSP cores (any stride down, padding; rows of 4 outputs or more):
 * a block of four channels through a channel-planar tile of their x - x_zero values as int16 on the
 * stack (padding: 0), so that one word load gives two horizontally adjacent taps of a channel and SMLAD
 * does two MACs. The tile holds a segment of at most 32 outputs' columns (BT_COLS) of a band of input
 * rows; the next band's first rows, already in it, move up (each input row of a segment is converted
 * once). The channels take turns over the band's output rows, each with its weights and requantization
 * constants in registers (a small map is one segment and one band). Two output pixels of a channel per
 * step, per window row: P = (x0, x1), Q = (x1, x2), R = (x2, x3): pixel 0 P.(w0, w1) + x2 w2, pixel 1
 * Q.(w0, w1) + x3 w2 (Q: an unaligned word load, one instruction on ARMv7-M). The weights are doubled,
 * and so the accumulator is 2v, which the requantization's SMMLAR takes as it is. */
#define BT_COLS 36u             /* a segment's columns at most */
#define BT_VALUES 180u          /* per channel: the tile is 4 * 180 * 2 = 1440 bytes */
/* Its rows are 12, 20 or 36 columns apart (15, 9 or 5 rows): the narrowest that holds a row's segment, so
 * that a small map is one band. */

/* Halfword packs, one PKHBT / PKHTB each (GCC writes two): pkhbt16 (the low halves of a and b), pkhtb16
 * (the high halves of b and a), pkhbt0 (the low half of a, the high half of b). */
#define PKH(NAME_, OP_) \
    static inline uint32_t NAME_(uint32_t a, uint32_t b) { \
        uint32_t r; \
        __asm__(OP_ : "=r"(r) : "r"(a), "r"(b)); \
        return r; \
    }
PKH(pkhbt16, "pkhbt %0, %1, %2, lsl #16")
PKH(pkhtb16, "pkhtb %0, %1, %2, asr #16")
PKH(pkhbt0, "pkhbt %0, %1, %2")
#undef PKH

/* Column k of the four channels' rows t, t + cs, t + 2 cs, t + 3 cs: the pixel at xr, minus x_zero. */
static inline void bt_column(int16_t *t, uint32_t cs, uint32_t k, const int8_t *xr, int16x2_t xz2) {
    const uint32_t v = mct_hwc_rd32(xr);
    const uint32_t e = (uint32_t)__sxtab16(xz2, v), o = (uint32_t)sxtab16_ror8(xz2, v);
    t[k] = (int16_t)e;
    t[cs + k] = (int16_t)o;
    t[2 * cs + k] = (int16_t)(e >> 16);
    t[3 * cs + k] = (int16_t)(o >> 16);
}

/* The columns [k0, k1) of the columns [ix0, ix0 + cols) that lie inside a row of in_w. */
static inline void bt_inside(int32_t ix0, uint32_t cols, uint32_t in_w, uint32_t *k0, uint32_t *k1) {
    *k0 = ix0 < 0 ? ((uint32_t)-ix0 < cols ? (uint32_t)-ix0 : cols) : 0;
    const int32_t in_right = (int32_t)in_w - ix0;
    *k1 = in_right <= (int32_t)*k0 ? *k0 : ((uint32_t)in_right < cols ? (uint32_t)in_right : cols);
}

/* Columns [ix0, ix0 + cols) of the input rows iy .. iy + rows - 1, four channels from x on, minus x_zero
 * (0 outside the input), into the tile rows t, t + tc, ... of the channels' planes (cs apart; cols even,
 * or all inside the input). xz2: -x_zero in both halves. One call a band: the bounds once, no call per
 * row. */
/* (The zero runs are a column or two: GCC's memset calls for them cost more than the stores.) */
static __attribute__((optimize("no-tree-loop-distribute-patterns"))) void bt_fill(int16_t *t, uint32_t cs,
    uint32_t tc, uint32_t rows, const int8_t *x, const mct_hwc_geom_t *g, uint32_t c, uint32_t rs, int32_t iy,
    int32_t ix0, uint32_t cols, int16x2_t xz2) {
    uint32_t k0, k1;
    bt_inside(ix0, cols, g->in_w, &k0, &k1);
    const int8_t *xr = x + (ptrdiff_t)(iy - (int32_t)g->in_y0) * (ptrdiff_t)rs +
        (ptrdiff_t)(ix0 + (int32_t)k0 - (int32_t)g->in_x0) * (ptrdiff_t)c;
    for (; rows; rows--, iy++, t += tc, xr += rs) {
        uint32_t k = 0;
        if (iy < 0 || iy >= (int32_t)g->in_h) {        /* a padding row: zero words */
            for (; k < cols; k += 2) {
                memset(&t[k], 0, 4);
                memset(&t[cs + k], 0, 4);
                memset(&t[2 * cs + k], 0, 4);
                memset(&t[3 * cs + k], 0, 4);
            }
            continue;
        }
        for (; k < k0; k++) {
            t[k] = t[cs + k] = t[2 * cs + k] = t[3 * cs + k] = 0;
        }
        const int8_t *xp = xr;
        int16_t *d = t + k;
        const int16_t *const dend = t + k + ((k1 - k) & ~1u);
        for (; d != dend; d += 2, xp += 2 * c) {        /* two columns: word stores (aligned or not) */
            const uint32_t u = mct_hwc_rd32(xp), v = mct_hwc_rd32(xp + c);
            const uint32_t e0 = (uint32_t)__sxtab16(xz2, u), o0 = (uint32_t)sxtab16_ror8(xz2, u);
            const uint32_t e1 = (uint32_t)__sxtab16(xz2, v), o1 = (uint32_t)sxtab16_ror8(xz2, v);
            const uint32_t p0 = pkhbt16(e0, e1), p1 = pkhbt16(o0, o1), p2 = pkhtb16(e1, e0), p3 = pkhtb16(o1, o0);
            memcpy(d, &p0, 4);
            memcpy(d + cs, &p1, 4);
            memcpy(d + 2 * cs, &p2, 4);
            memcpy(d + 3 * cs, &p3, 4);
        }
        k += (k1 - k) & ~1u;
        if (k < k1) {
            bt_column(t, cs, k, xp, xz2);
            k++;
        }
        for (; k < cols; k++) {
            t[k] = t[cs + k] = t[2 * cs + k] = t[3 * cs + k] = 0;
        }
    }
}

/* bytes (a multiple of 8) from `from` up to `to` (4-aligned; from past to, or apart): four words an
 * LDM/STM pair (GCC copies a word in about four instructions). */
static inline void bt_move(uint8_t *to, const uint8_t *from, uint32_t bytes) {
    const uint8_t *const end = from + (bytes & ~15u);
    register uint32_t r0 __asm__("r2"), r1 __asm__("r3"), r2 __asm__("r4"), r3 __asm__("r5");
    while (from != end) {
        __asm__("ldmia %[f]!, {%[a], %[b], %[c], %[d]}\n\t"
                "stmia %[t]!, {%[a], %[b], %[c], %[d]}"
                : [f] "+r"(from), [t] "+r"(to), [a] "=&r"(r0), [b] "=&r"(r1), [c] "=&r"(r2), [d] "=&r"(r3)
                : : "memory");
    }
    if (bytes & 8u) {
        memcpy(to, from, 8);
    }
}

static inline uint32_t bt_ld(const int16_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* One channel's constants: per window row r (2 w0, 2 w1) in w01[r], (2 w1, 2 w2) in w12[r]; the doubled
 * bias twice (one LDRD starts both accumulators); the lean
 * requantization's (mct_hwc_rqc_t): mult and round (one LDRD), right. */
typedef struct {
    uint32_t w01[3], w12[3];
    int32_t bias2[2], mr[2], right;
} bt_chan_t;

/* y = clamp(requant(v) + zero) from a = 2v (mct_hwc_rq_lean on DSP cores, the doubling done). */
MCT_HOT int8_t bt_rq(int32_t a, const bt_chan_t *k, int32_t lo, int32_t hi) {
    int32_t zr;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(zr) : "r"(a), "r"(k->mr[0]), "r"(k->mr[1]));
    const int32_t r = (zr + (a >> 31)) >> k->right;
    return (int8_t)(r < lo ? lo : (r > hi ? hi : r));
}

/* One output pixel of stride-1 or -2 rows at p (tc apart): P.(w0, w1) + x2 w2 per row. */
MCT_HOT int32_t bt_one(const int16_t *p, uint32_t tc, const bt_chan_t *k) {
    int32_t a = __smlabt(bt_ld(p + 2), k->w12[0], __smlad(bt_ld(p), k->w01[0], k->bias2[0]));
    a = __smlabt(bt_ld(p + tc + 2), k->w12[1], __smlad(bt_ld(p + tc), k->w01[1], a));
    return __smlabt(bt_ld(p + 2 * tc + 2), k->w12[2], __smlad(bt_ld(p + 2 * tc), k->w01[2], a));
}

/* Pairs of output pixels in asm (GCC spills the twelve values that stay in registers): per window row
 * (tile row at p + OFF_ bytes; row 0's first load steps p on to the next pair, LD0_) two aligned loads,
 * P = (x0, x1) and R = (x2, x3), and four multiply-adds: pixel 0 P.(w0, w1) + x2 w2, pixel 1
 * R.(w1, w2) + x1 w0; then both requantized (full int8 range: SSAT) and stored ypix apart, 35
 * instructions for 18 MACs. Operands: p, y, the weights w0 w1 w2 (w01) and v0 v1 v2 (w12), in memory
 * end (p's value after the last pair) and the constants bias, mr, rys (right, ypix), scratch a0 a1 t u f:
 * 13 registers, which leaves one for a frame pointer (the firmware's builds) and one for the stack's
 * base. */
#define BT_LD(OFF_) "ldr %[t], [%[p], #" #OFF_ "]\n\t"
#define BT_ROW1(LD0_, OFF_, W_, V_) \
    LD0_ \
    "ldr %[u], [%[p], #(" #OFF_ ") + 4]\n\t" \
    "smlad %[a0], %[t], %[" #W_ "], %[a0]\n\t" \
    "smlatb %[a1], %[t], %[" #W_ "], %[a1]\n\t" \
    "smlad %[a1], %[u], %[" #V_ "], %[a1]\n\t" \
    "smlabt %[a0], %[u], %[" #V_ "], %[a0]\n\t"
#define BT_RQ2 \
    "ldrd %[t], %[u], %[mr]\n\t" \
    "smmlar %[f], %[a0], %[t], %[u]\n\t" \
    "add %[f], %[f], %[a0], asr #31\n\t" \
    "smmlar %[a0], %[a1], %[t], %[u]\n\t" \
    "add %[a0], %[a0], %[a1], asr #31\n\t" \
    "ldrd %[t], %[u], %[rys]\n\t" \
    "asr %[f], %[f], %[t]\n\t" \
    "asr %[a0], %[a0], %[t]\n\t" \
    "ssat %[f], #8, %[f]\n\t" \
    "ssat %[a0], #8, %[a0]\n\t" \
    "strb %[f], [%[y]]\n\t" \
    "strb %[a0], [%[y], %[u]]\n\t" \
    "add %[y], %[y], %[u], lsl #1\n\t"
#define BT_OPERANDS \
    : [p] "+r"(p), [y] "+r"(y), [a0] "=&r"(a0), [a1] "=&r"(a1), [t] "=&r"(t), [u] "=&r"(u), [f] "=&r"(f), \
      [end] "+m"(end) \
    : [rys] "m"(rys), [w0] "r"(k.w01[0]), [w1] "r"(k.w01[1]), [w2] "r"(k.w01[2]), [v0] "r"(k.w12[0]), \
      [v1] "r"(k.w12[1]), [v2] "r"(k.w12[2]), [bias] "m"(k.bias2), [mr] "m"(k.mr)

/* The pairs of one output row in asm (p steps 4 bytes a pair), tile rows B_ bytes apart; ROW_END_: what
 * follows a row's last pair. */
#define BT_PAIRS(B_, ROW_END_, ...) \
    __asm__ __volatile__("1:\n\t" /* volatile: its effect is the stores */ \
            "ldrd %[a0], %[a1], %[bias]\n\t" \
            BT_ROW1("ldr %[t], [%[p]], #4\n\t", -4, w0, v0) \
            BT_ROW1(BT_LD(B_ - 4), B_ - 4, w1, v1) \
            BT_ROW1(BT_LD(2 * B_ - 4), 2 * B_ - 4, w2, v2) \
            BT_RQ2 \
            "ldr %[t], %[end]\n\t" \
            "cmp %[p], %[t]\n\t" \
            "bne 1b\n\t" \
            ROW_END_ \
            BT_OPERANDS, ##__VA_ARGS__ : "memory", "cc")
/* After a row: p, y and end on to the next row (prow, yadj and erow bytes), until `left` rows are done. */
#define BT_NEXT_ROW \
    "ldr %[t], %[prow]\n\t" \
    "add %[p], %[p], %[t]\n\t" \
    "ldr %[t], %[yadj]\n\t" \
    "add %[y], %[y], %[t]\n\t" \
    "ldr %[t], %[end]\n\t" \
    "ldr %[u], %[erow]\n\t" \
    "add %[t], %[t], %[u]\n\t" \
    "str %[t], %[end]\n\t" \
    "ldr %[t], %[left]\n\t" \
    "subs %[t], %[t], #1\n\t" \
    "str %[t], %[left]\n\t" \
    "bne 1b"

/* One channel over `rows` output rows of n pixels: output row j reads the tile rows from t + j * sh *
 * tc on (tc: 12, 20 or 36); y: its first output, ypix and yrow apart. An even n with the full int8 output
 * range: every row in one asm loop; else a row at a time, its odd pixel and a clamp in C. */
MCT_HWC_LOOP void bt_rows(const int16_t *t, uint32_t tc, uint32_t sh, uint32_t rows, uint32_t n,
    const bt_chan_t *kc, int32_t lo, int32_t hi, int8_t *y0, uint32_t ypix, uint32_t yrow) {
    const bt_chan_t k = *kc;
    const int32_t rys[2] = { k.right, (int32_t)ypix };     /* one LDRD */
    const int full = lo == -128 && hi == 127;
    int32_t a0, a1, f;
    uint32_t u;
    if (full && n >= 2 && !(n & 1u)) {
        const int16_t *p = t, *end = t + n;
        int8_t *y = y0;
        const uint32_t prow = (sh * tc - n) * 2, yadj = yrow - n * ypix, erow = sh * tc * 2;
        uint32_t left = rows, t;
#define BT_ALL_ROWS(B_) BT_PAIRS(B_, BT_NEXT_ROW, [prow] "m"(prow), [yadj] "m"(yadj), [erow] "m"(erow), \
            [left] "m"(left))
        switch (tc) {
        case 12: BT_ALL_ROWS(24); break;
        case 20: BT_ALL_ROWS(40); break;
        default: BT_ALL_ROWS(72); break;
        }
        return;
    }
    for (uint32_t j = 0; j < rows; j++, t += sh * tc, y0 += yrow) {
        const int16_t *p = t;
        int8_t *y = y0;
        uint32_t m = n;
        if (full && m >= 2) {
            const int16_t *end = p + (m / 2) * 2;
            uint32_t t;
            switch (tc) {
            case 12: BT_PAIRS(24, ""); break;
            case 20: BT_PAIRS(40, ""); break;
            default: BT_PAIRS(72, ""); break;
            }
            m &= 1u;
        }
        for (; m; m--, p++, y += ypix) {
            *y = bt_rq(bt_one(p, tc, &k), &k, lo, hi);
        }
    }
}

/* A channel's nine weights wc into k's w01 and w12, doubled: per window row a word load (row 0 at wc,
 * bytes w0 w1 w2 -; rows 1 and 2 a byte before, - w0 w1 w2: no byte past the channel's nine), two
 * SXTB16, two PKH and two SADD16. */
static inline void bt_weights(bt_chan_t *k, const int8_t *wc) {
    const uint32_t v = mct_hwc_rd32(wc);
    const uint32_t e = (uint32_t)__sxtb16(v), o = (uint32_t)mct_sxtb16_ror8(v);     /* (w0, w2), (w1, -) */
    const uint32_t w01 = pkhbt16(e, o), w12 = pkhbt0(o, e);
    k->w01[0] = (uint32_t)__sadd16(w01, w01);
    k->w12[0] = (uint32_t)__sadd16(w12, w12);
    for (uint32_t r = 1; r < 3; r++) {
        const uint32_t u = mct_hwc_rd32(wc + 3 * r - 1);
        const uint32_t eu = (uint32_t)__sxtb16(u), ou = (uint32_t)mct_sxtb16_ror8(u);  /* (-, w1), (w0, w2) */
        const uint32_t w01 = pkhbt0(ou, eu), w12 = pkhtb16(ou, eu);
        k->w01[r] = (uint32_t)__sadd16(w01, w01);
        k->w12[r] = (uint32_t)__sadd16(w12, w12);
    }
}

/* Whether band_block takes g: a 3x3 window with stride 1 across, rows of 4 outputs or more (4x4x336:
 * 4.62 instructions/MAC against 5.46 through the small-map tile and run3x3_asm). (A stride-2 variant
 * of the same asm measured slower than run3x3_asm: 4.24 against 3.63 on 64x64x48, when the tile's fill
 * cost ~2.5 instructions a value for ~2.25 MACs.) */
static inline int band_fits(const mct_hwc_geom_t *g) {
    return g->kh == 3 && g->kw == 3 && g->stride_w == 1 && g->out_w >= 4;
}

/* The groups of four channels from c0 on, up to c1 (a multiple of 4 past c0), of a geometry that
 * band_fits, as long as their requantization is the lean one: returns the first channel not done (c1
 * when all are; else block runs that group, and band_block the rest). The geometry's set-up once for
 * all groups. Called instead of block, not from it, so that the stack holds one of their frames, not
 * both. */
static __attribute__((noinline)) uint32_t band_block(const int8_t *x, const mct_hwc_geom_t *g, const int8_t *w,
    const mct_hwc_quant_t *q, uint32_t c0, uint32_t c1, int8_t *y) {
    const uint64_t bound = mct_acc_bound(9, q->x_zero);
    uint32_t c, rs, ypix, yrow;
    mct_hwc_strides(g, g->in_c, g->in_c, &c, &rs, &ypix, &yrow);
    int16_t tile[4 * BT_VALUES] __attribute__((aligned(4)));     /* [channel][row][column] */
    const int16x2_t xz2 = (int16x2_t)(((uint32_t)-q->x_zero & 0xFFFFu) * 0x10001u);
    const int full = q->act_min == -128 && q->act_max == 127;
    const uint32_t sh = g->stride_h, seg = BT_COLS - 4;        /* even: rows without an odd pixel */
    const uint32_t n0 = g->out_w < seg ? g->out_w : seg, need = (n0 + 4) & ~1u;
    const uint32_t tc = need <= 12 ? 12 : need <= 20 ? 20 : 36, tr = BT_VALUES / tc;
    const uint32_t band = sh < tr - 2 ? (tr - 3) / sh + 1 : 1;  /* output rows per band */
    const uint32_t c_first = c0;
    for (; c0 + 4 <= c1; c0 += 4) {
        bt_chan_t kc[4];
        for (uint32_t i = 0; i < 4; i++) {
            const uint32_t k = c0 + i;
            mct_hwc_rqc_t rc;
            if (!mct_hwc_rq_constants(&rc, q->bias[k], bound, q->mult[k], q->shift[k], q->y_zero, q->act_min,
                    q->act_max)) {
                return c0;
            }
            bt_weights(&kc[i], w + (size_t)k * 9);
            kc[i].bias2[0] = kc[i].bias2[1] = (int32_t)((uint32_t)q->bias[k] * 2u);
            kc[i].mr[0] = rc.mult;
            kc[i].mr[1] = rc.round;
            kc[i].right = rc.right;
        }
        const int8_t *const xc = x + c0;
        /* one segment and one band (a small map): every group's tile has its padding in the same place,
         * written by the first group's fill only */
        const int pads = c0 == c_first || g->out_w > seg || g->out_h > band;
        for (uint32_t ox0 = 0; ox0 < g->out_w; ox0 += seg) {
            /* the columns read: n + 2 by pairs (full range), n + 3 by bt_one's last load (an odd pixel, or
             * every pixel of a clamped range) */
            const uint32_t n = g->out_w - ox0 < seg ? g->out_w - ox0 : seg, cols = (n + 3 + !full) & ~1u;
            const int32_t ix0 = (int32_t)(g->x0 + ox0) - (int32_t)g->pad_w;
            int8_t *ys = y + (size_t)ox0 * ypix + c0;
            int32_t first = 0, next = INT32_MIN;       /* the input rows in the tile: [first, next) */
            for (uint32_t oy0 = 0; oy0 < g->out_h; oy0 += band) {
                const uint32_t rows = g->out_h - oy0 < band ? g->out_h - oy0 : band, span = (rows - 1) * sh + 3;
                const int32_t iy = (int32_t)((g->y0 + oy0) * sh) - (int32_t)g->pad_h;
                /* the rows in the tile already, further down: moved up, whole rows (tc / 2 words, an even
                 * count), in ascending order (the source lies a row or more past the destination) */
                const uint32_t k = next <= iy ? 0 : (uint32_t)(next - iy) < span ? (uint32_t)(next - iy) : span;
                if (k) {
                    const uint32_t bytes = k * tc * 2;
                    const uint8_t *from = (const uint8_t *)(tile + (uint32_t)(iy - first) * tc);
                    uint8_t *to = (uint8_t *)tile;
                    for (uint32_t i = 0; i < 4; i++, from += 2 * BT_VALUES, to += 2 * BT_VALUES) {
                        bt_move(to, from, bytes);
                    }
                }
                if (!pads) {      /* the input's rows and columns only: the padding is in place */
                    uint32_t k0, k1;
                    bt_inside(ix0, cols, g->in_w, &k0, &k1);
                    const int32_t r0 = iy < 0 ? 0 : iy, r1 = iy + (int32_t)span < (int32_t)g->in_h ?
                        iy + (int32_t)span : (int32_t)g->in_h;
                    if (r1 > r0 && k1 > k0) {
                        bt_fill(tile + (uint32_t)(r0 - iy) * tc + k0, BT_VALUES, tc, (uint32_t)(r1 - r0), xc, g, c,
                            rs, r0, ix0 + (int32_t)k0, k1 - k0, xz2);
                    }
                } else if (k < span) {
                    bt_fill(tile + k * tc, BT_VALUES, tc, span - k, xc, g, c, rs, iy + (int32_t)k, ix0, cols, xz2);
                }
                first = iy;
                next = iy + (int32_t)span;
                for (uint32_t i = 0; i < 4; i++) {
                    bt_rows(tile + i * BT_VALUES, tc, sh, rows, n, &kc[i], q->act_min, q->act_max,
                        ys + (size_t)oy0 * yrow + i, ypix, yrow);
                }
            }
        }
    }
    return c0;
}
#endif

static inline uint32_t first_tap(int32_t at) {
    return at < 0 ? (uint32_t)-at : 0;
}
static inline uint32_t end_tap(int32_t at, uint32_t k, uint32_t n) {
    const int32_t left = (int32_t)n - at;                       /* input positions from at on */
    return left <= 0 ? 0 : ((uint32_t)left < k ? (uint32_t)left : k);
}

/* An output pixel's nb channels from their accumulators; fast: four channels, the lean requantization
 * with the full output range (its constants: one SSAT each). */
static inline void store(int8_t *yp, const int32_t *acc, const mct_hwc_rqc_t *rc, const mct_rq_t *rq, uint32_t nb,
    int lean, int fast) {
    if (fast) {
        for (uint32_t i = 0; i < 4; i++) {
            yp[i] = mct_hwc_rq(&rc[i], &rq[i], 2, acc[i]);
        }
    } else {
        for (uint32_t i = 0; i < nb; i++) {
            yp[i] = mct_hwc_rq(&rc[i], &rq[i], lean, acc[i]);
        }
    }
}

/* Channels c0 .. c0 + nb - 1 over every output pixel of the window. */
MCT_HWC_LOOP void block(const int8_t *x, const mct_hwc_geom_t *g, const int8_t *w, const mct_hwc_quant_t *q,
    uint32_t c0, uint32_t nb, int8_t *y) {
    uint32_t c, rs, ypix, yrow;
    mct_hwc_strides(g, g->in_c, g->in_c, &c, &rs, &ypix, &yrow);
    const uint32_t taps_n = g->kh * g->kw;
    const uint64_t bound = mct_acc_bound(taps_n, q->x_zero);
    mct_rq_t rq[BLOCK];
    mct_hwc_rqc_t rc[BLOCK];
    const int quad = nb == 4 && BLOCK == 4;
    /* DSP: four channels take the unpacked weights and subtract x_zero as they unpack */
    const int unpacked = MCT_HWC_DSP && quad;
#if MCT_HWC_DSP
    int16x2_t wq[2 * MCT_HWC_TAPS_MAX];         /* unpacked: per tap channels (0, 2), then (1, 3) */
    int8_t *const wl = (int8_t *)wq;    /* else: the weights as bytes, tap-major, zero past nb */
    if (unpacked) {
        const int8_t *w0 = w + (size_t)c0 * taps_n;
        for (uint32_t t = 0; t < taps_n; t++) {
            wq[2 * t] = (int16x2_t)((uint16_t)w0[t] | (uint32_t)w0[2 * taps_n + t] << 16);
            wq[2 * t + 1] = (int16x2_t)((uint16_t)w0[taps_n + t] | (uint32_t)w0[3 * taps_n + t] << 16);
        }
    } else
#else
    int8_t wl[MCT_HWC_TAPS_MAX * BLOCK];        /* the block's weights, tap-major, zero past nb */
#endif
    for (uint32_t t = 0; t < taps_n; t++) {
        for (uint32_t i = 0; i < BLOCK; i++) {
            wl[t * BLOCK + i] = i < nb ? w[(size_t)(c0 + i) * taps_n + t] : 0;
        }
    }
    int32_t start[BLOCK];       /* an interior pixel's accumulator start: bias - x_zero * sum(w) */
    int lean = 1;
    for (uint32_t i = 0; i < nb; i++) {
        const uint32_t k = c0 + i;
        lean &= mct_hwc_rq_lean_init(&rc[i], &rq[i], q->bias[k], bound, q->mult[k], q->shift[k], q->y_zero,
            q->act_min, q->act_max);
        start[i] = (int32_t)((uint32_t)q->bias[k] -
            (unpacked ? 0u : mct_hwc_xzw_strided(wl + i, taps_n, BLOCK, q->x_zero)));
    }
    for (uint32_t i = 0; !lean && i < nb; i++) {      /* the reference requantization's constants */
        mct_rq_init(&rq[i], q->bias[c0 + i], bound, q->mult[c0 + i], q->shift[c0 + i], q->y_zero, q->act_min,
            q->act_max);
    }
    /* runs of interior pixels (from the first output column whose window starts inside the input up to
     * last_in, the last whose window ends inside) go through run3x3 */
    const int full = q->act_min == -128 && q->act_max == 127;
    const int runs = quad && lean && g->kh == 3 && g->kw == 3;
    const int32_t last_in = ((int32_t)g->in_w - 3 + (int32_t)g->pad_w) / (int32_t)g->stride_w - (int32_t)g->x0;
    /* the same for any kw (read where a window lies inside: the dividend is not negative there) */
    const int32_t last_wide = ((int32_t)g->in_w - (int32_t)g->kw + (int32_t)g->pad_w) / (int32_t)g->stride_w -
        (int32_t)g->x0;
    (void)last_wide;
#if MCT_HWC_DSP
    const int16x2_t xz2 = (int16x2_t)(((uint32_t)-q->x_zero & 0xFFFFu) * 0x10001u);
    weights_t wk;
    const weights_t *wr = &wk;
    const int32_t *rstart = q->bias + c0;
    if (runs) {
        int16x2_t s02 = 0, s13 = 0;     /* the channels' sums of weights (|sum| <= 9 * 128: int16) */
        for (uint32_t t = 0; t < 18; t += 2) {
            s02 = __sadd16(s02, wq[t]);
            s13 = __sadd16(s13, wq[t + 1]);
            wk.w2[t] = __sadd16(wq[t], wq[t]);
            wk.w2[t + 1] = __sadd16(wq[t + 1], wq[t + 1]);
        }
        const int32_t sum[4] = { (int16_t)s02, (int16_t)s13, (int16_t)((uint32_t)s02 >> 16),
            (int16_t)((uint32_t)s13 >> 16) };
        for (uint32_t i = 0; i < 4; i++) {
            wk.start2[i] = (int32_t)(2u * ((uint32_t)q->bias[c0 + i] - (uint32_t)q->x_zero * (uint32_t)sum[i]));
            wk.rq[i][0] = rc[i].mult;
            wk.rq[i][1] = rc[i].round;
            wk.rq[i][2] = rc[i].right;
        }
        wk.wq = wq;
    }
#else
    const weights_t *wr = wl;
    const int32_t *rstart = start;
#endif
#if BLOCK == 4
    const uint32_t tw = runs ? tile_width(g) : 0;
    if (tw) {
        small_map(x, g, c, rs, ypix, yrow, tw, wr, q->x_zero, rstart, rc, q->act_min, q->act_max, c0, y);
        return;
    }
#endif
    for (uint32_t oy = 0; oy < g->out_h; oy++) {
        const int32_t iy = (int32_t)((g->y0 + oy) * g->stride_h) - (int32_t)g->pad_h;
        const uint32_t ky0 = first_tap(iy), ky1 = end_tap(iy, g->kh, g->in_h);
        /* a 3x3 window's rows inside the input as tap-mask bits (row r: bit 3r) */
        const uint32_t rows = ky1 > ky0 ? (1u << ky1) - (1u << ky0) : 0;
        const uint32_t row_taps = (rows & 1u) | (rows & 2u) << 2 | (rows & 4u) << 4;
        (void)row_taps;
        int8_t *yp = y + (size_t)oy * yrow + c0;
        for (uint32_t ox = 0; ox < g->out_w;) {
            const int32_t ix = (int32_t)((g->x0 + ox) * g->stride_w) - (int32_t)g->pad_w;
            const uint32_t kx0 = first_tap(ix), kx1 = end_tap(ix, g->kw, g->in_w);
            /* tap (0, 0) of this pixel: outside the window where padded, only taps inside are read */
            const int8_t *xp = x + (ptrdiff_t)(iy - (int32_t)g->in_y0) * (ptrdiff_t)rs +
                (ptrdiff_t)(ix - (int32_t)g->in_x0) * (ptrdiff_t)c + c0;
            const int inside = ky0 == 0 && kx0 == 0 && ky1 == g->kh && kx1 == g->kw;
            /* a run of output pixels up to the last whose window ends inside the input */
            const uint32_t run_n =
                (uint32_t)(last_in < (int32_t)g->out_w - 1 ? last_in : (int32_t)g->out_w - 1) + 1 - ox;
            if (runs && inside) {
                run3x3(xp, rs, c, g->stride_w * c, run_n, wr, q->x_zero, rstart, rc, q->act_min, q->act_max, yp,
                    ypix);
                ox += run_n;
                yp += (size_t)run_n * ypix;
                continue;
            }
#if MCT_HWC_DSP
            if (unpacked && inside && g->kw != 3) {     /* a run of interior pixels: taps4's whole rows */
                const uint32_t n = (uint32_t)(last_wide < (int32_t)g->out_w - 1 ? last_wide : (int32_t)g->out_w - 1)
                    + 1 - ox;
                const int fast = lean && full;
                for (uint32_t j = 0; j < n; j++, xp += g->stride_w * c, yp += ypix) {
                    int32_t acc[4];
                    memcpy(acc, q->bias + c0, sizeof acc);
                    taps4(xp, rs, c, wq, g->kw, 0, g->kh, 0, g->kw, xz2, acc);
                    store(yp, acc, rc, rq, 4, lean, fast);
                }
                ox += n;
                continue;
            }
            if (runs) {     /* a border pixel, or a run of them along a row of the border */
                const uint32_t cols = kx1 > kx0 ? (1u << kx1) - (1u << kx0) : 0;
                const uint32_t n = cols == 7u ? run_n : 1;
                run3x3_masked(xp, rs, c, g->stride_w * c, n, wr, q->x_zero, rstart, rc, q->act_min, q->act_max,
                    yp, ypix, cols * row_taps);
                ox += n;
                yp += (size_t)n * ypix;
                continue;
            }
#endif
            int32_t acc[BLOCK];
#if MCT_HWC_DSP
            if (unpacked) {
                memcpy(acc, q->bias + c0, sizeof(int32_t) * BLOCK);
                taps4(xp, rs, c, wq, g->kw, ky0, ky1, kx0, kx1, xz2, acc);
            } else
#endif
            if (nb == BLOCK && inside) {
                memcpy(acc, start, sizeof start);
                taps(xp, rs, c, wl, g->kw, 0, g->kh, 0, g->kw, 0, BLOCK, acc);
            } else {
                memcpy(acc, q->bias + c0, sizeof(int32_t) * nb);
                taps(xp, rs, c, wl, g->kw, ky0, ky1, kx0, kx1, q->x_zero, nb, acc);
            }
            store(yp, acc, rc, rq, nb, lean, quad && lean && full);
            ox++;
            yp += ypix;
        }
    }
}

#if MCT_HWC_SSE2
/* x86-64 hosts: eight channels c0 .. c0 + 7 over every output pixel, int16 products. Interior pixels
 * (the whole window inside the input) multiply raw values, two taps per PMADDWD (their inputs
 * interleaved channel by channel, the weights the same way once per call); border pixels subtract
 * x_zero per tap inside the input (|x - x_zero| <= 255: the int16 product is exact). */
MCT_HWC_LOOP void block8(const int8_t *x, const mct_hwc_geom_t *g, const int8_t *w, const mct_hwc_quant_t *q,
    uint32_t c0, int8_t *y) {
    uint32_t c, rs, ypix, yrow;
    mct_hwc_strides(g, g->in_c, g->in_c, &c, &rs, &ypix, &yrow);
    const uint32_t taps_n = g->kh * g->kw, pairs = (taps_n + 1) / 2;
    const uint64_t bound = mct_acc_bound(taps_n, q->x_zero);
    mct_rq_t rq[8];
    mct_hwc_rqc_t rc[8];
    int32_t start[8];
    int16_t wt[MCT_HWC_TAPS_MAX + 1][8];        /* tap-major, widened; a zero tap ends an odd count */
    ptrdiff_t off[MCT_HWC_TAPS_MAX + 1];         /* each tap's input offset from tap (0, 0) */
    __m128i wp[MCT_HWC_TAPS_MAX + 1];           /* pair j: channels 0-3 at 2j, 4-7 at 2j + 1 */
    for (uint32_t t = 0; t <= taps_n; t++) {
        for (uint32_t i = 0; i < 8; i++) {
            wt[t][i] = (int16_t)(t < taps_n ? w[(size_t)(c0 + i) * taps_n + t] : 0);
        }
        off[t] = t < taps_n ? (ptrdiff_t)(t / g->kw) * (ptrdiff_t)rs + (ptrdiff_t)(t % g->kw) * (ptrdiff_t)c : 0;
    }
    for (uint32_t j = 0; j < pairs; j++) {
        const __m128i a = _mm_loadu_si128((const __m128i *)(const void *)wt[2 * j]);
        const __m128i b = _mm_loadu_si128((const __m128i *)(const void *)wt[2 * j + 1]);
        wp[2 * j] = _mm_unpacklo_epi16(a, b);
        wp[2 * j + 1] = _mm_unpackhi_epi16(a, b);
    }
    int lean = 1;
    for (uint32_t i = 0; i < 8; i++) {
        const uint32_t k = c0 + i;
        mct_rq_init(&rq[i], q->bias[k], bound, q->mult[k], q->shift[k], q->y_zero, q->act_min, q->act_max);
        lean = mct_hwc_rq_prepare(&rc[i], &rq[i], q->bias[k], bound) && lean;
        start[i] = (int32_t)((uint32_t)q->bias[k] - mct_hwc_xzw_strided(w + (size_t)k * taps_n, taps_n, 1, q->x_zero));
    }
    mct_sse2_rq_t r0, r1;           /* read on the lean path only; set either way (the compiler's check) */
    mct_sse2_rq_init(&r0, rc, 4, q->act_min, q->act_max);
    mct_sse2_rq_init(&r1, rc + 4, 4, q->act_min, q->act_max);
    const __m128i start0 = _mm_loadu_si128((const __m128i *)(const void *)start);
    const __m128i start1 = _mm_loadu_si128((const __m128i *)(const void *)(start + 4));
    const __m128i bias0 = _mm_loadu_si128((const __m128i *)(const void *)(q->bias + c0));
    const __m128i bias1 = _mm_loadu_si128((const __m128i *)(const void *)(q->bias + c0 + 4));
    const __m128i xz = _mm_set1_epi16((int16_t)q->x_zero);
    for (uint32_t oy = 0; oy < g->out_h; oy++) {
        const int32_t iy = (int32_t)((g->y0 + oy) * g->stride_h) - (int32_t)g->pad_h;
        const uint32_t ky0 = first_tap(iy), ky1 = end_tap(iy, g->kh, g->in_h);
        int8_t *yp = y + (size_t)oy * yrow + c0;
        for (uint32_t ox = 0; ox < g->out_w; ox++, yp += ypix) {
            const int32_t ix = (int32_t)((g->x0 + ox) * g->stride_w) - (int32_t)g->pad_w;
            const uint32_t kx0 = first_tap(ix), kx1 = end_tap(ix, g->kw, g->in_w);
            const int8_t *xp = x + (ptrdiff_t)(iy - (int32_t)g->in_y0) * (ptrdiff_t)rs +
                (ptrdiff_t)(ix - (int32_t)g->in_x0) * (ptrdiff_t)c + c0;
            __m128i a0, a1;
            if (ky0 == 0 && kx0 == 0 && ky1 == g->kh && kx1 == g->kw) {
                a0 = start0;
                a1 = start1;
                for (uint32_t j = 0; j < pairs; j++) {
                    const __m128i u = _mm_loadl_epi64((const __m128i *)(const void *)(xp + off[2 * j]));
                    const __m128i v = _mm_loadl_epi64((const __m128i *)(const void *)(xp + off[2 * j + 1]));
                    const __m128i uv = _mm_unpacklo_epi8(u, v);     /* u0 v0 u1 v1 ... */
                    const __m128i lo = _mm_srai_epi16(_mm_unpacklo_epi8(uv, uv), 8);
                    const __m128i hi = _mm_srai_epi16(_mm_unpackhi_epi8(uv, uv), 8);
                    a0 = _mm_add_epi32(a0, _mm_madd_epi16(lo, wp[2 * j]));
                    a1 = _mm_add_epi32(a1, _mm_madd_epi16(hi, wp[2 * j + 1]));
                }
            } else {
                a0 = bias0;
                a1 = bias1;
                for (uint32_t ky = ky0; ky < ky1; ky++) {
                    for (uint32_t kx = kx0; kx < kx1; kx++) {
                        const uint32_t t = ky * g->kw + kx;
                        const __m128i d = _mm_sub_epi16(mct_sse2_s8x8(xp + off[t]), xz);
                        const __m128i p = _mm_mullo_epi16(d, _mm_loadu_si128((const __m128i *)(const void *)wt[t]));
                        a0 = _mm_add_epi32(a0, _mm_srai_epi32(_mm_unpacklo_epi16(p, p), 16));
                        a1 = _mm_add_epi32(a1, _mm_srai_epi32(_mm_unpackhi_epi16(p, p), 16));
                    }
                }
            }
            if (lean) {
                const __m128i h = _mm_packs_epi32(mct_sse2_rq4(&r0, a0), mct_sse2_rq4(&r1, a1));
                const __m128i b = _mm_packs_epi16(_mm_min_epi16(_mm_max_epi16(h, r0.lo), r0.hi), h);
                _mm_storel_epi64((__m128i *)(void *)yp, b);
            } else {
                int32_t a[8];
                _mm_storeu_si128((__m128i *)(void *)a, a0);
                _mm_storeu_si128((__m128i *)(void *)(a + 4), a1);
                for (uint32_t i = 0; i < 8; i++) {
                    yp[i] = mct_hwc_rq(&rc[i], &rq[i], 0, a[i]);
                }
            }
        }
    }
}
#endif

int mct_depthwise_s8_hwc(const int8_t *x, const mct_hwc_geom_t *g, const int8_t *w, const mct_hwc_quant_t *q,
    int8_t *y) {
    if (g->kh * g->kw > MCT_HWC_TAPS_MAX) {
        return -1;
    }
    uint32_t c0 = 0;
#if MCT_HWC_SSE2
    for (; c0 + 8 <= g->in_c; c0 += 8) {
        block8(x, g, w, q, c0, y);
    }
#endif
#if MCT_HWC_DSP
    if (band_fits(g)) {     /* band_block stops at a group whose requantization is not the lean one */
        const uint32_t c4 = g->in_c & ~3u;
        while (c0 < c4) {
            c0 = band_block(x, g, w, q, c0, c4, y);
            if (c0 < c4) {
                block(x, g, w, q, c0, 4, y);
                c0 += 4;
            }
        }
    }
#endif
    for (; c0 < g->in_c; c0 += BLOCK) {
        block(x, g, w, q, c0, g->in_c - c0 < BLOCK ? g->in_c - c0 : BLOCK, y);
    }
    return 0;
}
