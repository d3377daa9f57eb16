/* Vector table, reset, semihosting: what a C program needs to run on qemu's Cortex-M machines. */
#include <string.h>
#include "bare.h"

extern uint32_t _stack_top, _data_load, _data_start, _data_end, _bss_start, _bss_end;
int main(void);

static void reset(void) {
#if defined(__ARM_FP)
    /* a build with an FPU (-mfloat-abi=softfp/hard): CP10 and CP11 on before any float instruction */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    memcpy(&_data_start, &_data_load, (size_t)((char *)&_data_end - (char *)&_data_start));
    memset(&_bss_start, 0, (size_t)((char *)&_bss_end - (char *)&_bss_start));
    bare_exit(main() == 0);
}

static void fault(void) {
    bare_puts("bare: fault\n");
    bare_exit(0);
}

__attribute__((section(".vectors"), used)) static const void *const vectors[16] = {
    &_stack_top, (void *)reset, (void *)fault, (void *)fault, (void *)fault, (void *)fault, (void *)fault,
};

/* ARM semihosting: operation in r0, parameter block in r1, result in r0 (BKPT 0xAB on M-profile). */
static int semihost(int op, void *arg) {
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

int bare_open(const char *name, int write) {
    uint32_t a[3] = { (uint32_t)name, write ? 5u : 1u, (uint32_t)strlen(name) };    /* "wb" / "rb" */
    return semihost(0x01, a);
}
size_t bare_read(int fd, void *buf, size_t n) {
    uint32_t a[3] = { (uint32_t)fd, (uint32_t)buf, (uint32_t)n };
    return n - (size_t)semihost(0x06, a);        /* SYS_READ returns the bytes not read */
}
void bare_write(int fd, const void *buf, size_t n) {
    uint32_t a[3] = { (uint32_t)fd, (uint32_t)buf, (uint32_t)n };
    semihost(0x05, a);
}
void bare_close(int fd) {
    uint32_t a[1] = { (uint32_t)fd };
    semihost(0x02, a);
}
void bare_puts(const char *s) {
    semihost(0x04, (void *)s);
}
void bare_exit(int ok) {
    /* ADP_Stopped_ApplicationExit: qemu exits 0; RunTimeErrorUnknown: qemu exits 1 */
    semihost(0x18, (void *)(ok ? 0x20026u : 0x20023u));
    for (;;) {
    }
}

__attribute__((noinline)) void bare_mark(void) {
    __asm__ volatile("" ::: "memory");
}
