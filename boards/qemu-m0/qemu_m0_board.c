// qemu-m0 board support: the boot vector table with its SysTick handler. The Cortex-M0 has no
// VTOR, so the board's vector table is the one the core boots from (qemu-m0.ld places it at
// address 0, ahead of the port's own). The time base (qemu's nRF51 runs SysTick from a 16 MHz
// clock, QEMU_CORE_CLOCK_HZ in mpconfigboard.mk) and the ROMFS partition are in
// ../qemu-m3/qemu_systick_romfs.c, shared with qemu-m3 and qemu-m7.

#include <stdint.h>

#include "qemu_flash.h"
#include "qemu_systick_romfs.h"

extern uint32_t _estack;
extern void Reset_Handler(void);
extern void NMI_Handler(void);
extern void HardFault_Handler(void);
extern void SVC_Handler(void);
extern void PendSV_Handler(void);

__attribute__((section(".board_isr_vector"), used))
const uint32_t board_isr_vector[16] = {
    (uint32_t)&_estack,
    (uint32_t)&Reset_Handler,
    (uint32_t)&NMI_Handler,
    (uint32_t)&HardFault_Handler,
    0, 0, 0, 0, 0, 0, 0,
    (uint32_t)&SVC_Handler,
    0,
    0,
    (uint32_t)&PendSV_Handler,
    (uint32_t)&qemu_systick_handler,
};

void qemu_m0_board_init(void) {
    if (!qemu_systick_running()) {
        qemu_flash_open();
        qemu_stack_paint();     // once, at boot
    }
    qemu_systick_start();
    qemu_flash_mount();
}
