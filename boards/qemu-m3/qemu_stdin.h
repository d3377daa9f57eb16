// Ctrl-C on the emulated boards while code runs (qemu_stdin.c).
#ifndef MCUTRAIN_QEMU_STDIN_H
#define MCUTRAIN_QEMU_STDIN_H

// Called by the SysTick handler: takes a waiting UART byte, Ctrl-C raises KeyboardInterrupt.
void qemu_stdin_poll(void);

#endif
