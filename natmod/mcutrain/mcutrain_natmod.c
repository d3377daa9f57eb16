// mcutrain as a MicroPython dynamic native module (.mpy with machine code), for stock firmware:
// the same portable core (c_src/) and the same Python API as the built-in module
// (modules/mcutrain/modmcutrain.c), written against py/dynruntime.h.
//
//   import mcutrain                       # mcutrain.mpy on the board's filesystem
//   m = mcutrain.Model(buf)               # Model, forward, predict, train_step, mem_info, save,
//                                         # layers, set_input, loss_backward, Layer
//
// What differs from the built-in module, because a native module only reaches the firmware
// through mp_fun_table:
//  - the types are built at import time (a native module cannot hold const objects whose fields
//    point into the firmware), their methods tables too;
//  - forward() returns a memoryview of an array('b') (the same typecode and contents);
//  - save() hands write() bytearrays that refer to the model's memory (not read-only memoryviews);
//  - the "largest free block" of the MemoryError is found by probing the heap (no gc_info()).

#include "py/dynruntime.h"
#include "mcutrain.h"
#include "../../modules/mcutrain/mct_names.h"

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

typedef struct _mcutrain_model_obj_t {
    mp_obj_base_t base;
    mp_obj_t buf_obj;
    mp_obj_t input_obj;         // set_input()'s buffer, which a model reading its input in place reads
    size_t buf_len;
    void *workspace;
    size_t workspace_size;
    mct_model_t model;
} mcutrain_model_obj_t;

typedef struct _mcutrain_layer_obj_t {
    mp_obj_base_t base;
    mcutrain_model_obj_t *model;
    uint16_t index;
} mcutrain_layer_obj_t;

mp_obj_full_type_t mcutrain_model_type;   // (not static: mpy_ld cannot relocate static bss)
mp_obj_full_type_t mcutrain_layer_type;

// ---------------------------------------------------------------------------------------------
// Error messages: formatted here (%u %d %s %x, %08x), raised with a str argument.

