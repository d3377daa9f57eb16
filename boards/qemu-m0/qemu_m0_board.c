// qemu-m0 board support: SysTick time base (mp_hal_ticks_*, delays), the boot vector table with
// its SysTick handler, and the ROMFS partition. The qemu-m3 board's code, for ARMv6-M: the
// Cortex-M0 has no VTOR, so the board's vector table is the one the core boots from (qemu-m0.ld
// places it at address 0, ahead of the port's own).

#include <stdint.h>

#include "py/mphal.h"
#include "py/mperrno.h"
#include "py/objarray.h"
#include "py/runtime.h"
#include "extmod/vfs.h"

// ---------------------------------------------------------------------------------------------
// Time base. qemu's nRF51 runs the SysTick from a 16 MHz clock (the nRF51's HFCLK); under
// `qemu -icount shift=0` the emulated clock advances with the instruction count.

#define CORE_CLOCK_HZ (16000000u)
#define CYCLES_PER_MS (CORE_CLOCK_HZ / 1000u)

#define SYST_CSR (*(volatile uint32_t *)0xe000e010)
#define SYST_RVR (*(volatile uint32_t *)0xe000e014)
#define SYST_CVR (*(volatile uint32_t *)0xe000e018)
#define SCB_ICSR (*(volatile uint32_t *)0xe000ed04)

#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE_CPU (1u << 2)
#define SCB_ICSR_PENDSTSET (1u << 26)

static volatile uint32_t systick_ms;

static void systick_handler(void) {
    systick_ms += 1;
}

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
    (uint32_t)&systick_handler,
};

void qemu_m0_board_init(void) {
    // mp_init() runs again on every soft reset; time must keep running monotonically.
    if (SYST_CSR & SYST_CSR_ENABLE) {
        return;
    }
    SYST_RVR = CYCLES_PER_MS - 1;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_CLKSOURCE_CPU | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

static uint64_t board_cycles(void) {
    uint32_t primask;
    __asm volatile ("mrs %0, primask\ncpsid i" : "=r" (primask) :: "memory");
    uint32_t ms = systick_ms;
    uint32_t elapsed = CYCLES_PER_MS - 1 - SYST_CVR;
    if ((SCB_ICSR & SCB_ICSR_PENDSTSET) && elapsed < CYCLES_PER_MS / 2) {
        ms += 1;
    }
    __asm volatile ("msr primask, %0" :: "r" (primask) : "memory");
    return (uint64_t)ms * CYCLES_PER_MS + elapsed;
}

mp_uint_t mp_hal_ticks_ms(void) {
    return systick_ms;
}

mp_uint_t mp_hal_ticks_us(void) {
    return (mp_uint_t)(board_cycles() / (CORE_CLOCK_HZ / 1000000u));
}

mp_uint_t mp_hal_ticks_cpu(void) {
    return (mp_uint_t)board_cycles();
}

uint64_t mp_hal_time_ns(void) {
    return board_cycles() * (1000000000u / CORE_CLOCK_HZ);
}

static void delay_cycles(uint64_t cycles) {
    uint64_t end = board_cycles() + cycles;
    for (uint64_t now = board_cycles(); now < end; now = board_cycles()) {
        if (end - now > CYCLES_PER_MS) {
            __asm volatile ("wfi");
        }
    }
}

void mp_hal_delay_ms(mp_uint_t ms) {
    delay_cycles((uint64_t)ms * CYCLES_PER_MS);
}

void mp_hal_delay_us(mp_uint_t us) {
    delay_cycles((uint64_t)us * (CORE_CLOCK_HZ / 1000000u));
}

// ---------------------------------------------------------------------------------------------
// ROMFS partition (MICROPY_VFS_ROM_IOCTL): one read-only segment at a fixed place in Flash,
// given by qemu-m0.ld, loaded by the host with qemu's `-device loader`.

extern uint8_t _romfs_start;
extern uint8_t _romfs_size;

static const MP_DEFINE_MEMORYVIEW_OBJ(romfs_obj, 'B', 0, (uintptr_t)&_romfs_size, (void *)&_romfs_start);

mp_obj_t mp_vfs_rom_ioctl(size_t n_args, const mp_obj_t *args) {
    mp_int_t cmd = mp_obj_get_int(args[0]);
    if (cmd == MP_VFS_ROM_IOCTL_GET_NUMBER_OF_SEGMENTS) {
        return MP_OBJ_NEW_SMALL_INT(1);
    }
    if (n_args < 2 || mp_obj_get_int(args[1]) != 0) {
        return MP_OBJ_NEW_SMALL_INT(-MP_EINVAL);
    }
    if (cmd == MP_VFS_ROM_IOCTL_GET_SEGMENT) {
        return MP_OBJ_FROM_PTR(&romfs_obj);
    }
    return MP_OBJ_NEW_SMALL_INT(-MP_EPERM);
}
