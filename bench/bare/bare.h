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
int bare_open_cases(int *in, int *out);

/* n rounded up to 4 bytes (the cases' int8 arrays are padded so that what follows stays aligned) */
static inline uint32_t bare_pad4(uint32_t n) {
    return (n + 3u) & ~3u;
}

/* An empty call that the insn-count plugin watches (its address is the plugin's `mark`): the
 * instructions between two calls are the code's between them. */
void bare_mark(void);

#endif
