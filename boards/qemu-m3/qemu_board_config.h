// What every qemu board of the project adds to ports/qemu's settings (qemu-m3, qemu-m7, qemu-m0):
// the `time` module and a ROMFS partition at /rom. Included by each board's mpconfigboard.h after
// ports/qemu/mpconfigport.h.

// `time` module driven by SysTick (qemu_systick_romfs.c). There is no RTC: time.time() and
// time.time_ns() count from boot.
#undef MICROPY_PY_TIME
#define MICROPY_PY_TIME (1)
#define MICROPY_PY_TIME_TIME_TIME_NS (1)
#define MICROPY_PY_TIME_INCLUDEFILE "qemu_m3_modtime.c"

// The board's linker script provides a ROMFS partition, which mp_init() mounts at /rom.
#undef MICROPY_VFS_ROM_IOCTL
#define MICROPY_VFS_ROM_IOCTL (1)
