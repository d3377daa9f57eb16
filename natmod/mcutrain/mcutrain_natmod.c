// mcutrain as a MicroPython dynamic native module (.mpy with machine code), for stock firmware:
// the same portable core (c_src/) and the same binding source as the built-in module
// (modules/mcutrain/modmcutrain.c, #included below, as examples/natmod/framebuf does with
// extmod/modframebuf.c). This file is only the glue:
//  - libc for the core (a native module has none: the firmware's, through mp_fun_table);
//  - the types, built at import time (a native module cannot hold const objects whose fields
//    point into the firmware), with method tables made from the binding's method lists;
//  - natmod_port.h: the calls the dynamic runtime lacks (formatted errors, memoryviews, the
//    heap's largest free block).
//
//   import mcutrain                       # mcutrain.mpy on the board's filesystem
//   m = mcutrain.Model(buf)

#include "natmod_port.h"

// The core calls memcpy/memset; a native module has no libc: the firmware's, via mp_fun_table.
void *memcpy(void *dst, const void *src, size_t n) {
    return mp_fun_table.memmove_(dst, src, n);
}
void *memmove(void *dst, const void *src, size_t n) {
    return mp_fun_table.memmove_(dst, src, n);
}
void *memset(void *s, int c, size_t n) {
    return mp_fun_table.memset_(s, c, n);
}
// (gcc turns a counting loop into a strlen call)
size_t strlen(const char *s) {
    const char *p = s;
    while (*(volatile const char *)p) {
        p++;
    }
    return p - s;
}

mp_obj_full_type_t mcutrain_model_type;   // (not static: mpy_ld cannot relocate static bss)
mp_obj_full_type_t mcutrain_layer_type;

#include "modmcutrain.c"

#define MCT_COUNT(name, obj) +1
mp_map_elem_t mcutrain_model_locals_table[MCT_MODEL_METHODS(MCT_COUNT)];
static MP_DEFINE_CONST_DICT(model_locals_dict, mcutrain_model_locals_table);
mp_map_elem_t mcutrain_layer_locals_table[MCT_LAYER_METHODS(MCT_COUNT)];
static MP_DEFINE_CONST_DICT(layer_locals_dict, mcutrain_layer_locals_table);

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY

    size_t k;
    #define MCT_SET_METHOD(name, obj) \
    table[k++] = (mp_map_elem_t) { MP_OBJ_NEW_QSTR(name), MP_OBJ_FROM_PTR(&obj) };

    mcutrain_model_type.base.type = (void *)&mp_type_type;
    mcutrain_model_type.flags = MP_TYPE_FLAG_NONE;
    mcutrain_model_type.name = MP_QSTR_Model;
    MP_OBJ_TYPE_SET_SLOT(&mcutrain_model_type, make_new, model_make_new, 0);
    MP_OBJ_TYPE_SET_SLOT(&mcutrain_model_type, attr, model_attr, 1);
    mp_map_elem_t *table = mcutrain_model_locals_table;
    k = 0;
    MCT_MODEL_METHODS(MCT_SET_METHOD)
    MP_OBJ_TYPE_SET_SLOT(&mcutrain_model_type, locals_dict, (void *)&model_locals_dict, 2);

    mcutrain_layer_type.base.type = (void *)&mp_type_type;
    mcutrain_layer_type.flags = MP_TYPE_FLAG_NONE;
    mcutrain_layer_type.name = MP_QSTR_Layer;
    MP_OBJ_TYPE_SET_SLOT(&mcutrain_layer_type, print, layer_print, 0);
    MP_OBJ_TYPE_SET_SLOT(&mcutrain_layer_type, attr, layer_attr, 1);
    table = mcutrain_layer_locals_table;
    k = 0;
    MCT_LAYER_METHODS(MCT_SET_METHOD)
    MP_OBJ_TYPE_SET_SLOT(&mcutrain_layer_type, locals_dict, (void *)&layer_locals_dict, 2);

    mp_store_global(MP_QSTR_Model, MP_OBJ_FROM_PTR(&mcutrain_model_type));
    mp_store_global(MP_QSTR_Layer, MP_OBJ_FROM_PTR(&mcutrain_layer_type));
    mp_store_global(MP_QSTR_FORMAT_VERSION, MP_OBJ_NEW_SMALL_INT(MCT_VERSION));

    MP_DYNRUNTIME_INIT_EXIT
}
