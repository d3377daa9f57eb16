// The stack's high-water mark, measured: the stack is painted once at boot, and
// `board.stack_high_water()` reports how deep anything has written since (the deepest byte that
// no longer holds the paint). Shared by the qemu boards; used by `make bench-memory`.

#include <stdint.h>

#include "py/runtime.h"
#include "qemu_systick_romfs.h"

extern uint32_t _sstack, _estack;

#define STACK_PAINT (0x5aa5a55au)

void qemu_stack_paint(void) {
    uint32_t *sp;
    __asm volatile ("mov %0, sp" : "=r" (sp));
    // leave the 64 bytes below the current frame alone: the painting loop itself runs there
    for (uint32_t *p = &_sstack; p < sp - 16; p++) {
        *p = STACK_PAINT;
    }
}

static mp_obj_t board_stack_high_water(void) {
    const uint32_t *p = &_sstack;
    while (p < &_estack && *p == STACK_PAINT) {
        p++;
    }
    return mp_obj_new_int_from_uint((uint32_t)((uintptr_t)&_estack - (uintptr_t)p));
}
static MP_DEFINE_CONST_FUN_OBJ_0(board_stack_high_water_obj, board_stack_high_water);

static mp_obj_t board_stack_size(void) {
    return mp_obj_new_int_from_uint((uint32_t)((uintptr_t)&_estack - (uintptr_t)&_sstack));
}
static MP_DEFINE_CONST_FUN_OBJ_0(board_stack_size_obj, board_stack_size);

static const mp_rom_map_elem_t board_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_board) },
    { MP_ROM_QSTR(MP_QSTR_stack_high_water), MP_ROM_PTR(&board_stack_high_water_obj) },
    { MP_ROM_QSTR(MP_QSTR_stack_size), MP_ROM_PTR(&board_stack_size_obj) },
};
static MP_DEFINE_CONST_DICT(board_module_globals, board_module_globals_table);

const mp_obj_module_t board_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&board_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_board, board_module);
