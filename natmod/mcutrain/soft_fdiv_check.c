/* Host check of soft_fdiv.c (tests/test_natmod.py): bit-identical to the host FPU's division. */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
float my_fdiv(float a, float b);
static uint64_t s = 88172645463325252ull;
static uint32_t rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return (uint32_t)s; }
static uint32_t pick(void) {
    uint32_t r = rnd(), k = rnd() % 8;
    if (k == 0) return r & 0x807fffffu;                 /* subnormal / zero */
    if (k == 1) return (r & 0x80000000u) | (((rnd() % 40) + 100) << 23) | (r & 0x7fffff);
    if (k == 2) { static const uint32_t sp[] = {0, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7f800001u, 0x3f800000u, 1, 0x7f7fffffu, 0x00800000u}; return sp[rnd() % 10] ^ (rnd() & 0x80000000u); }
    return r;
}
int main(void) {
    long n = 20000000, bad = 0;
    for (long i = 0; i < n; i++) {
        uint32_t ua = pick(), ub = pick();
        float a, b; memcpy(&a, &ua, 4); memcpy(&b, &ub, 4);
        float x = a / b, y = my_fdiv(a, b);
        uint32_t ux, uy; memcpy(&ux, &x, 4); memcpy(&uy, &y, 4);
        if (isnan(x) ? !isnan(y) : ux != uy) { if (bad++ < 10) printf("%08x / %08x: %08x vs %08x\n", ua, ub, ux, uy); }
    }
    printf("%ld of %ld differ\n", bad, n);
    return bad != 0;
}
