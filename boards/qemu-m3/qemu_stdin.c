// Ctrl-C on the emulated boards. ports/qemu reads its UART only when it wants input (no UART
// interrupt), so while code runs nobody sees a Ctrl-C. The 1 kHz SysTick polls the UART here:
// the interrupt character (Ctrl-C, which the REPL sets while code runs) raises KeyboardInterrupt,
// as on a real board; any other byte waits in a ring buffer that the port's reads (uart_rx_chr,
// wrapped with the linker's --wrap, see mpconfigboard.mk) return first, so input keeps its order.

#include <stdint.h>

#include "py/mphal.h"
#include "py/runtime.h"
#include "shared/runtime/interrupt_char.h"
#include "qemu_stdin.h"

int __real_uart_rx_chr(void);
int __wrap_uart_rx_chr(void);

#define RING_SIZE (256u)
static volatile uint8_t ring[RING_SIZE];
static volatile uint32_t ring_head;    // written by the SysTick handler
static volatile uint32_t ring_tail;    // read by the main program, interrupts masked

void qemu_stdin_poll(void) {
    if (ring_head - ring_tail >= RING_SIZE) {
        return;     // full: the byte stays in the UART (qemu then holds back the rest)
    }
    int c = __real_uart_rx_chr();
    if (c < 0) {
        return;
    }
    if (c == mp_interrupt_char) {
        mp_sched_keyboard_interrupt();
        return;
    }
    ring[ring_head % RING_SIZE] = (uint8_t)c;
    ring_head += 1;
}

int __wrap_uart_rx_chr(void) {
    uint32_t primask;
    __asm volatile ("mrs %0, primask\ncpsid i" : "=r" (primask) :: "memory");
    int c;
    if (ring_head != ring_tail) {
        c = ring[ring_tail % RING_SIZE];
        ring_tail += 1;
    } else {
        c = __real_uart_rx_chr();
    }
    __asm volatile ("msr primask, %0" :: "r" (primask) : "memory");
    return c;
}
