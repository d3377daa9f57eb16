// Persistent Flash of the qemu boards (qemu-m3, qemu-m7, qemu-m0): a NOR-flash block device whose
// backing store is a file on the host, reached with ARM semihosting, mounted with LittleFS at /flash.
//
// qemu's mps2 and microbit machines have no Flash that a program can write and that outlives the
// qemu process, but semihosting (`-semihosting-config enable=on,target=native`) lets the firmware
// open, seek, read and write a host file. host_tools names the file on qemu's semihosting command
// line (`arg=flash=/abs/path`); the firmware reads it with SYS_GET_CMDLINE at boot. Each semihosting
// call is one read()/write() on the host file, done while the CPU is stopped, so killing qemu (a
// power cut) leaves every call either done or not done, never half done: like a NOR page program.
//
// The device behaves like NOR flash: 4 KB erase blocks, erase sets a block to 0xff, programming can
// only clear bits (new = old & data). Nothing of it lives in SRAM beyond 20 bytes of state (with
// the ROMFS writer below); chunks go through a 256-byte buffer on the stack; the erase pattern is a
// constant in Flash. Without a flash file on the command line there is no /flash and the board is
// as before.

#include <string.h>

#include "py/runtime.h"
#include "py/mperrno.h"
#include "extmod/vfs.h"
#include "extmod/vfs_lfs.h"
#include "qemu_flash.h"

#define FLASH_BLOCK_SIZE (4096)
#define PROG_CHUNK (256)

#define SYS_OPEN (0x01)
#define SYS_WRITE (0x05)
#define SYS_READ (0x06)
#define SYS_SEEK (0x0a)
#define SYS_FLEN (0x0c)
#define SYS_GET_CMDLINE (0x15)
#define OPEN_MODE_RPLUS_B (3)   // "r+b": read and write an existing file, no truncation

#define SYS_EXIT (0x18)
#define ADP_STOPPED_APPLICATION_EXIT (0x20026)

static int flash_fd = -1;
static uint32_t flash_blocks;
static uint32_t flash_writes;       // host writes (erases and program chunks) since boot
static uint32_t flash_cut_at;       // power cut instead of this write (0: none), for tests

static const uint8_t erased_block[FLASH_BLOCK_SIZE] = {
    [0 ... FLASH_BLOCK_SIZE - 1] = 0xff
};

static int semihost(int op, void *arg) {
    register int r0 __asm__ ("r0") = op;
    register void *r1 __asm__ ("r1") = arg;
    __asm volatile ("bkpt 0xab" : "+r" (r0) : "r" (r1) : "memory");
    return r0;
}

static bool host_seek(int fd, uint32_t pos) {
    uint32_t args[2] = { (uint32_t)fd, pos };
    return semihost(SYS_SEEK, args) == 0;
}

// SYS_READ and SYS_WRITE return the number of bytes NOT transferred.
static bool host_read(uint32_t pos, void *buf, uint32_t len) {
    uint32_t args[3] = { (uint32_t)flash_fd, (uint32_t)buf, len };
    return host_seek(flash_fd, pos) && semihost(SYS_READ, args) == 0;
}

static bool host_write_fd(int fd, uint32_t pos, const void *buf, uint32_t len) {
    uint32_t args[3] = { (uint32_t)fd, (uint32_t)buf, len };
    return host_seek(fd, pos) && semihost(SYS_WRITE, args) == 0;
}

static bool host_write(uint32_t pos, const void *buf, uint32_t len) {
    if (++flash_writes == flash_cut_at) {
        // The power goes: qemu stops here, and this write and everything after it never happen.
        // (32-bit semihosting: the reason code itself is the argument)
        semihost(SYS_EXIT, (void *)ADP_STOPPED_APPLICATION_EXIT);
        for (;;) {
        }
    }
    return host_write_fd(flash_fd, pos, buf, len);
}

