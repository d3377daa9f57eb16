// mcutrain qemu-m3 board configuration: ports/qemu's settings plus what this board adds.
// Selected with -DMP_CONFIGFILE (see mpconfigboard.mk), so it stands in for mpconfigport.h.

#include "ports/qemu/mpconfigport.h"

// `time` module driven by SysTick (qemu_m3_board.c). There is no RTC: time.time() and
// time.time_ns() count from boot.
#undef MICROPY_PY_TIME
#define MICROPY_PY_TIME (1)
#define MICROPY_PY_TIME_TIME_TIME_NS (1)
#define MICROPY_PY_TIME_INCLUDEFILE "qemu_m3_modtime.c"

// The board provides a ROMFS partition (qemu-m3.ld), which mp_init() mounts at /rom.
#undef MICROPY_VFS_ROM_IOCTL
#define MICROPY_VFS_ROM_IOCTL (1)

// Start SysTick before anything can ask for the time; called at the end of each mp_init().
#ifndef __ASSEMBLER__
void qemu_m3_board_init(void);
#endif
#define MICROPY_PORT_INIT_FUNC qemu_m3_board_init()
