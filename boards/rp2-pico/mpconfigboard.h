// mcutrain's rp2-pico board: MicroPython's RPI_PICO with a ROMFS partition for models and data,
// read in place from Flash (vfs.VfsRom; `mpremote romfs deploy` writes it). The 2 MB Flash:
// 640 KB firmware, then 768 KB ROMFS, then 640 KB LittleFS (RPI_PICO: 1408 KB LittleFS, no ROMFS).
#define MICROPY_HW_BOARD_NAME                   "Raspberry Pi Pico"
#define MICROPY_HW_ROMFS_BYTES                  (768 * 1024)
#define MICROPY_HW_FLASH_STORAGE_BYTES          (640 * 1024)