// Opens the host file named by `KEY=PATH` on the semihosting command line ("mcutrain flash=... romfs=...");
// returns its descriptor, or -1.
static int host_open(const char *key) {
    char cmdline[512];
    uint32_t args[2] = { (uint32_t)cmdline, sizeof(cmdline) };
    if (semihost(SYS_GET_CMDLINE, args) != 0) {
        return -1;
    }
    char *path = strstr(cmdline, key);
    if (path == NULL) {
        return -1;
    }
    path += strlen(key);
    char *end = strchr(path, ' ');
    if (end != NULL) {
        *end = '\0';
    }
    uint32_t open_args[3] = { (uint32_t)path, OPEN_MODE_RPLUS_B, strlen(path) };
    return semihost(SYS_OPEN, open_args);
}

void qemu_flash_open(void) {
    int fd = host_open(" flash=");
    if (fd < 0) {
        return;
    }
    uint32_t flen_args[1] = { (uint32_t)fd };
    int len = semihost(SYS_FLEN, flen_args);
    if (len < 2 * FLASH_BLOCK_SIZE) {
        return;
    }
    flash_fd = fd;
    flash_blocks = (uint32_t)len / FLASH_BLOCK_SIZE;
}

static bool flash_erase(uint32_t block) {
    return host_write(block * FLASH_BLOCK_SIZE, erased_block, FLASH_BLOCK_SIZE);
}

// NOR programming: bits only go from 1 to 0, one page-sized chunk per host write.
static bool flash_program(uint32_t addr, const uint8_t *data, uint32_t len) {
    uint8_t chunk[PROG_CHUNK];
    while (len > 0) {
        uint32_t n = len < PROG_CHUNK ? len : PROG_CHUNK;
        if (!host_read(addr, chunk, n)) {
            return false;
        }
        for (uint32_t i = 0; i < n; i++) {
            chunk[i] &= data[i];
        }
        if (!host_write(addr, chunk, n)) {
            return false;
        }
        addr += n;
        data += n;
        len -= n;
    }
    return true;
}

// ---------------------------------------------------------------------------------------------
// The block device object (MicroPython's extended block protocol, as vfs.VfsLfs2 uses it).

typedef struct _flash_bdev_obj_t {
    mp_obj_base_t base;
} flash_bdev_obj_t;

static const mp_obj_type_t flash_bdev_type;
static const flash_bdev_obj_t flash_bdev_obj = { { &flash_bdev_type } };

// The byte range [block * 4096 + offset, + len) of the device, or an OSError.
static uint32_t flash_range(mp_obj_t block_in, mp_int_t offset, size_t len) {
    mp_int_t block = mp_obj_get_int(block_in);
    if (flash_fd < 0 || block < 0 || offset < 0
        || (uint64_t)block * FLASH_BLOCK_SIZE + (uint64_t)offset + len > (uint64_t)flash_blocks * FLASH_BLOCK_SIZE) {
        mp_raise_OSError(MP_EINVAL);
    }
    return (uint32_t)block * FLASH_BLOCK_SIZE + (uint32_t)offset;
}

