// qemu-m3 board support: its vector table (SysTick goes to qemu_systick_handler). The time base
// and the ROMFS partition are in qemu_systick_romfs.c, shared with qemu-m7 and qemu-m0.

#include <stdint.h>

#include "qemu_flash.h"
#include "qemu_systick_romfs.h"
#include "qemu_vectors.h"

#define SCB_VTOR (*(volatile uint32_t *)0xe000ed08)

// ports/qemu's startup.c gives SysTick a fault handler in its vector table, so the board uses
// a table of its own (same entries, its own SysTick) and points VTOR at it. VTOR needs the table
// aligned to its size rounded up to a power of two, at least 128 bytes.
__attribute__((aligned(128)))
static const uint32_t board_isr_vector[16] = QEMU_ARMV7M_VECTORS(Reset_Handler, qemu_systick_handler);

void qemu_m3_board_init(void) {
    // mp_init() runs again on every soft reset; time must keep running monotonically.
    if (!qemu_systick_running()) {
        qemu_flash_open();
        qemu_stack_paint();
        SCB_VTOR = (uint32_t)board_isr_vector;
        __asm volatile ("dsb\nisb" ::: "memory");
        qemu_systick_start();
    }
    qemu_flash_mount();     // every time: a soft reset unmounts /flash
}
