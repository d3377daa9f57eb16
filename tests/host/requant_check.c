/* The fast requantization (mct_rq_t) against the reference (mct_requant_s8, mct_requant): every
 * shift (and out-of-range ones, which both clamp), multipliers at the edges (0, 1, 2^30, 2^31 - 1,
 * negative ones which a loaded model never has), biases at the int32 limits, dense accumulator
 * sweeps (which hit the ties of both roundings) and random ones. Prints the cases checked, how many
 * took the fast path, and the mismatches (each printed, at most 20). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include "mct_requant.h"

static uint64_t state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)(state >> 16);
}

static uint64_t cases, fast, bad;

static void check(int32_t bias, uint64_t bound, int32_t acc, int32_t mult, int32_t shift, int32_t zero, int32_t lo,
    int32_t hi) {
    mct_rq_t q;
    mct_rq_init(&q, bias, bound, mult, shift, zero, lo, hi);
    const int8_t want = mct_requant_s8((int64_t)bias + acc, mult, shift, zero, lo, hi);
    const int8_t got = mct_rq_s8(&q, acc);
    int ok = want == got;
    if (q.fast) {
        fast++;
        ok = ok && mct_rq_apply(&q, bias + acc) == mct_requant((int64_t)bias + acc, mult, shift);
    }
    cases++;
    if (!ok && bad++ < 20) {
        printf("MISMATCH bias %" PRId32 " acc %" PRId32 " mult %" PRId32 " shift %" PRId32 " zero %" PRId32
               " lo %" PRId32 " hi %" PRId32 ": want %d got %d\n", bias, acc, mult, shift, zero, lo, hi, want, got);
    }
}

int main(int argc, char **argv) {
    const long n_random = argc > 1 ? atol(argv[1]) : 2000000;
    const int32_t mults[] = { 0, 1, 2, 3, 1 << 29, (1 << 30) - 1, 1 << 30, (1 << 30) + 1, 0x55555555, 0x6A09E667,
                              INT32_MAX - 1, INT32_MAX, -1, INT32_MIN, INT32_MIN + 1 };
    const int32_t biases[] = { 0, 1, -1, 1000, -1000, 1 << 30, -(1 << 30), INT32_MAX, INT32_MIN, INT32_MAX - 300000,
                               INT32_MIN + 300000 };
    const int32_t zeros[][3] = { { 0, -128, 127 }, { -128, -128, 127 }, { 127, -128, 127 }, { 5, 5, 127 },
                                 { -3, -128, 100 }, { 0, 10, -10 } };
    const int nm = sizeof(mults) / sizeof(mults[0]), nb = sizeof(biases) / sizeof(biases[0]);
    const int nz = sizeof(zeros) / sizeof(zeros[0]);
    /* dense accumulators around zero, every shift, every edge multiplier, small biases */
    for (int32_t shift = -33; shift <= 32; shift++) {
        for (int mi = 0; mi < nm; mi++) {
            for (int32_t acc = -4096; acc <= 4096; acc++) {
                check(biases[acc & 3 ? 0 : 3], 4096, acc, mults[mi], shift, zeros[(acc & 0x30) >> 4][0],
                      zeros[(acc & 0x30) >> 4][1], zeros[(acc & 0x30) >> 4][2]);
            }
        }
    }
    /* the limits: biases at +-2^31, accumulators at their bound, every shift and zero point */
    const uint64_t bounds[] = { 0, 1, 9u * 255 * 128, 65793u * 255 * 128 };
    for (int32_t shift = -33; shift <= 32; shift++) {
        for (int mi = 0; mi < nm; mi++) {
            for (int bi = 0; bi < nb; bi++) {
                for (int k = 0; k < 4; k++) {
                    const int32_t b = (int32_t)bounds[k];
                    const int32_t accs[] = { 0, b, -b, b / 2, -b / 2, b ? b - 1 : 0, b ? 1 - b : 0 };
                    for (int ai = 0; ai < 7; ai++) {
                        for (int zi = 0; zi < nz; zi++) {
                            check(biases[bi], bounds[k], accs[ai], mults[mi], shift, zeros[zi][0], zeros[zi][1],
                                  zeros[zi][2]);
                        }
                    }
                }
            }
        }
    }
    /* random everything: accumulators within a random bound, multipliers mostly in [2^30, 2^31) */
    for (long i = 0; i < n_random; i++) {
        const uint64_t bound = (uint64_t)(rnd() % 65794u) * 255 * 128 >> (rnd() % 24);
        const int32_t acc = bound ? (int32_t)((int64_t)(((uint64_t)rnd() << 32 | rnd()) % (2 * bound + 1)) - (int64_t)bound) : 0;
        const uint32_t r = rnd();
        const int32_t mult = (r & 7) == 0 ? (int32_t)rnd() : (int32_t)((rnd() >> 1) | (1u << 30)) >> (r & 8 ? 0 : (rnd() & 15));
        const int32_t bias = (r & 0x30) == 0 ? (int32_t)rnd() : (int32_t)rnd() >> (rnd() % 32);
        const int32_t shift = (int32_t)(rnd() % 70) - 36;
        const int32_t zero = (int32_t)(rnd() % 256) - 128;
        int32_t lo = (int32_t)(rnd() % 256) - 128, hi = (int32_t)(rnd() % 256) - 128;
        if ((r & 0x40) && lo > hi) {
            const int32_t t = lo;
            lo = hi;
            hi = t;
        }
        check(bias, bound, acc, mult, shift, zero, lo, hi);
    }
    /* the Cortex-M0 long multiply against the compiler's, at the edges and at random */
    const int32_t edges[] = { 0, 1, -1, 0xFFFF, 0x10000, -0x10000, 0x7FFF, 0x8000, -0x8000, INT32_MAX, INT32_MIN,
                              INT32_MIN + 1, 0x7FFF0000, (int32_t)0x80008000u, 0x12345678 };
    const int ne = sizeof(edges) / sizeof(edges[0]);
    for (long i = 0; i < ne * ne + n_random; i++) {
        const int32_t a = i < ne * ne ? edges[i / ne] : (int32_t)rnd(), b = i < ne * ne ? edges[i % ne] : (int32_t)rnd();
        cases++;
        if (mct_mul64_16(a, b) != (int64_t)a * b && bad++ < 20) {
            printf("MISMATCH mul64_16 %" PRId32 " * %" PRId32 "\n", a, b);
        }
    }
    printf("cases %" PRIu64 " fast %" PRIu64 " mismatches %" PRIu64 "\n", cases, fast, bad);
    return bad != 0;
}