static mp_obj_t flash_bdev_readblocks(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t buf;
    mp_get_buffer_raise(args[2], &buf, MP_BUFFER_WRITE);
    mp_int_t offset = n_args == 4 ? mp_obj_get_int(args[3]) : 0;
    uint32_t addr = flash_range(args[1], offset, buf.len);
    if (!host_read(addr, buf.buf, buf.len)) {
        mp_raise_OSError(MP_EIO);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(flash_bdev_readblocks_obj, 3, 4, flash_bdev_readblocks);

// writeblocks(block, buf): erase the blocks and program them (the simple protocol);
// writeblocks(block, buf, offset): program only, onto erased Flash (the extended protocol).
static mp_obj_t flash_bdev_writeblocks(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t buf;
    mp_get_buffer_raise(args[2], &buf, MP_BUFFER_READ);
    mp_int_t offset = n_args == 4 ? mp_obj_get_int(args[3]) : 0;
    uint32_t addr = flash_range(args[1], offset, buf.len);
    if (n_args == 3) {
        for (uint32_t b = addr / FLASH_BLOCK_SIZE; b * FLASH_BLOCK_SIZE < addr + buf.len; b++) {
            if (!flash_erase(b)) {
                mp_raise_OSError(MP_EIO);
            }
        }
    }
    if (!flash_program(addr, buf.buf, buf.len)) {
        mp_raise_OSError(MP_EIO);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(flash_bdev_writeblocks_obj, 3, 4, flash_bdev_writeblocks);

static mp_obj_t flash_bdev_ioctl(mp_obj_t self_in, mp_obj_t op_in, mp_obj_t arg_in) {
    switch (mp_obj_get_int(op_in)) {
        case MP_BLOCKDEV_IOCTL_INIT:
        case MP_BLOCKDEV_IOCTL_DEINIT:
        case MP_BLOCKDEV_IOCTL_SYNC:
            return MP_OBJ_NEW_SMALL_INT(0);
        case MP_BLOCKDEV_IOCTL_BLOCK_COUNT:
            return MP_OBJ_NEW_SMALL_INT(flash_blocks);
        case MP_BLOCKDEV_IOCTL_BLOCK_SIZE:
            return MP_OBJ_NEW_SMALL_INT(FLASH_BLOCK_SIZE);
        case MP_BLOCKDEV_IOCTL_BLOCK_ERASE: {
            mp_int_t block = mp_obj_get_int(arg_in);
            if (flash_fd < 0 || block < 0 || (mp_uint_t)block >= flash_blocks || !flash_erase(block)) {
                return MP_OBJ_NEW_SMALL_INT(-MP_EIO);
            }
            return MP_OBJ_NEW_SMALL_INT(0);
        }
        default:
            return mp_const_none;
    }
}
static MP_DEFINE_CONST_FUN_OBJ_3(flash_bdev_ioctl_obj, flash_bdev_ioctl);

static const mp_rom_map_elem_t flash_bdev_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR_readblocks), MP_ROM_PTR(&flash_bdev_readblocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_writeblocks), MP_ROM_PTR(&flash_bdev_writeblocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_ioctl), MP_ROM_PTR(&flash_bdev_ioctl_obj) },
};
static MP_DEFINE_CONST_DICT(flash_bdev_locals_dict, flash_bdev_locals_dict_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    flash_bdev_type,
    MP_QSTR_Flash,
    MP_TYPE_FLAG_NONE,
    locals_dict, &flash_bdev_locals_dict
    );

// `qemu_flash.bdev()`: the board's Flash block device, or None when qemu was given no flash file.
static mp_obj_t qemu_flash_bdev(void) {
    return flash_fd < 0 ? mp_const_none : MP_OBJ_FROM_PTR(&flash_bdev_obj);
}
static MP_DEFINE_CONST_FUN_OBJ_0(qemu_flash_bdev_obj, qemu_flash_bdev);

// `qemu_flash.writes()`: how many writes (erases and program chunks) the Flash has had since boot.
static mp_obj_t qemu_flash_writes(void) {
    return mp_obj_new_int_from_uint(flash_writes);
}
static MP_DEFINE_CONST_FUN_OBJ_0(qemu_flash_writes_obj, qemu_flash_writes);

// `qemu_flash.cut(n)`: cut the power (stop qemu) instead of doing the n-th write from now (n >= 1),
// so a test can stop the board at an exact point of a save; cut(0) cancels.
static mp_obj_t qemu_flash_cut(mp_obj_t n_in) {
    mp_int_t n = mp_obj_get_int(n_in);
    if (n < 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("n must be >= 0"));
    }
    flash_cut_at = n ? flash_writes + (uint32_t)n : 0;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(qemu_flash_cut_obj, qemu_flash_cut);

static const mp_rom_map_elem_t qemu_flash_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_qemu_flash) },
    { MP_ROM_QSTR(MP_QSTR_bdev), MP_ROM_PTR(&qemu_flash_bdev_obj) },
    { MP_ROM_QSTR(MP_QSTR_writes), MP_ROM_PTR(&qemu_flash_writes_obj) },
    { MP_ROM_QSTR(MP_QSTR_cut), MP_ROM_PTR(&qemu_flash_cut_obj) },
};
static MP_DEFINE_CONST_DICT(qemu_flash_module_globals, qemu_flash_module_globals_table);

const mp_obj_module_t qemu_flash_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&qemu_flash_module_globals,
};
MP_REGISTER_MODULE(MP_QSTR_qemu_flash, qemu_flash_module);

