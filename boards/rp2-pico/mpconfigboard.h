// mcutrain's rp2-pico board: MicroPython's RPI_PICO with a ROMFS partition for models and data,
// read in place from Flash (vfs.VfsRom; `mpremote romfs deploy` writes it). The 2 MB Flash:
// 512 KB firmware, then 1 MB ROMFS, then 512 KB LittleFS (RPI_PICO: 1408 KB LittleFS, no ROMFS).
#define MICROPY_HW_BOARD_NAME                   "Raspberry Pi Pico"
#define MICROPY_HW_ROMFS_BYTES                  (1024 * 1024)
#define MICROPY_HW_FLASH_STORAGE_BYTES          (512 * 1024)
