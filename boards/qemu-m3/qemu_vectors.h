// The Cortex-M3/M7 vector table of the qemu boards (ARMv7-M: 16 system entries), one definition for
// qemu-m3's table (VTOR points at it once the board runs) and qemu-m7's boot table (its reset handler
// turns the FPU on first). The handlers are ports/qemu's startup.c's.
#ifndef QEMU_VECTORS_H
#define QEMU_VECTORS_H

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

#define QEMU_ARMV7M_VECTORS(reset, systick) { \
        (uint32_t)&_estack, \
        (uint32_t)&(reset), \
        (uint32_t)&NMI_Handler, \
        (uint32_t)&HardFault_Handler, \
        (uint32_t)&MemManage_Handler, \
        (uint32_t)&BusFault_Handler, \
        (uint32_t)&UsageFault_Handler, \
        0, 0, 0, 0, \
        (uint32_t)&SVC_Handler, \
        (uint32_t)&DebugMon_Handler, \
        0, \
        (uint32_t)&PendSV_Handler, \
        (uint32_t)&(systick), \
}

#endif