// ---------------------------------------------------------------------------------------------
// Writing the ROMFS partition (vfs.rom_ioctl 3, 4, 5, as `mpremote romfs deploy` does), mps2 boards
// only: their "Flash" at 0x00100000 is RAM to qemu, so the CPU can write it; qemu's nRF51 flash is
// read-only. The image also goes to the host file named by `romfs=PATH` (if any), the file that
// host_tools loads into the partition when qemu starts: a deployed ROMFS outlives the run.

#if defined(QEMU_SOC_MPS2)
extern uint8_t _romfs_start;
extern uint8_t _romfs_size;

static int romfs_fd = -2;   // -2: not opened yet

mp_obj_t qemu_romfs_write_ioctl(size_t n_args, const mp_obj_t *args) {
    mp_int_t cmd = mp_obj_get_int(args[0]);
    uint8_t *start = &_romfs_start;
    size_t size = (size_t)(uintptr_t)&_romfs_size;
    if (cmd == MP_VFS_ROM_IOCTL_WRITE_PREPARE && n_args == 3) {
        mp_int_t len = mp_obj_get_int(args[2]);
        if (len < 0 || (size_t)len > size) {
            return MP_OBJ_NEW_SMALL_INT(-MP_EINVAL);
        }
        if (romfs_fd == -2) {
            romfs_fd = host_open(" romfs=");
        }
        memset(start, 0xff, len);   // erase what the image will cover
        return MP_OBJ_NEW_SMALL_INT(4);   // the smallest write
    }
    if (cmd == MP_VFS_ROM_IOCTL_WRITE && n_args == 4) {
        mp_int_t offset = mp_obj_get_int(args[2]);
        mp_buffer_info_t buf;
        mp_get_buffer_raise(args[3], &buf, MP_BUFFER_READ);
        if (offset < 0 || (size_t)offset + buf.len > size) {
            return MP_OBJ_NEW_SMALL_INT(-MP_EINVAL);
        }
        memcpy(start + offset, buf.buf, buf.len);
        if (romfs_fd >= 0 && !host_write_fd(romfs_fd, offset, buf.buf, buf.len)) {
            return MP_OBJ_NEW_SMALL_INT(-MP_EIO);
        }
        return MP_OBJ_NEW_SMALL_INT(0);
    }
    if (cmd == MP_VFS_ROM_IOCTL_WRITE_COMPLETE) {
        return MP_OBJ_NEW_SMALL_INT(0);
    }
    return MP_OBJ_NEW_SMALL_INT(-MP_EINVAL);
}
#else
mp_obj_t qemu_romfs_write_ioctl(size_t n_args, const mp_obj_t *args) {
    return MP_OBJ_NEW_SMALL_INT(-MP_EPERM);
}
#endif

// ---------------------------------------------------------------------------------------------
// Mounting at boot (every mp_init(), so also after a soft reset).

void qemu_flash_mount(void) {
    if (flash_fd < 0) {
        return;         // qemu was given no flash file
    }
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_obj_t bdev = MP_OBJ_FROM_PTR(&flash_bdev_obj);
        mp_obj_t lfs2 = MP_OBJ_FROM_PTR(&mp_type_vfs_lfs2);
        mp_obj_t vfs;
        nlr_buf_t nlr_mount;
        if (nlr_push(&nlr_mount) == 0) {
            vfs = mp_call_function_1(lfs2, bdev);
            nlr_pop();
        } else {
            // A blank (or unreadable) Flash: format it, as MicroPython's boards do on first boot.
            mp_call_function_1(mp_load_attr(lfs2, MP_QSTR_mkfs), bdev);
            vfs = mp_call_function_1(lfs2, bdev);
        }
        // (plain strings: a qstr named "/flash" would need a qstrdefs entry in the port)
        mp_obj_t mount_point = mp_obj_new_str_via_qstr("/flash", 6);
        mp_call_function_2(MP_OBJ_FROM_PTR(&mp_vfs_mount_obj), vfs, mount_point);
        mp_obj_list_append(mp_sys_path, mount_point);
        mp_obj_list_append(mp_sys_path, mp_obj_new_str_via_qstr("/flash/lib", 10));
        nlr_pop();
    } else {
        mp_printf(&mp_plat_print, "qemu_flash: cannot mount /flash: ");
        mp_obj_print_exception(&mp_plat_print, MP_OBJ_FROM_PTR(nlr.ret_val));
    }
}
