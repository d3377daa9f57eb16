# rp2-pico: where the board's ROMFS partition lies (address, size), as its firmware sees it.
import uctypes
import vfs
rom = memoryview(vfs.rom_ioctl(2, 0))
print(uctypes.addressof(rom), len(rom))
