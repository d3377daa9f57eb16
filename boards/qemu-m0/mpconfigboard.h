// mcutrain qemu-m0 board configuration: ports/qemu's settings for the nRF51 (Cortex-M0) plus
// what the project's boards add (time module, ROMFS at /rom), and the Thumb-1 native emitter so
// that .mpy files with armv6m machine code (the natmod build of mcutrain) load.
// Selected with -DMP_CONFIGFILE (see mpconfigboard.mk).

#include "ports/qemu/mpconfigport.h"

#include "qemu_board_config.h"

// ports/qemu leaves the native emitter off on the nRF51; armv6m code is what it emits.
#define MICROPY_EMIT_THUMB (1)
#define MICROPY_EMIT_THUMB_ARMV7M (0)

#ifndef __ASSEMBLER__
void qemu_m0_board_init(void);
#endif
#define MICROPY_PORT_INIT_FUNC qemu_m0_board_init()
