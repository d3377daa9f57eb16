/* The bare-metal runtime of the kernel test and benchmark programs (bench/bare/): semihosting calls
 * (the host's files and console through qemu -semihosting) and the benchmark's marker. */
#ifndef BARE_H
#define BARE_H

#include <stddef.h>
#include <stdint.h>

int bare_open(const char *name, int write);     /* a host file, -1 when it cannot be opened */
size_t bare_read(int fd, void *buf, size_t n);   /* bytes read */
void bare_write(int fd, const void *buf, size_t n);
void bare_close(int fd);
void bare_puts(const char *s);                   /* to qemu's stdout */
void bare_exit(int ok) __attribute__((noreturn));

/* The test programs' files: `cases.bin` to read, `out.bin` to write; 0 when both opened, else says so. */
static inline int bare_open_cases(int *in, int *out) {
    *in = bare_open("cases.bin", 0);
    *out = bare_open("out.bin", 1);
    if (*in < 0 || *out < 0) {
        bare_puts("bare: cannot open cases.bin / out.bin\n");
        return -1;
    }
    return 0;
}

/* n rounded up to 4 bytes (the cases' int8 arrays are padded so that what follows stays aligned) */
static inline uint32_t bare_pad4(uint32_t n) {
    return (n + 3u) & ~3u;
}

/* n rounded up to 8 bytes (int64 arrays after the cases' data) */
static inline uint32_t bare_bytes8(uint32_t n) {
    return (n + 7u) & ~7u;
}

/* An empty call that the insn-count plugin watches (its address is the plugin's `mark`): the
 * instructions between two calls are the code's between them. */
void bare_mark(void);

#endif
