/* The converter's int8 simulation (requant.c, conv_rows.c): a loop built once per x86 vector width,
 * NAME_base (any host), NAME_avx2 and NAME_avx512 (x86 with GCC), and NAME_widest() giving the widest
 * one the host runs, chosen at run time. Each build is the same IEEE arithmetic (no contraction). */
#ifndef MCT_HOST_WIDEST_H
#define MCT_HOST_WIDEST_H

/* GCC's pragmas (optimize, target) set each build's options; other compilers build the base alone */
#if defined(__GNUC__) && !defined(__clang__)
#define HAS_GCC_PRAGMAS 1
#else
#define HAS_GCC_PRAGMAS 0
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HAS_X86_BUILDS 1
#define WIDEST(TYPE, NAME)                                                                                    \
    static TYPE NAME##_widest(void) {                                                                        \
        __builtin_cpu_init();                                                                                 \
        return __builtin_cpu_supports("avx512f") ? NAME##_avx512                                             \
               : __builtin_cpu_supports("avx2")  ? NAME##_avx2                                               \
                                                 : NAME##_base;                                               \
    }
#else
#define HAS_X86_BUILDS 0
#define WIDEST(TYPE, NAME)                                                                                    \
    static TYPE NAME##_widest(void) { return NAME##_base; }
#endif

#endif
