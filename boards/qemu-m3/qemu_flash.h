// The qemu boards' persistent Flash: a LittleFS filesystem at /flash on a host file (qemu_flash.c).
#ifndef QEMU_FLASH_H
#define QEMU_FLASH_H

// Mounts /flash when qemu was given a flash file (formats it the first time); called by each
// board's init function at every mp_init().
void qemu_flash_mount(void);

#endif
