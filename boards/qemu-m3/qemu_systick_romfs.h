// The qemu boards' SysTick time base and ROMFS partition (qemu_systick_romfs.c).
#ifndef QEMU_SYSTICK_ROMFS_H
#define QEMU_SYSTICK_ROMFS_H

#ifndef QEMU_CORE_CLOCK_HZ
#define QEMU_CORE_CLOCK_HZ (25000000u)      // qemu's mps2 boards
#endif

// The SysTick entry of the board's vector table.
void qemu_systick_handler(void);
// Starts the 1 ms tick once (soft resets keep it running).
void qemu_systick_start(void);
int qemu_systick_running(void);
// Paints the stack below the caller's frame once at boot (qemu_stack_watermark.c).
void qemu_stack_paint(void);

#endif
