# mcutrain qemu-m0 board, built by ports/qemu/Makefile with BOARD_DIR pointing here (see the
# top-level Makefile). A Cortex-M0 (ARMv6-M: Thumb-1, no FPU, no hardware divide, no unaligned
# access) emulated by qemu's `microbit` machine (nRF51), given 256 KB SRAM and 4 MB Flash with
# `-global nrf51-soc.sram-size=262144 -global nrf51-soc.flash-size=4194304` (host_tools adds
# them). Same memory scheme as qemu-m3: 256 KB SRAM for everything written, ROMFS in Flash.

QEMU_ARCH = arm
QEMU_MACHINE = microbit
QEMU_ARGS += -global nrf51-soc.sram-size=262144 -global nrf51-soc.flash-size=4194304

M3_BOARD_DIR := $(abspath $(BOARD_DIR)/../qemu-m3)

CFLAGS += -mthumb -mcpu=cortex-m0 -mfloat-abi=soft
CFLAGS += -DQEMU_SOC_NRF51
CFLAGS += -DMICROPY_HW_MCU_NAME='"Cortex-M0"'
# qemu's nRF51 runs SysTick from a 16 MHz clock (the nRF51's HFCLK)
CFLAGS += -DQEMU_CORE_CLOCK_HZ=16000000u

CFLAGS += -I$(BOARD_DIR) -I$(M3_BOARD_DIR) -DMP_CONFIGFILE='"$(BOARD_DIR)/mpconfigboard.h"'

LDSCRIPT = $(BOARD_DIR)/qemu-m0.ld

MICROPY_HEAP_SIZE ?= 243712

vpath %.c $(BOARD_DIR) $(M3_BOARD_DIR)
SRC_C += qemu_m0_board.c qemu_systick_romfs.c qemu_stack_watermark.c qemu_flash.c qemu_stdin.c
# Ctrl-C while code runs: the board reads its UART through qemu_stdin.c
LDFLAGS += -Wl,--wrap=uart_rx_chr

SRC_BOARD_O = shared/runtime/gchelper_native.o shared/runtime/gchelper_thumb1.o

MPY_CROSS_FLAGS += -march=armv6m

# A writable filesystem on a block device that a script provides (RAM, a Flash driver):
# vfs.VfsLfs2, LittleFS v2 (power-loss resilient, atomic rename), as on rp2/stm32/esp32 boards.
# Its code is in Flash; its buffers come from the GC heap when a filesystem is mounted.
# (vfs.VfsFat would need a port's FatFS glue: get_fattime, timeutils.)
MICROPY_VFS_LFS2 = 1
