// mcutrain qemu-m3 board configuration: ports/qemu's settings plus what this board adds.
// Selected with -DMP_CONFIGFILE (see mpconfigboard.mk), so it stands in for mpconfigport.h.

#include "ports/qemu/mpconfigport.h"

#include "qemu_board_config.h"

// Start SysTick before anything can ask for the time; called at the end of each mp_init().
#ifndef __ASSEMBLER__
void qemu_m3_board_init(void);
#endif
#define MICROPY_PORT_INIT_FUNC qemu_m3_board_init()
