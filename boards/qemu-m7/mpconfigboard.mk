# mcutrain qemu-m7 board, built by ports/qemu/Makefile with BOARD_DIR pointing here (see the
# top-level Makefile). A Cortex-M7 with a single-precision FPU, like the STM32F746 of the paper,
# emulated by qemu's mps2-an500 (ARM MPS2 with the AN500 FPGA image: Cortex-M7, same peripherals
# and clock as mps2-an385). The board code is the qemu-m3 board's (SysTick `time`, ROMFS at
# /rom); this board adds the FPU: hard-float code, and a reset vector that turns the FPU on
# before any C code runs (qemu_m7_fpu.c).

QEMU_ARCH = arm
QEMU_MACHINE = mps2-an500

M3_BOARD_DIR := $(abspath $(BOARD_DIR)/../qemu-m3)

# FPv5 single precision (fpv5-sp-d16) is the STM32F7x6's FPU; float32 arithmetic is IEEE
# (no fused multiply-add: mcutrain's module adds -ffp-contract=off), so the backward pass stays
# bit-exact with the host reference.
CFLAGS += -mthumb -mcpu=cortex-m7 -mfpu=fpv5-sp-d16 -mfloat-abi=hard
CFLAGS += -DQEMU_SOC_MPS2
# Its float backward multiply-adds as VMLA.F32 (c_src/mct_mla_f32.h): one instruction for the
# separately rounded VMUL + VADD pair, so bit-exact still.
CFLAGS += -DMCT_FPU_VMLA

CFLAGS += -I$(BOARD_DIR) -I$(M3_BOARD_DIR) -DMP_CONFIGFILE='"$(BOARD_DIR)/mpconfigboard.h"'

LDSCRIPT = $(BOARD_DIR)/qemu-m7.ld

# Same SRAM budget as qemu-m3: 256 KB for .data, .bss (with this heap) and the 16 KB stack.
MICROPY_HEAP_SIZE ?= 243712

vpath %.c $(BOARD_DIR) $(M3_BOARD_DIR)
SRC_C += qemu_m3_board.c qemu_systick_romfs.c qemu_stack_watermark.c qemu_m7_fpu.c qemu_flash.c qemu_stdin.c
# Ctrl-C while code runs: the board reads its UART through qemu_stdin.c
LDFLAGS += -Wl,--wrap=uart_rx_chr

SRC_BOARD_O = shared/runtime/gchelper_native.o shared/runtime/gchelper_thumb2.o

MPY_CROSS_FLAGS += -march=armv7emsp

# A writable filesystem on a block device that a script provides (RAM, a Flash driver):
# vfs.VfsLfs2, LittleFS v2 (power-loss resilient, atomic rename), as on rp2/stm32/esp32 boards.
# Its code is in Flash; its buffers come from the GC heap when a filesystem is mounted.
# (vfs.VfsFat would need a port's FatFS glue: get_fattime, timeutils.)
MICROPY_VFS_LFS2 = 1
