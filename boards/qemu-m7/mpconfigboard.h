// mcutrain qemu-m7 board configuration: the qemu-m3 board's settings (time module, ROMFS at /rom),
// on a Cortex-M7 with a single-precision FPU (the STM32F746's core).
// Selected with -DMP_CONFIGFILE (see mpconfigboard.mk).

#include "../qemu-m3/mpconfigboard.h"

#undef MICROPY_HW_MCU_NAME
#define MICROPY_HW_MCU_NAME "Cortex-M7"
