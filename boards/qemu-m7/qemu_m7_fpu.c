// qemu-m7 board: the vector table the core boots from (qemu-m7.ld puts it at address 0, before
// the port's own). Its reset handler enables the FPU (CP10/CP11 full access in CPACR) and then
// runs the port's Reset_Handler: code built with -mfloat-abi=hard may use FPU registers anywhere,
// and an FPU instruction while the FPU is off is a UsageFault. qemu_m3_board_init() later points
// VTOR at the board's table with its SysTick handler.

#include <stdint.h>

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

__attribute__((section(".board_isr_vector"), used))
const uint32_t board_boot_vector[16] = {
    (uint32_t)&_estack,
    (uint32_t)&fpu_reset_handler,
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
    (uint32_t)&HardFault_Handler,   // SysTick: not started before qemu_m3_board_init() moves VTOR
};