static char *fmt_uint(char *p, char *end, uint32_t v, unsigned base, int width) {
    char digits[12];
    int n = 0;
    do {
        unsigned d = v % base;
        digits[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    while (n < width && n < 12) {
        digits[n++] = '0';
    }
    while (n && p < end) {
        *p++ = digits[--n];
    }
    return p;
}

static NORETURN void raise_fmt(const mp_obj_type_t *type, const char *fmt, ...) {
    char buf[160];
    char *p = buf, *end = buf + sizeof(buf);
    va_list ap;
    va_start(ap, fmt);
    for (; *fmt && p < end; fmt++) {
        if (*fmt != '%') {
            *p++ = *fmt;
            continue;
        }
        fmt++;
        int width = 0;
        if (*fmt == '0') {
            width = fmt[1] - '0';
            fmt += 2;
        }
        if (*fmt == 'u') {
            p = fmt_uint(p, end, va_arg(ap, unsigned), 10, width);
        } else if (*fmt == 'x') {
            p = fmt_uint(p, end, va_arg(ap, unsigned), 16, width);
        } else if (*fmt == 'd') {
            int v = va_arg(ap, int);
            if (v < 0 && p < end) {
                *p++ = '-';
            }
            p = fmt_uint(p, end, v < 0 ? (uint32_t)0 - (uint32_t)v : (uint32_t)v, 10, width);
        } else if (*fmt == 's') {
            for (const char *s = va_arg(ap, const char *); *s && p < end; s++) {
                *p++ = *s;
            }
        }
    }
    va_end(ap);
    mp_raise_dyn(mp_obj_new_exception_arg1_dyn(type, mp_obj_new_str(buf, p - buf)));
}


// The same messages as the built-in module (modmcutrain.c).
static NORETURN void raise_status(const mct_model_t *m, int code) {
    const mct_error_t *e = &m->error;
    const mp_obj_type_t *VE = &mp_type_ValueError;
    switch (code) {
        case MCT_E_TRUNCATED:
            raise_fmt(VE, "model is truncated: %u bytes, needs %u", (unsigned)e->a, (unsigned)e->b);
        case MCT_E_MAGIC:
            raise_fmt(VE, "not an mcutrain model (bad magic)");
        case MCT_E_VERSION:
            raise_fmt(VE, "model format version %u not supported (expected %u)", (unsigned)e->a, (unsigned)e->b);
        case MCT_E_SIZE:
            raise_fmt(VE, "model buffer is %u bytes but its header says %u", (unsigned)e->a, (unsigned)e->b);
        case MCT_E_CRC:
            raise_fmt(VE, "model is corrupted: CRC32 %08x, computed %08x", (unsigned)e->a, (unsigned)e->b);
        case MCT_E_TABLE:
            raise_fmt(VE, "model table %d is outside the file or invalid", e->index);
        case MCT_E_TOO_MANY:
            raise_fmt(VE, "model has %u entries in table %d, limit %u", (unsigned)e->a, e->index, (unsigned)e->b);
        case MCT_E_TENSOR:
            raise_fmt(VE, "model tensor %d lies outside the file or has a bad type", e->index);
        case MCT_E_ALIGN:
            raise_fmt(VE, "model buffer is not 4-byte aligned (tensor %d)", e->index);
        case MCT_E_ACT:
            raise_fmt(VE, "model activation %d has a bad shape or lies outside the arena", e->index);
        case MCT_E_OP:
            raise_fmt(VE, "model op %d: %s", e->index, mct_op_problem(e->a));
        case MCT_E_TRAIN:
            raise_fmt(VE, "model tensor %d is marked trained, which this engine cannot train", e->index);
        case MCT_E_NOT_TRAINABLE:
            raise_fmt(VE, "model has no trained tensors: convert it with a training scheme");
        case MCT_E_INPUT:
            if (e->b == 0) {
                raise_fmt(VE, "no input: call set_input(x) before the layers' forward()");
            }
            raise_fmt(VE, "input must be %u int8 bytes, got %u", (unsigned)e->b, (unsigned)e->a);
        case MCT_E_LABEL:
            raise_fmt(VE, "label %d out of range for %u classes", (int)e->a, (unsigned)e->b);
        case MCT_E_LR:
            raise_fmt(VE, "learning rate must be finite and >= 0");
        case MCT_E_NUMERIC:
            raise_fmt(VE, "loss is not finite: step skipped, weights unchanged");
        case MCT_E_OP_INDEX:
            raise_fmt(&mp_type_IndexError, "layer index %u out of range (%u layers)", (unsigned)e->a, (unsigned)e->b);
        case MCT_E_FLAGS:
            raise_fmt(VE, "model has unknown training flags 0x%02x (header byte 50)", (unsigned)e->a);
        default:
            raise_fmt(VE, "model is not ready");
    }
}

static void check(mcutrain_model_obj_t *self, int code) {
    if (code != MCT_OK) {
        raise_status(&self->model, code);
    }
}

static mct_model_t *model_of(mcutrain_model_obj_t *self) {
    mp_buffer_info_t bi;
    mp_get_buffer_raise(self->buf_obj, &bi, MP_BUFFER_READ);
    if (bi.len != self->buf_len) {
        raise_fmt(&mp_type_ValueError, "model buffer changed size since the model was loaded");
    }
    mct_model_rebind(&self->model, bi.buf);
    return &self->model;
}

// The largest block the heap can give now (at most `limit`): found by trying, as the dynamic
// runtime has no gc_info().
static size_t largest_free_block(size_t limit) {
    size_t lo = 0, hi = limit;
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        void *p = m_realloc_maybe(NULL, mid, false);
        if (p) {
            m_free(p);
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    return lo;
}

// ---------------------------------------------------------------------------------------------
// Model

static mp_obj_t model_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *all_args) {
    enum { ARG_buf, ARG_qas };
    mp_arg_t allowed[2] = {
        { MP_QSTR_buf, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
        { MP_QSTR_qas, MP_ARG_KW_ONLY | MP_ARG_BOOL, {.u_bool = true} },
    };
    mp_arg_val_t args[2];
    mp_arg_parse_all_kw_array(n_args, n_kw, all_args, 2, allowed, args);

    mp_obj_t buf_obj = args[ARG_buf].u_obj;
    mp_buffer_info_t bi;
    if (!mp_get_buffer(buf_obj, &bi, MP_BUFFER_READ)) {
        mp_obj_t read[2];
        mp_load_method_maybe(buf_obj, MP_QSTR_read, read);
        if (read[0] == MP_OBJ_NULL) {
            raise_fmt(&mp_type_TypeError, "Model needs a buffer (bytes, bytearray, memoryview) or a file");
        }
        buf_obj = mp_call_function_n_kw(read[0], 0, 0, NULL);
        mp_get_buffer_raise(buf_obj, &bi, MP_BUFFER_READ);
    }
    mcutrain_model_obj_t *self = mp_obj_malloc(mcutrain_model_obj_t, type);
    self->buf_obj = buf_obj;
    self->input_obj = MP_OBJ_NULL;
    self->buf_len = bi.len;
    self->workspace = NULL;
    int r = mct_model_init(&self->model, bi.buf, bi.len);
    if (r != MCT_OK) {
        raise_status(&self->model, r);
    }
    self->model.qas = args[ARG_qas].u_bool;
    size_t need = mct_workspace_size(&self->model);
    self->workspace = m_realloc_maybe(NULL, need ? need : 4, false);
    if (self->workspace == NULL) {
        raise_fmt(mp_load_global(MP_QSTR_MemoryError),
            "model needs %u bytes of RAM (arena %u + trained tensors %u), largest free block is %u",
            (unsigned)need, (unsigned)self->model.arena_size, (unsigned)self->model.trained_bytes,
            (unsigned)largest_free_block(need));
    }
    self->workspace_size = need;
    mct_model_attach(&self->model, self->workspace);
    return MP_OBJ_FROM_PTR(self);
}

static const int8_t *input_of(mp_obj_t x, size_t *len) {
    mp_buffer_info_t bi;
    mp_get_buffer_raise(x, &bi, MP_BUFFER_READ);
    *len = bi.len;
    return bi.buf;
}

// forward(x[, out]): the int8 logits in `out`, or in a new memoryview of an array('b').
static mp_obj_t model_forward(size_t n_args, const mp_obj_t *args) {
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    mct_model_t *m = model_of(self);
    size_t len;
    const int8_t *x = input_of(args[1], &len);
    check(self, mct_forward(m, x, len));
    uint32_t n;
    const int8_t *logits = mct_logits(m, &n);
    if (n_args > 2) {
        mp_buffer_info_t out;
        mp_get_buffer_raise(args[2], &out, MP_BUFFER_WRITE);
        if (out.len != n) {
            raise_fmt(&mp_type_ValueError, "out must be %u bytes, got %u", (unsigned)n, (unsigned)out.len);
        }
        memcpy(out.buf, logits, n);
        return args[2];
    }
    mp_obj_t array_mod = mp_import_name(MP_QSTR_array, mp_const_none, MP_OBJ_NEW_SMALL_INT(0));
    mp_obj_t ctor_args[2] = { MP_OBJ_NEW_QSTR(MP_QSTR_b), mp_obj_new_bytes((const byte *)logits, n) };
    mp_obj_t arr = mp_call_function_n_kw(mp_load_attr(array_mod, MP_QSTR_array), 2, 0, ctor_args);
    return mp_call_function_n_kw(mp_load_global(MP_QSTR_memoryview), 1, 0, &arr);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(model_forward_obj, 2, 3, model_forward);

static mp_obj_t model_predict(mp_obj_t self_in, mp_obj_t x_in) {
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mct_model_t *m = model_of(self);
    size_t len;
    const int8_t *x = input_of(x_in, &len);
    check(self, mct_forward(m, x, len));
    return MP_OBJ_NEW_SMALL_INT(mct_argmax(m));
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_predict_obj, model_predict);

static uint32_t label_arg(mcutrain_model_obj_t *self, mp_obj_t label_in) {
    mp_int_t label = mp_obj_get_int(label_in);
    uint32_t n;
    mct_logits(&self->model, &n);
    if (label < 0 || (mp_uint_t)label >= n) {
        raise_fmt(&mp_type_ValueError, "label %d out of range for %u classes", (int)label, (unsigned)n);
    }
    return (uint32_t)label;
}

static mp_obj_t model_train_step(size_t n_args, const mp_obj_t *pos_args, mp_map_t *kw_args) {
    enum { ARG_x, ARG_label, ARG_lr };
    mp_arg_t allowed[3] = {
        { MP_QSTR_x, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
        { MP_QSTR_label, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
        { MP_QSTR_lr, MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
    };
    mp_arg_val_t args[3];
    mp_arg_parse_all(n_args - 1, pos_args + 1, kw_args, 3, allowed, args);
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(pos_args[0]);
    mct_model_t *m = model_of(self);
    size_t len;
    const int8_t *x = input_of(args[ARG_x].u_obj, &len);
    uint32_t label = label_arg(self, args[ARG_label].u_obj);
    float lr = args[ARG_lr].u_obj == MP_OBJ_NULL ? 0.01f : mp_obj_get_float_to_f(args[ARG_lr].u_obj);
    float loss = 0.0f;
    check(self, mct_train_step(m, x, len, label, lr, &loss));
    return mp_obj_new_float_from_f(loss);
}
static MP_DEFINE_CONST_FUN_OBJ_KW(model_train_step_obj, 1, model_train_step);

static void dict_set(mp_obj_t d, qstr key, mp_int_t v) {
    mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(key), mp_obj_new_int(v));
}

static mp_obj_t model_mem_info(mp_obj_t self_in) {
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mct_model_t *m = model_of(self);
    mp_obj_t d = mp_obj_new_dict(8);
    dict_set(d, MP_QSTR_arena, m->arena_size);
    dict_set(d, MP_QSTR_arena_peak, mct_arena_peak(m));
    dict_set(d, MP_QSTR_saved, m->saved_bytes);
    dict_set(d, MP_QSTR_trained, m->trained_bytes);
    dict_set(d, MP_QSTR_workspace, self->workspace_size);
    dict_set(d, MP_QSTR_model, self->buf_len);
    dict_set(d, MP_QSTR_steps, m->steps);
    dict_set(d, MP_QSTR_skipped, m->skipped_steps);
    dict_set(d, MP_QSTR_skipped_updates, m->skipped_updates);
    return d;
}
static MP_DEFINE_CONST_FUN_OBJ_1(model_mem_info_obj, model_mem_info);

// save(stream): the model file with its trained tensors, in pieces of at most 4 KB.
static mp_obj_t model_save(mp_obj_t self_in, mp_obj_t stream) {
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mct_model_t *m = model_of(self);
    mp_obj_t write = mp_load_attr(stream, MP_QSTR_write);
    uint32_t crc = mct_save_crc(m);
    uint8_t crc_bytes[4];
    uint32_t pos = 0;
    while (pos < m->file_size) {
        const uint8_t *p;
        uint32_t n;
        mct_save_chunk(m, pos, crc, crc_bytes, &p, &n);
        if (n > 4096) {
            n = 4096;
        }
        // a bytearray that refers to the data (no copy): write() must consume it before it returns
        mp_obj_t piece = mp_obj_new_bytearray_by_ref(n, (void *)p);
        mp_call_function_n_kw(write, 1, 0, &piece);
        pos += n;
    }
    return mp_obj_new_int_from_uint(pos);
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_save_obj, model_save);

static mp_obj_t model_layers(mp_obj_t self_in) {
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mp_obj_t t = mp_obj_new_list(0, NULL);
    for (uint16_t k = 0; k < self->model.n_ops; k++) {
        mcutrain_layer_obj_t *layer = mp_obj_malloc(mcutrain_layer_obj_t, (const mp_obj_type_t *)&mcutrain_layer_type);
        layer->model = self;
        layer->index = k;
        mp_obj_list_append(t, MP_OBJ_FROM_PTR(layer));
    }
    size_t n;
    mp_obj_t *items;
    mp_obj_get_array(t, &n, &items);
    return mp_obj_new_tuple(n, items);
}
static MP_DEFINE_CONST_FUN_OBJ_1(model_layers_obj, model_layers);

static mp_obj_t model_set_input(mp_obj_t self_in, mp_obj_t x_in) {
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mct_model_t *m = model_of(self);
    size_t len;
    const int8_t *x = input_of(x_in, &len);
    check(self, mct_set_input(m, x, len));
    self->input_obj = x_in;     // kept alive: the layers' forward may read it in place
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_set_input_obj, model_set_input);

// input_buffer(): as the built-in module's; a memoryview of a bytearray that refers to the
// workspace's first bytes (which keeps the workspace alive as long as the view is).
static mp_obj_t model_input_buffer(mp_obj_t self_in) {
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    size_t len;
    int8_t *p = mct_input_buffer(model_of(self), &len);
    if (p == NULL || (void *)p != self->workspace) {
        raise_fmt(&mp_type_ValueError, "model reads its input in place: convert it with --input-buffer model");
    }
    mp_obj_t arr = mp_obj_new_bytearray_by_ref(len, p);
    return mp_call_function_n_kw(mp_load_global(MP_QSTR_memoryview), 1, 0, &arr);
}
static MP_DEFINE_CONST_FUN_OBJ_1(model_input_buffer_obj, model_input_buffer);

static mp_obj_t model_loss_backward(mp_obj_t self_in, mp_obj_t label_in) {
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mct_model_t *m = model_of(self);
    float loss = 0.0f;
    check(self, mct_loss_backward(m, label_arg(self, label_in), &loss));
    return mp_obj_new_float_from_f(loss);
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_loss_backward_obj, model_loss_backward);

// seed(n): restart the random stream of stochastic rounding (update rule of the model file); it
// starts as the file's CRC, so the same file trains the same way unless seeded.
static mp_obj_t model_seed(mp_obj_t self_in, mp_obj_t seed_in) {
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mct_model_t *m = model_of(self);
    m->rng_seed = (uint32_t)mp_obj_get_int_truncated(seed_in);
    m->rng_counter = 0;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_seed_obj, model_seed);

static mp_obj_t shape_tuple(const mct_model_t *m, uint16_t a) {
    mct_act_t act;
    mct_act_get(m, a, &act);
    mp_obj_t items[3] = { MP_OBJ_NEW_SMALL_INT(act.c), MP_OBJ_NEW_SMALL_INT(act.h), MP_OBJ_NEW_SMALL_INT(act.w) };
    return mp_obj_new_tuple(3, items);
}

static void model_attr(mp_obj_t self_in, qstr attr, mp_obj_t *dest) {
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    if (dest[0] != MP_OBJ_NULL) {
        return;
    }
    mct_act_t a;
    if (attr == MP_QSTR_input_shape) {
        dest[0] = shape_tuple(&self->model, self->model.input);
    } else if (attr == MP_QSTR_n_classes) {
        mct_act_get(&self->model, self->model.output, &a);
        dest[0] = MP_OBJ_NEW_SMALL_INT(a.size);
    } else if (attr == MP_QSTR_input_scale) {
        dest[0] = mp_obj_new_float_from_f(self->model.input_scale);
    } else if (attr == MP_QSTR_input_zero) {
        dest[0] = MP_OBJ_NEW_SMALL_INT(self->model.input_zero);
    } else if (attr == MP_QSTR_qas) {
        dest[0] = mp_obj_new_bool(self->model.qas);
    } else {
        dest[1] = MP_OBJ_SENTINEL;      // continue lookup in locals_dict
    }
}

mp_map_elem_t mcutrain_model_locals_table[10];
static MP_DEFINE_CONST_DICT(model_locals_dict, mcutrain_model_locals_table);

// ---------------------------------------------------------------------------------------------
// Layer

static mp_obj_t layer_forward(mp_obj_t self_in) {
    mcutrain_layer_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mcutrain_model_obj_t *model = self->model;
    size_t len = 0;
    const int8_t *x = model->input_obj != MP_OBJ_NULL ? input_of(model->input_obj, &len) : NULL;
    mct_model_t *m = model_of(model);
    if (x != NULL && mct_input_in_place(m)) {
        // read in place: from where set_input()'s buffer is now (a bytearray may have moved)
        check(model, mct_set_input(m, x, len));
    }
    check(model, mct_forward_op(m, self->index));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(layer_forward_obj, layer_forward);

static mp_obj_t layer_backward(mp_obj_t self_in, mp_obj_t lr_in) {
    mcutrain_layer_obj_t *self = MP_OBJ_TO_PTR(self_in);
    check(self->model, mct_backward_op(model_of(self->model), self->index, mp_obj_get_float_to_f(lr_in)));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(layer_backward_obj, layer_backward);

static void layer_attr(mp_obj_t self_in, qstr attr, mp_obj_t *dest) {
    mcutrain_layer_obj_t *self = MP_OBJ_TO_PTR(self_in);
    if (dest[0] != MP_OBJ_NULL) {
        return;
    }
    const mct_model_t *m = &self->model->model;
    mct_op_t op;
    mct_op_get(m, self->index, &op);
    if (attr == MP_QSTR_kind) {
        const char *name = mct_op_name(op.type);
        dest[0] = mp_obj_new_str(name, strlen(name));
    } else if (attr == MP_QSTR_index) {
        dest[0] = MP_OBJ_NEW_SMALL_INT(self->index);
    } else if (attr == MP_QSTR_input_shape) {
        dest[0] = shape_tuple(m, op.in0);
    } else if (attr == MP_QSTR_output_shape) {
        dest[0] = shape_tuple(m, op.out);
    } else if (attr == MP_QSTR_trained) {
        int w = (op.type == MCT_OP_CONV2D || op.type == MCT_OP_FC);
        mp_obj_t items[2] = {
            mp_obj_new_bool(w && mct_tensor_trained(m, op.weight)),
            mp_obj_new_bool(w && mct_tensor_trained(m, op.bias)),
        };
        dest[0] = mp_obj_new_tuple(2, items);
    } else {
        dest[1] = MP_OBJ_SENTINEL;
    }
}

static void layer_print(const mp_print_t *print, mp_obj_t self_in, mp_print_kind_t kind) {
    mcutrain_layer_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mct_op_t op;
    mct_act_t in, out;
    const mct_model_t *m = &self->model->model;
    mct_op_get(m, self->index, &op);
    mct_act_get(m, op.in0, &in);
    mct_act_get(m, op.out, &out);
    mp_printf(print, "<Layer %u %s (%u,%u,%u)->(%u,%u,%u)>", self->index, mct_op_name(op.type),
        in.c, in.h, in.w, out.c, out.h, out.w);
}

mp_map_elem_t mcutrain_layer_locals_table[2];
static MP_DEFINE_CONST_DICT(layer_locals_dict, mcutrain_layer_locals_table);

// ---------------------------------------------------------------------------------------------
// Module

static mp_map_elem_t method(qstr name, const void *fun) {
    return (mp_map_elem_t) { MP_OBJ_NEW_QSTR(name), MP_OBJ_FROM_PTR(fun) };
}

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY

    mcutrain_model_type.base.type = (void *)&mp_type_type;
    mcutrain_model_type.flags = MP_TYPE_FLAG_NONE;
    mcutrain_model_type.name = MP_QSTR_Model;
    MP_OBJ_TYPE_SET_SLOT(&mcutrain_model_type, make_new, model_make_new, 0);
    MP_OBJ_TYPE_SET_SLOT(&mcutrain_model_type, attr, model_attr, 1);
    mcutrain_model_locals_table[0] = method(MP_QSTR_forward, &model_forward_obj);
    mcutrain_model_locals_table[1] = method(MP_QSTR_predict, &model_predict_obj);
    mcutrain_model_locals_table[2] = method(MP_QSTR_train_step, &model_train_step_obj);
    mcutrain_model_locals_table[3] = method(MP_QSTR_mem_info, &model_mem_info_obj);
    mcutrain_model_locals_table[4] = method(MP_QSTR_save, &model_save_obj);
    mcutrain_model_locals_table[5] = method(MP_QSTR_layers, &model_layers_obj);
    mcutrain_model_locals_table[6] = method(MP_QSTR_set_input, &model_set_input_obj);
    mcutrain_model_locals_table[7] = method(MP_QSTR_loss_backward, &model_loss_backward_obj);
    mcutrain_model_locals_table[8] = method(MP_QSTR_seed, &model_seed_obj);
    mcutrain_model_locals_table[9] = method(MP_QSTR_input_buffer, &model_input_buffer_obj);
    MP_OBJ_TYPE_SET_SLOT(&mcutrain_model_type, locals_dict, (void *)&model_locals_dict, 2);

    mcutrain_layer_type.base.type = (void *)&mp_type_type;
    mcutrain_layer_type.flags = MP_TYPE_FLAG_NONE;
    mcutrain_layer_type.name = MP_QSTR_Layer;
    MP_OBJ_TYPE_SET_SLOT(&mcutrain_layer_type, print, layer_print, 0);
    MP_OBJ_TYPE_SET_SLOT(&mcutrain_layer_type, attr, layer_attr, 1);
    mcutrain_layer_locals_table[0] = method(MP_QSTR_forward, &layer_forward_obj);
    mcutrain_layer_locals_table[1] = method(MP_QSTR_backward, &layer_backward_obj);
    MP_OBJ_TYPE_SET_SLOT(&mcutrain_layer_type, locals_dict, (void *)&layer_locals_dict, 2);

    mp_store_global(MP_QSTR_Model, MP_OBJ_FROM_PTR(&mcutrain_model_type));
    mp_store_global(MP_QSTR_Layer, MP_OBJ_FROM_PTR(&mcutrain_layer_type));
    mp_store_global(MP_QSTR_FORMAT_VERSION, MP_OBJ_NEW_SMALL_INT(MCT_VERSION));

    MP_DYNRUNTIME_INIT_EXIT
}
