# mcutrain qemu-m3 board, built by ports/qemu/Makefile with BOARD_DIR pointing here
# (see the top-level Makefile). Same CPU and peripherals as ports/qemu's MPS2_AN385 board,
# with the project's own memory map (qemu-m3.ld), a SysTick-driven `time` module and a
# ROMFS partition mounted at /rom.

QEMU_ARCH = arm
QEMU_MACHINE = mps2-an385

CFLAGS += -mthumb -mcpu=cortex-m3 -mfloat-abi=soft
CFLAGS += -DQEMU_SOC_MPS2
CFLAGS += -DMICROPY_HW_MCU_NAME='"Cortex-M3"'

# Our header includes ports/qemu/mpconfigport.h and then overrides some of its settings.
CFLAGS += -I$(BOARD_DIR) -DMP_CONFIGFILE='"$(BOARD_DIR)/mpconfigboard.h"'

LDSCRIPT = $(BOARD_DIR)/qemu-m3.ld

# The GC heap is a static array in .bss (ports/qemu/main.c). It gets what is left of the 256 KB
# SRAM after the 16 KB stack and the rest of .data/.bss (about 0.8 KB for MicroPython itself),
# keeping about 1 KB spare for static state of C modules. qemu-m3.ld turns an overshoot into
# a link error; lower this (make firmware BOARD=qemu-m3 MICROPY_HEAP_SIZE=...) if that happens.
MICROPY_HEAP_SIZE ?= 243712

# Board sources live in BOARD_DIR; vpath lets the port's $(BUILD)/%.o rule find them.
vpath %.c $(BOARD_DIR)
SRC_C += qemu_m3_board.c qemu_systick_romfs.c qemu_stack_watermark.c qemu_flash.c qemu_stdin.c
# Ctrl-C while code runs: the board reads its UART through qemu_stdin.c
LDFLAGS += -Wl,--wrap=uart_rx_chr

SRC_BOARD_O = shared/runtime/gchelper_native.o shared/runtime/gchelper_thumb2.o

MPY_CROSS_FLAGS += -march=armv7m

# A persistent filesystem at /flash: LittleFS v2 (power-loss resilient, atomic rename) on the
# board's Flash block device, a host file reached by semihosting (qemu_flash.c). Its code is in
# Flash; its buffers come from the GC heap while /flash is mounted (only when qemu has a flash file).
MICROPY_VFS_LFS2 = 1
