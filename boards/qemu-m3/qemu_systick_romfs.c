// SysTick time base and ROMFS partition of the qemu boards (qemu-m3, qemu-m7, qemu-m0): each
// board's own file has its vector table (with qemu_systick_handler) and calls qemu_systick_start().
//
// SysTick counts the core clock (QEMU_CORE_CLOCK_HZ, from the board's mpconfigboard.mk; under
// `qemu -icount shift=0` the emulated clock advances with the instruction count, which makes
// timings deterministic) and interrupts once per millisecond. Sub-millisecond time comes from the
// SysTick counter.

#include <stdint.h>

#include "py/mphal.h"
#include "py/mperrno.h"
#include "py/objarray.h"
#include "py/runtime.h"
#include "extmod/vfs.h"
#include "qemu_systick_romfs.h"
#include "qemu_flash.h"
#include "qemu_stdin.h"

#define CORE_CLOCK_HZ (QEMU_CORE_CLOCK_HZ)
#define CYCLES_PER_MS (CORE_CLOCK_HZ / 1000u)

#define SYST_CSR (*(volatile uint32_t *)0xe000e010)   // control and status
#define SYST_RVR (*(volatile uint32_t *)0xe000e014)   // reload value
#define SYST_CVR (*(volatile uint32_t *)0xe000e018)   // current value (counts down)
#define SCB_ICSR (*(volatile uint32_t *)0xe000ed04)

#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE_CPU (1u << 2)
#define SCB_ICSR_PENDSTSET (1u << 26)

static volatile uint32_t systick_ms;

void qemu_systick_handler(void) {
    systick_ms += 1;
    qemu_stdin_poll();
}

void qemu_systick_start(void) {
    // mp_init() runs again on every soft reset; time must keep running monotonically.
    if (SYST_CSR & SYST_CSR_ENABLE) {
        return;
    }
    SYST_RVR = CYCLES_PER_MS - 1;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_CLKSOURCE_CPU | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

int qemu_systick_running(void) {
    return (SYST_CSR & SYST_CSR_ENABLE) != 0;
}

// Core clock cycles since boot, consistent with systick_ms even right at a reload.
static uint64_t board_cycles(void) {
    uint32_t primask;
    __asm volatile ("mrs %0, primask\ncpsid i" : "=r" (primask) :: "memory");
    uint32_t ms = systick_ms;
    uint32_t elapsed = CYCLES_PER_MS - 1 - SYST_CVR;
    // The counter wrapped but the interrupt (masked here) has not counted it yet.
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

// Waits at least `cycles` core clock cycles.
static void delay_cycles(uint64_t cycles) {
    uint64_t end = board_cycles() + cycles;
    for (uint64_t now = board_cycles(); now < end; now = board_cycles()) {
        if (end - now > CYCLES_PER_MS) {
            // Sleep until the next SysTick: saves host CPU, and skips ahead under -icount.
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
// given by the board's linker script. The host loads the image there with qemu's `-device loader`. Files opened
// from /rom hand out pointers into this memory, so their data is never copied to SRAM. The board can
// also write it (qemu_flash.c), which `mpremote romfs deploy` does.

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
    // Writing (`mpremote romfs deploy`): qemu_flash.c.
    return qemu_romfs_write_ioctl(n_args, args);
}
