// qemu-m7 board: the vector table the core boots from (qemu-m7.ld puts it at address 0, before
// the port's own). Its reset handler enables the FPU (CP10/CP11 full access in CPACR) and then
// runs the port's Reset_Handler: code built with -mfloat-abi=hard may use FPU registers anywhere,
// and an FPU instruction while the FPU is off is a UsageFault. qemu_m3_board_init() later points
// VTOR at the board's table with its SysTick handler.

#include "qemu_vectors.h"

__attribute__((naked, noreturn)) static void fpu_reset_handler(void) {
    __asm volatile (
        "ldr r0, =0xe000ed88\n"         // SCB->CPACR
        "ldr r1, [r0]\n"
        "orr r1, r1, #(0xf << 20)\n"    // CP10, CP11: full access
        "str r1, [r0]\n"
        "dsb\n"
        "isb\n"
        "b Reset_Handler\n"
        );
}

// SysTick: not started before qemu_m3_board_init() moves VTOR, so no handler of its own here.
__attribute__((section(".board_isr_vector"), used))
const uint32_t board_boot_vector[16] = QEMU_ARMV7M_VECTORS(fpu_reset_handler, HardFault_Handler);
