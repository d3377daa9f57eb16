// The qemu boards' persistent Flash: a LittleFS filesystem at /flash on a host file (qemu_flash.c).
#ifndef QEMU_FLASH_H
#define QEMU_FLASH_H

// Opens the flash file named on qemu's semihosting command line, if any; called once at boot,
// before the stack is painted (its command-line buffer is on the stack). The file stays open.
void qemu_flash_open(void);
// Mounts /flash when the flash file is open (formats it the first time); called by each board's
// init function at every mp_init().
void qemu_flash_mount(void);

// vfs.rom_ioctl's write commands (3, 4, 5) for the board's ROMFS partition; EPERM where the
// partition cannot be written (qemu-m0).
#include "py/obj.h"
mp_obj_t qemu_romfs_write_ioctl(size_t n_args, const mp_obj_t *args);

#endif
