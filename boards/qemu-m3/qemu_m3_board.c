// qemu-m3 board support: its vector table (SysTick goes to qemu_systick_handler). The time base
// and the ROMFS partition are in qemu_systick_romfs.c, shared with qemu-m7 and qemu-m0.

#include <stdint.h>

#include "qemu_flash.h"
#include "qemu_systick_romfs.h"

#define SCB_VTOR (*(volatile uint32_t *)0xe000ed08)

// ports/qemu's startup.c gives SysTick a fault handler in its vector table, so the board uses
// a table of its own (same entries, its own SysTick) and points VTOR at it.
extern uint32_t _estack;
extern void Reset_Handler(void);
extern void NMI_Handler(void);
extern void HardFault_Handler(void);
extern void MemManage_Handler(void);
extern void BusFault_Handler(void);
extern void UsageFault_Handler(void);
extern void SVC_Handler(void);
extern void DebugMon_Handler(void);
extern void PendSV_Handler(void);

// VTOR needs the table aligned to its size rounded up to a power of two, at least 128 bytes.
__attribute__((aligned(128)))
static const uint32_t board_isr_vector[16] = {
    (uint32_t)&_estack,
    (uint32_t)&Reset_Handler,
    (uint32_t)&NMI_Handler,
    (uint32_t)&HardFault_Handler,
    (uint32_t)&MemManage_Handler,
    (uint32_t)&BusFault_Handler,
    (uint32_t)&UsageFault_Handler,
    0,
    0,
    0,
    0,
    (uint32_t)&SVC_Handler,
    (uint32_t)&DebugMon_Handler,
    0,
    (uint32_t)&PendSV_Handler,
    (uint32_t)&qemu_systick_handler,
};

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
