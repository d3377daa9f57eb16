// IEEE 754 binary32 division, round to nearest even, for the armv6m build only.
//
// libgcc's Thumb-1 __aeabi_fdiv (divsf3.o) jumps through a table of absolute addresses, which
// MicroPython's .mpy linker (tools/mpy_ld.py) cannot relocate ("Absolute relocations not
// supported on ARM"). This one is plain C and gives the same bits as a hardware division
// (tests/test_natmod.py checks it against the host's on millions of operands, subnormals
// and specials included). NaN results are the default quiet NaN or the quieted input NaN.

#include <stdint.h>
#include <string.h>

#ifndef SOFT_FDIV_NAME
#define SOFT_FDIV_NAME __aeabi_fdiv
#endif

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// A finite non-zero operand's significand with its leading 1 at bit 23 (the implicit one made
// explicit; a subnormal shifted up, its exponent lowered to match).
static void significand(int32_t *e, uint32_t *m) {
    if (*e == 0) {
        *e = 1;
        while (!(*m & 0x800000u)) {
            *m <<= 1;
            *e -= 1;
        }
    } else {
        *m |= 0x800000u;
    }
}

float SOFT_FDIV_NAME(float a, float b);

float SOFT_FDIV_NAME(float a, float b) {
    uint32_t ua = bits_of(a), ub = bits_of(b);
    uint32_t sign = (ua ^ ub) & 0x80000000u;
    int32_t ea = (int32_t)((ua >> 23) & 0xff), eb = (int32_t)((ub >> 23) & 0xff);
    uint32_t ma = ua & 0x7fffffu, mb = ub & 0x7fffffu;

    if (ea == 0xff) {
        if (ma) {
            return float_of(ua | 0x400000u);                // NaN / x
        }
        if (eb == 0xff) {
            return float_of(mb ? (ub | 0x400000u) : 0x7fc00000u);   // inf / NaN, inf / inf
        }
        return float_of(sign | 0x7f800000u);                // inf / finite
    }
    if (eb == 0xff) {
        return float_of(mb ? (ub | 0x400000u) : sign);      // x / NaN, finite / inf
    }
    if (eb == 0 && mb == 0) {
        return float_of((ea == 0 && ma == 0) ? 0x7fc00000u : (sign | 0x7f800000u));   // x / 0
    }
    if (ea == 0 && ma == 0) {
        return float_of(sign);                              // 0 / finite
    }
    // Significands with their leading 1 at bit 23; subnormals normalised.
    significand(&ea, &ma);
    significand(&eb, &mb);
    int32_t e = ea - eb + 127;      // biased exponent of the quotient when ma >= mb
    if (ma < mb) {
        ma <<= 1;                   // quotient in [1, 2)
        e -= 1;
    }
    // 26 quotient bits: the 24 of the significand, then guard and round; sticky: the remainder.
    uint64_t num = (uint64_t)ma << 25;
    uint32_t q = (uint32_t)(num / mb);
    uint32_t sticky = (uint32_t)(num - (uint64_t)q * mb) != 0;
    if (e >= 0xff) {
        return float_of(sign | 0x7f800000u);
    }
    if (e <= 0) {
        // subnormal (or underflow to zero): shift right to the exponent field 1 position
        uint32_t shift = (uint32_t)(1 - e);
        if (shift > 26) {
            sticky |= q != 0;
            q = 0;
        } else {
            sticky |= (q & ((1u << shift) - 1u)) != 0;
            q >>= shift;
        }
    }
    uint32_t mant = q >> 2;
    uint32_t round = (q >> 1) & 1u;
    uint32_t rest = (q & 1u) | sticky;
    if (round && (rest || (mant & 1u))) {
        mant += 1;
    }
    uint32_t out;
    if (e <= 0) {
        out = mant;                 // a carry into bit 23 makes it the smallest normal number
    } else {
        out = ((uint32_t)(e - 1) << 23) + mant;
        if (out >= 0x7f800000u) {
            out = 0x7f800000u;
        }
    }
    return float_of(sign | out);
}
