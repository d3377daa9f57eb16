// mcutrain qemu-m0 board configuration: ports/qemu's settings for the nRF51 (Cortex-M0) plus
// what the project's boards add (time module, ROMFS at /rom), and the Thumb-1 native emitter so
// that .mpy files with armv6m machine code (the natmod build of mcutrain) load.
// Selected with -DMP_CONFIGFILE (see mpconfigboard.mk).

#include "ports/qemu/mpconfigport.h"

// `time` module driven by SysTick (qemu_m0_board.c); no RTC: time.time() counts from boot.
#undef MICROPY_PY_TIME
#define MICROPY_PY_TIME (1)
#define MICROPY_PY_TIME_TIME_TIME_NS (1)
#define MICROPY_PY_TIME_INCLUDEFILE "qemu_m3_modtime.c"

// ROMFS partition (qemu-m0.ld), mounted at /rom by mp_init().
#undef MICROPY_VFS_ROM_IOCTL
#define MICROPY_VFS_ROM_IOCTL (1)

// ports/qemu leaves the native emitter off on the nRF51; armv6m code is what it emits.
#define MICROPY_EMIT_THUMB (1)
#define MICROPY_EMIT_THUMB_ARMV7M (0)

#ifndef __ASSEMBLER__
void qemu_m0_board_init(void);
#endif
#define MICROPY_PORT_INIT_FUNC qemu_m0_board_init()
