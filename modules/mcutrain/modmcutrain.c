// mcutrain: MicroPython bindings of the portable core in c_src/, one source for both runtimes:
// compiled as the built-in module (USER_C_MODULES), and #included by the native module's glue
// (natmod/mcutrain/mcutrain_natmod.c, with MICROPY_ENABLE_DYNRUNTIME), as MicroPython's
// extmod/modframebuf.c is by examples/natmod/framebuf. What differs between the runtimes sits
// under `#if MICROPY_ENABLE_DYNRUNTIME` here and in natmod/mcutrain/natmod_port.h.
//
//   m = mcutrain.Model(buf)        # buf: bytes, bytearray, memoryview, ROMFS file: used in place;
//                                  # any other file is read into RAM once
//   m.forward(x[, out]) -> memoryview('b') of int8 logits
//   m.predict(x) -> int
//   m.train_step(x, label, lr) -> float loss
//                                  # x: a buffer, or a reader (an object with readinto(buf): a file,
//                                  # a camera) of the input's rows, read band by band
//                                  # with --input-buffer rows, whole with --input-buffer model
//   m.mem_info() -> dict;  m.save(stream);  m.layers() -> tuple of Layer
//   m.update_blob() -> bytes;  m.load_update(blob)     # the trained tensors alone (a fleet)
//
// The model keeps a reference to `buf` (its weights are read in place, from Flash on a board with
// ROMFS) and allocates its workspace (arena + trained copies) once, here, from the GC heap.

#include <string.h>

#if !MICROPY_ENABLE_DYNRUNTIME
#include "py/runtime.h"
#include "py/gc.h"
#include "py/obj.h"
#include "py/objarray.h"
#include "py/mpthread.h"
#endif
#include "py/objtuple.h"
#include "py/objarray.h"
#include "mcutrain.h"
#include "mct_names.h"

typedef struct _mcutrain_model_obj_t {
    mp_obj_base_t base;
    mp_obj_t buf_obj;           // keeps the weights alive
    mp_obj_t input_obj;         // set_input()'s buffer, which a model reading its input in place reads
    size_t buf_len;
    void *workspace;
    size_t workspace_size;
    uint32_t meta_sum;          // checksum of the header and tables, checked when writable
    bool writable;              // the buffer can change under the model (a bytearray)
    bool reading;               // a step is running an input reader's readinto (Python code)
    #if MICROPY_PY_THREAD && !MICROPY_PY_THREAD_GIL
    mp_thread_mutex_t mutex;    // see lock()
    #endif
    mct_model_t model;
} mcutrain_model_obj_t;

typedef struct _mcutrain_layer_obj_t {
    mp_obj_base_t base;
    mcutrain_model_obj_t *model;
    uint16_t index;
} mcutrain_layer_obj_t;

#if !MICROPY_ENABLE_DYNRUNTIME
// (the native module defines them as mp_obj_full_type_t, filled in by mpy_init)
extern const mp_obj_type_t mcutrain_model_type;
extern const mp_obj_type_t mcutrain_layer_type;

// Argument tables: const data here; in a native module their qstrs are known at load time only.
#define MCT_ARG_TABLE static const

// The built-in side of what the runtimes do differently (the native one: natmod_port.h).

// A new int8 buffer of n bytes for forward()'s logits, as a memoryview('b'); *data: its bytes.
static mp_obj_t new_int8_view(size_t n, int8_t **data) {
    *data = m_new(int8_t, n);
    return mp_obj_new_memoryview('b', n, *data);
}

// save()'s pieces: read-only views of the model's memory, not copies.
static mp_obj_t piece_view(const uint8_t *p, size_t n) {
    return mp_obj_new_memoryview('B', n, (void *)p);
}

// input_buffer(): a writable view of the model's own bytes.
static mp_obj_t writable_view(int8_t *p, size_t n) {
    return mp_obj_new_memoryview(MP_OBJ_ARRAY_TYPECODE_FLAG_RW | 'b', n, p);
}

// The largest block the heap can give now, for the MemoryError's message.
static size_t largest_free_block(size_t limit) {
    (void)limit;
    gc_info_t info;
    gc_info(&info);
    return info.max_free * MICROPY_BYTES_PER_GC_BLOCK;
}
#endif

// A refused update blob (c_src/mct_update_blob.c): the messages of host_tools/fleet/blob.py.
static NORETURN void raise_blob(const mct_model_t *m, const mct_error_t *e) {
    const unsigned b = (unsigned)e->b;
    switch (e->a) {
        case MCT_B_TRUNCATED:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("update blob is truncated: %u bytes"), b);
        case MCT_B_MAGIC:
            mp_raise_ValueError(MP_ERROR_TEXT("not an mcutrain update blob (bad magic)"));
        case MCT_B_VERSION:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("update blob version %u not supported"), b);
        case MCT_B_SIZE:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("update blob is %u bytes but its header says otherwise"), b);
        case MCT_B_CRC:
            mp_raise_ValueError(MP_ERROR_TEXT("update blob is corrupted: CRC32 mismatch"));
        case MCT_B_MODEL:
            mp_raise_msg_varg(&mp_type_ValueError,
                MP_ERROR_TEXT("update blob is for another model (model id %08x, this model's is %08x)"),
                b, (unsigned)mct_model_id(m));
        case MCT_B_LAYOUT:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("update blob entry %d is not this model's trained tensor"),
                e->index);
        case MCT_B_SCALE:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("update blob entry %d: channel %u's scale is not this model's"),
                e->index, b);
        default:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("update blob entry %d: element %u outside the trained range"),
                e->index, b);
    }
}

// Turn a core status into the Python exception that names the problem.
static NORETURN void raise_status(const mct_model_t *m, int code) {
    const mct_error_t *e = &m->error;
    switch (code) {
        case MCT_E_TRUNCATED:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("model is truncated: %u bytes, needs %u"),
                (unsigned)e->a, (unsigned)e->b);
        case MCT_E_MAGIC:
            mp_raise_ValueError(MP_ERROR_TEXT("not an mcutrain model (bad magic)"));
        case MCT_E_VERSION:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("model format version %u not supported (expected %u): convert the model again"),
                (unsigned)e->a, (unsigned)e->b);
        case MCT_E_SIZE:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("model buffer is %u bytes but its header says %u"),
                (unsigned)e->a, (unsigned)e->b);
        case MCT_E_CRC:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("model is corrupted: CRC32 %08x, computed %08x"),
                (unsigned)e->a, (unsigned)e->b);
        case MCT_E_TABLE:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("model table %d is outside the file or invalid"), e->index);
        case MCT_E_TOO_MANY:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("model has %u entries in table %d, limit %u"),
                (unsigned)e->a, e->index, (unsigned)e->b);
        case MCT_E_TENSOR:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("model tensor %d lies outside the file or has a bad type"), e->index);
        case MCT_E_ALIGN:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("model buffer is not 4-byte aligned (tensor %d)"), e->index);
        case MCT_E_ACT:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("model activation %d has a bad shape or lies outside the arena"), e->index);
        case MCT_E_OP:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("model op %d: %s"), e->index, mct_op_problem(e->a));
        case MCT_E_TRAIN:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("model tensor %d is marked trained, which this engine cannot train"), e->index);
        case MCT_E_NOT_TRAINABLE:
            mp_raise_ValueError(MP_ERROR_TEXT("model has no trained tensors: convert it with a training scheme"));
        case MCT_E_INPUT:
            if (e->b == 0) {
                mp_raise_ValueError(MP_ERROR_TEXT("no input: call set_input(x) before the layers' forward()"));
            }
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("input must be %u int8 bytes, got %u"),
                (unsigned)e->b, (unsigned)e->a);
        case MCT_E_LABEL:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("label %d out of range for %u classes"),
                (int)e->a, (unsigned)e->b);
        case MCT_E_LR:
            mp_raise_ValueError(MP_ERROR_TEXT("learning rate must be finite and >= 0"));
        case MCT_E_NUMERIC:
            mp_raise_ValueError(MP_ERROR_TEXT("loss is not finite: step skipped, weights unchanged"));
        case MCT_E_OP_INDEX:
            mp_raise_msg_varg(&mp_type_IndexError, MP_ERROR_TEXT("layer index %u out of range (%u layers)"),
                (unsigned)e->a, (unsigned)e->b);
        case MCT_E_FLAGS:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("model has unknown training flags 0x%02x (header byte 50)"),
                (unsigned)e->a);
        case MCT_E_BLOB:
            raise_blob(m, e);
        case MCT_E_READ:
            // a reader given to a model that reads its input in place (a short read and a failed one
            // are raised by the reader's caller, input_done below)
            mp_raise_ValueError(MP_ERROR_TEXT("model reads its input in place: convert it with --input-buffer rows (or model) to give it a reader"));
        case MCT_E_NOT_ATTACHED:
        default:
            mp_raise_ValueError(MP_ERROR_TEXT("model is not ready"));
    }
}

// Without a GIL (the unix port) threads run at once: one core call on a model at a time, since
// the arena and the input the forward reads are the model's. Held while Python code runs only in
// an input reader's readinto (which must not use the model).
// (A native module has no mutex in mp_fun_table: there MICROPY_PY_THREAD is 0 and this is a no-op.)
static void lock(mcutrain_model_obj_t *self) {
    #if MICROPY_PY_THREAD && !MICROPY_PY_THREAD_GIL
    mp_thread_mutex_lock(&self->mutex, 1);
    #else
    (void)self;
    #endif
}

static void unlock(mcutrain_model_obj_t *self) {
    #if MICROPY_PY_THREAD && !MICROPY_PY_THREAD_GIL
    mp_thread_mutex_unlock(&self->mutex);
    #else
    (void)self;
    #endif
}

static void check(mcutrain_model_obj_t *self, int code) {
    if (code != MCT_OK) {
        raise_status(&self->model, code);
    }
}
// The weights are read in place: make sure the buffer is still where and what it was. A buffer
// that can be written to (a bytearray) may have moved (resized and back) or been modified: the
// header and tables the engine re-reads are compared with their checksum at load; tensor data is
// not checked (a changed weight takes effect; no value of it can make a kernel misbehave).
// Called right before each core call, after every argument conversion (which may run Python code).
static mct_model_t *model_of(mcutrain_model_obj_t *self) {
    if (self->reading) {
        // readinto (or another thread while it runs) must not use the model in the middle of a step
        mp_raise_ValueError(MP_ERROR_TEXT("model is busy: its step is reading its input"));
    }
    mp_buffer_info_t bi;
    mp_get_buffer_raise(self->buf_obj, &bi, MP_BUFFER_READ);
    if (bi.len != self->buf_len) {
        mp_raise_msg_varg(&mp_type_ValueError,
            MP_ERROR_TEXT("model buffer changed size since the model was loaded (%u bytes, was %u)"),
            (unsigned)bi.len, (unsigned)self->buf_len);
    }
    if ((uintptr_t)bi.buf % 4) {
        mp_raise_ValueError(MP_ERROR_TEXT("model buffer moved and is no longer 4-byte aligned"));
    }
    mct_model_rebind(&self->model, bi.buf);
    if (self->writable && mct_meta_checksum(&self->model) != self->meta_sum) {
        // Deliberately the longest message of the module, and not a formatted one: MicroPython
        // v1.25's mp_obj_new_exception_msg_vlist decompresses a formatted message into a stack buffer
        // of MP_MAX_UNCOMPRESSED_TEXT_LEN bytes, one short of the longest message's terminating NUL
        // (found by ASan: the 85-character MemoryError message below wrote past it).
        mp_raise_ValueError(MP_ERROR_TEXT("model buffer was modified since the model was loaded: its header or tables changed, load it again"));
    }
    return &self->model;
}

static mp_obj_t model_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *all_args) {
    enum { ARG_buf, ARG_qas };
    MCT_ARG_TABLE mp_arg_t allowed[] = {
        { MP_QSTR_buf, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
        { MP_QSTR_qas, MP_ARG_KW_ONLY | MP_ARG_BOOL, {.u_bool = true} },
    };
    mp_arg_val_t args[MP_ARRAY_SIZE(allowed)];
    mp_arg_parse_all_kw_array(n_args, n_kw, all_args, MP_ARRAY_SIZE(allowed), allowed, args);

    // A buffer is used in place (a ROMFS file's buffer is in Flash); any other file is read once.
    mp_obj_t buf_obj = args[ARG_buf].u_obj;
    mp_buffer_info_t bi;
    if (!mp_get_buffer(buf_obj, &bi, MP_BUFFER_READ)) {
        mp_obj_t read[2];
        mp_load_method_maybe(buf_obj, MP_QSTR_read, read);
        if (read[0] == MP_OBJ_NULL) {
            mp_raise_TypeError(MP_ERROR_TEXT("Model needs a buffer (bytes, bytearray, memoryview) or a file"));
        }
        buf_obj = mp_call_method_n_kw(0, 0, read);
        mp_get_buffer_raise(buf_obj, &bi, MP_BUFFER_READ);
    }
    mcutrain_model_obj_t *self = mp_obj_malloc(mcutrain_model_obj_t, type);
    self->buf_obj = buf_obj;
    self->input_obj = MP_OBJ_NULL;
    #if MICROPY_PY_THREAD && !MICROPY_PY_THREAD_GIL
    mp_thread_mutex_init(&self->mutex);
    #endif
    self->buf_len = bi.len;
    self->workspace = NULL;
    self->reading = false;
    int r = mct_model_init(&self->model, bi.buf, bi.len);
    if (r != MCT_OK) {
        raise_status(&self->model, r);
    }
    mct_set_qas(&self->model, args[ARG_qas].u_bool);
    mp_buffer_info_t wi;
    self->writable = mp_get_buffer(buf_obj, &wi, MP_BUFFER_WRITE);
    self->meta_sum = mct_meta_checksum(&self->model);
    size_t need = mct_workspace_size(&self->model);
    self->workspace = m_malloc_maybe(need ? need : 4);
    if (self->workspace == NULL) {
        mp_raise_msg_varg(&mp_type_MemoryError,
            MP_ERROR_TEXT("model needs %u bytes of RAM (arena %u + trained tensors %u), largest free block is %u"),
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

// The model input: a buffer, or a reader (an object with readinto) of its rows, which the core
// calls band by band during the step (mct_forward_from). Everything the reader needs is made before
// the step, since nothing may be allocated inside one: readinto's bound method, and one writable
// memoryview whose pointer and length are moved onto each band. A Python exception that readinto
// raises is caught (the core then ends the step, weights unchanged) and raised again after it.
typedef struct {
    const int8_t *x;            // the buffer, or NULL: the reader
    size_t len;
    mp_obj_t readinto[3];       // the bound method, then its argument (the view)
    mp_obj_array_t *view;
    size_t got, want;           // bytes read so far, of the input's H*W*C
    mp_obj_t error;             // what readinto raised, or MP_OBJ_NULL
    bool bad_count;             // readinto returned more than it was asked for, or not an int
} input_t;

// A reader first: a file of a ROMFS is a buffer too (the whole file), but read from, it gives frame
// after frame.
static void input_arg(mcutrain_model_obj_t *self, mp_obj_t x_in, input_t *in) {
    mp_buffer_info_t bi;
    in->error = MP_OBJ_NULL;
    in->bad_count = false;
    in->got = 0;
    mp_load_method_maybe(x_in, MP_QSTR_readinto, in->readinto);
    if (in->readinto[0] == MP_OBJ_NULL) {
        if (!mp_get_buffer(x_in, &bi, MP_BUFFER_READ)) {
            mp_raise_TypeError(MP_ERROR_TEXT("input must be a buffer (bytes, bytearray, memoryview) or a reader with readinto()"));
        }
        in->x = bi.buf;
        in->len = bi.len;
        return;
    }
    // (a model that reads its input in place has nowhere to read it into: mct_set_reader refuses it,
    // and raise_status says so)
    mct_model_t *m = model_of(self);
    mct_act_t a;
    mct_act_get(m, m->input, &a);
    in->x = NULL;
    in->want = a.size;
    in->readinto[2] = writable_view((int8_t *)self->workspace, 0);
    in->view = MP_OBJ_TO_PTR(in->readinto[2]);
}

// The core's reader (mct_read_fn): readinto on the view moved onto dst.
static int read_input(void *ctx, int8_t *dst, size_t n) {
    input_t *in = ctx;
    in->view->items = dst;
    in->view->len = n;
    int got = -1;
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_obj_t r = mp_call_method_n_kw(1, 0, in->readinto);
        // None (no data: a stream's end) or a count; anything else is refused below
        mp_int_t k = r == mp_const_none ? 0 : mp_obj_is_int(r) ? mp_obj_get_int(r) : -1;
        nlr_pop();
        if (k >= 0 && (size_t)k <= n) {
            got = (int)k;
            in->got += (size_t)k;
        } else {
            in->bad_count = true;
        }
    } else {
        in->error = MP_OBJ_FROM_PTR(nlr.ret_val);
    }
    return got;
}

// After the step: the view points nowhere (readinto may have kept it), the reader's exception, a
// short read or a bad count raised; then the core's status.
static void input_done(mcutrain_model_obj_t *self, input_t *in, int r) {
    if (in->x == NULL) {
        in->view->items = self->workspace;
        in->view->len = 0;
    }
    if (r == MCT_E_READ && in->error != MP_OBJ_NULL) {
        nlr_raise(in->error);
    }
    if (r == MCT_E_READ && in->bad_count) {
        mp_raise_ValueError(MP_ERROR_TEXT("input reader's readinto() must return the number of bytes it read"));
    }
    if (r == MCT_E_READ && self->model.error.index == 0) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("input reader gave %u bytes, expected %u (the input's H*W*C)"),
            (unsigned)in->got, (unsigned)in->want);
    }
    check(self, r);
}

static int forward_input(mcutrain_model_obj_t *self, mct_model_t *m, input_t *in) {
    if (in->x != NULL) {
        return mct_forward(m, in->x, in->len);
    }
    self->reading = true;
    int r = mct_forward_from(m, read_input, in);
    self->reading = false;
    return r;
}

// forward(x[, out]): the int8 logits, in `out` (a writable buffer) or a new memoryview('b').
static mp_obj_t model_forward(size_t n_args, const mp_obj_t *args) {
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    input_t in;
    input_arg(self, args[1], &in);
    uint32_t n;
    mct_logits(model_of(self), &n);
    int8_t *dst;
    mp_obj_t result;
    if (n_args > 2) {
        mp_buffer_info_t out;
        mp_get_buffer_raise(args[2], &out, MP_BUFFER_WRITE);
        if (out.len != n) {
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("out must be %u bytes, got %u"),
                (unsigned)n, (unsigned)out.len);
        }
        dst = out.buf;
        result = args[2];
    } else {
        result = new_int8_view(n, &dst);
    }
    mct_model_t *m = model_of(self);
    lock(self);
    int r = forward_input(self, m, &in);
    if (r == MCT_OK) {
        memcpy(dst, mct_logits(m, &n), n);
    }
    unlock(self);
    input_done(self, &in, r);
    return result;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(model_forward_obj, 2, 3, model_forward);

static mp_obj_t model_predict(mp_obj_t self_in, mp_obj_t x_in) {
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    input_t in;
    input_arg(self, x_in, &in);
    mct_model_t *m = model_of(self);
    lock(self);
    int r = forward_input(self, m, &in);
    const int k = r == MCT_OK ? mct_argmax(m) : 0;
    unlock(self);
    input_done(self, &in, r);
    return MP_OBJ_NEW_SMALL_INT(k);
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_predict_obj, model_predict);

static float lr_arg(mp_obj_t lr_in) {
    return mp_obj_get_float_to_f(lr_in);
}

// The label, already converted (mp_obj_get_int may run Python code: __int__), for the model m.
static uint32_t label_arg(const mct_model_t *m, mp_int_t label) {
    uint32_t n;
    mct_logits(m, &n);
    if (label < 0 || (mp_uint_t)label >= n) {
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("label %d out of range for %u classes"), (int)label, (unsigned)n);
    }
    return (uint32_t)label;
}

// train_step(x, label, lr=0.01) -> loss. One SGD step of batch 1, every update applied in place.
static mp_obj_t model_train_step(size_t n_args, const mp_obj_t *pos_args, mp_map_t *kw_args) {
    enum { ARG_x, ARG_label, ARG_lr };
    MCT_ARG_TABLE mp_arg_t allowed[] = {
        { MP_QSTR_x, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
        { MP_QSTR_label, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
        { MP_QSTR_lr, MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
    };
    mp_arg_val_t args[MP_ARRAY_SIZE(allowed)];
    mp_arg_parse_all(n_args - 1, pos_args + 1, kw_args, MP_ARRAY_SIZE(allowed), allowed, args);
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(pos_args[0]);
    // Python code may run in these conversions (__int__, __float__): before looking at buffers
    mp_int_t label_in = mp_obj_get_int(args[ARG_label].u_obj);
    float lr = args[ARG_lr].u_obj == MP_OBJ_NULL ? 0.01f : lr_arg(args[ARG_lr].u_obj);
    input_t in;
    input_arg(self, args[ARG_x].u_obj, &in);
    mct_model_t *m = model_of(self);
    uint32_t label = label_arg(m, label_in);
    float loss = 0.0f;
    lock(self);
    self->reading = in.x == NULL;
    int r = in.x != NULL ? mct_train_step(m, in.x, in.len, label, lr, &loss)
                         : mct_train_step_from(m, read_input, &in, label, lr, &loss);
    self->reading = false;
    unlock(self);
    input_done(self, &in, r);
    return mp_obj_new_float_from_f(loss);
}
static MP_DEFINE_CONST_FUN_OBJ_KW(model_train_step_obj, 1, model_train_step);

static void dict_set(mp_obj_t d, qstr key, mp_int_t v) {
    mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(key), mp_obj_new_int(v));
}

// mem_info(): every byte the model holds in RAM, and the measured peak of its arena.
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

// save(stream): the model file with its trained tensors, written in pieces of at most 4 KB
// (no copy of the model in RAM).
static mp_obj_t model_save(mp_obj_t self_in, mp_obj_t stream) {
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mp_obj_t write[3];
    mp_load_method(stream, MP_QSTR_write, write);
    mct_model_t *m = model_of(self);
    uint32_t crc = mct_save_crc(m);
    uint8_t crc_bytes[4];
    uint32_t pos = 0;
    while (pos < m->file_size) {
        const uint8_t *p;
        uint32_t n;
        // write() is Python code: it may have resized or changed the buffer since the last piece
        m = model_of(self);
        mct_save_chunk(m, pos, crc, crc_bytes, &p, &n);
        // a read-only view, not a copy: write() must consume it before it returns, as files do
        if (n > 4096) {
            n = 4096;
        }
        write[2] = piece_view(p, n);
        mp_call_method_n_kw(1, 0, write);
        pos += n;
    }
    return mp_obj_new_int_from_uint(pos);
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_save_obj, model_save);

// update_blob(): the trained tensors' int values with their scales, as bytes (docs/format.md,
// "Update blob"): what a fleet exchanges each round. Nothing frozen is in it.
static mp_obj_t model_update_blob(mp_obj_t self_in) {
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mct_model_t *m = model_of(self);
    const uint32_t size = mct_blob_size(m);
    uint8_t *buf = m_new(uint8_t, size);
    lock(self);
    int r = mct_blob_write(m, buf, size);
    unlock(self);
    mp_obj_t blob = r == MCT_OK ? mp_obj_new_bytes(buf, size) : mp_const_none;
    m_del(uint8_t, buf, size);
    check(self, r);
    return blob;
}
static MP_DEFINE_CONST_FUN_OBJ_1(model_update_blob_obj, model_update_blob);

// load_update(buf): an update blob back in place; a blob of another model, corrupted or out of
// range raises ValueError before anything is written.
static mp_obj_t model_load_update(mp_obj_t self_in, mp_obj_t buf_in) {
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mp_buffer_info_t bi;
    mp_get_buffer_raise(buf_in, &bi, MP_BUFFER_READ);
    mct_model_t *m = model_of(self);
    lock(self);
    int r = mct_blob_load(m, (const uint8_t *)bi.buf, bi.len);
    unlock(self);
    check(self, r);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_load_update_obj, model_load_update);

static mp_obj_t model_layers(mp_obj_t self_in) {
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mp_obj_t t = mp_obj_new_tuple(self->model.n_ops, NULL);
    mp_obj_tuple_t *tuple = MP_OBJ_TO_PTR(t);
    for (uint16_t k = 0; k < self->model.n_ops; k++) {
        mcutrain_layer_obj_t *layer = mp_obj_malloc(mcutrain_layer_obj_t, (const mp_obj_type_t *)&mcutrain_layer_type);
        layer->model = self;
        layer->index = k;
        tuple->items[k] = MP_OBJ_FROM_PTR(layer);
    }
    return t;
}
static MP_DEFINE_CONST_FUN_OBJ_1(model_layers_obj, model_layers);

// For custom loops: set_input(x), each layer's forward(), loss_backward(label), each backward(lr).
static mp_obj_t model_set_input(mp_obj_t self_in, mp_obj_t x_in) {
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    size_t len;
    const int8_t *x = input_of(x_in, &len);
    mct_model_t *m = model_of(self);
    lock(self);
    int r = mct_set_input(m, x, len);
    unlock(self);
    check(self, r);
    self->input_obj = x_in;     // kept alive: the layers' forward may read it in place
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_set_input_obj, model_set_input);

// input_buffer(): a writable memoryview of the model input's bytes in the model's own RAM (models
// converted with --input-buffer model), for a camera or a file read to fill before each forward;
// the model reuses those bytes once the forward has read them. Its first byte is the workspace's,
// which keeps the workspace alive as long as the view is.
static mp_obj_t model_input_buffer(mp_obj_t self_in) {
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    size_t len;
    int8_t *p = mct_input_buffer(model_of(self), &len);
    if (p == NULL && mct_input_band_rows(&self->model)) {
        mp_raise_ValueError(MP_ERROR_TEXT("model reads its input row by row: give forward() and train_step() a reader"));
    }
    if (p == NULL || (void *)p != self->workspace) {
        mp_raise_ValueError(MP_ERROR_TEXT("model reads its input in place: convert it with --input-buffer model"));
    }
    return writable_view(p, len);
}
static MP_DEFINE_CONST_FUN_OBJ_1(model_input_buffer_obj, model_input_buffer);

static mp_obj_t model_loss_backward(mp_obj_t self_in, mp_obj_t label_in) {
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mp_int_t label = mp_obj_get_int(label_in);
    mct_model_t *m = model_of(self);
    float loss = 0.0f;
    uint32_t checked = label_arg(m, label);
    lock(self);
    int r = mct_loss_backward(m, checked, &loss);
    unlock(self);
    check(self, r);
    return mp_obj_new_float_from_f(loss);
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_loss_backward_obj, model_loss_backward);

// seed(n): restart the random stream of stochastic rounding (update rule of the model file); it
// starts as the file's CRC, so the same file trains the same way unless seeded.
static mp_obj_t model_seed(mp_obj_t self_in, mp_obj_t seed_in) {
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mct_model_t *m = model_of(self);
    mct_set_seed(m, (uint32_t)mp_obj_get_int_truncated(seed_in));
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(model_seed_obj, model_seed);

static void model_attr(mp_obj_t self_in, qstr attr, mp_obj_t *dest) {
    mcutrain_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    if (dest[0] != MP_OBJ_NULL) {
        return;
    }
    mct_act_t a;
    if (attr == MP_QSTR_input_shape) {
        mct_act_get(model_of(self), self->model.input, &a);
        mp_obj_t items[3] = { MP_OBJ_NEW_SMALL_INT(a.c), MP_OBJ_NEW_SMALL_INT(a.h), MP_OBJ_NEW_SMALL_INT(a.w) };
        dest[0] = mp_obj_new_tuple(3, items);
    } else if (attr == MP_QSTR_n_classes) {
        mct_act_get(model_of(self), self->model.output, &a);
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

// The methods of Model and of Layer: one list, which makes the built-in module's ROM tables below
// and the native module's tables in its mpy_init (natmod/mcutrain/mcutrain_natmod.c).
#define MCT_MODEL_METHODS(X) \
    X(MP_QSTR_forward, model_forward_obj) \
    X(MP_QSTR_predict, model_predict_obj) \
    X(MP_QSTR_train_step, model_train_step_obj) \
    X(MP_QSTR_mem_info, model_mem_info_obj) \
    X(MP_QSTR_save, model_save_obj) \
    X(MP_QSTR_layers, model_layers_obj) \
    X(MP_QSTR_set_input, model_set_input_obj) \
    X(MP_QSTR_input_buffer, model_input_buffer_obj) \
    X(MP_QSTR_loss_backward, model_loss_backward_obj) \
    X(MP_QSTR_seed, model_seed_obj) \
    X(MP_QSTR_update_blob, model_update_blob_obj) \
    X(MP_QSTR_load_update, model_load_update_obj)

// Layer: one op of the model, with its forward and its in-place backward.
static mp_obj_t layer_forward(mp_obj_t self_in) {
    mcutrain_layer_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mcutrain_model_obj_t *model = self->model;
    size_t len = 0;
    const int8_t *x = model->input_obj != MP_OBJ_NULL ? input_of(model->input_obj, &len) : NULL;
    mct_model_t *m = model_of(model);
    lock(model);
    int r = MCT_OK;
    if (x != NULL && mct_input_in_place(m)) {
        // read in place: from where set_input()'s buffer is now (a bytearray may have moved)
        r = mct_set_input(m, x, len);
    }
    if (r == MCT_OK) {
        r = mct_forward_op(m, self->index);
    }
    unlock(model);
    check(model, r);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(layer_forward_obj, layer_forward);

static mp_obj_t layer_backward(mp_obj_t self_in, mp_obj_t lr_in) {
    mcutrain_layer_obj_t *self = MP_OBJ_TO_PTR(self_in);
    float lr = lr_arg(lr_in);       // may run Python code (__float__): before model_of
    mct_model_t *m = model_of(self->model);
    lock(self->model);
    int r = mct_backward_op(m, self->index, lr);
    unlock(self->model);
    check(self->model, r);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(layer_backward_obj, layer_backward);

static mp_obj_t shape_tuple(const mct_model_t *m, uint16_t a) {
    mct_act_t act;
    mct_act_get(m, a, &act);
    mp_obj_t items[3] = { MP_OBJ_NEW_SMALL_INT(act.c), MP_OBJ_NEW_SMALL_INT(act.h), MP_OBJ_NEW_SMALL_INT(act.w) };
    return mp_obj_new_tuple(3, items);
}

static void layer_attr(mp_obj_t self_in, qstr attr, mp_obj_t *dest) {
    mcutrain_layer_obj_t *self = MP_OBJ_TO_PTR(self_in);
    if (dest[0] != MP_OBJ_NULL) {
        return;
    }
    if (attr != MP_QSTR_kind && attr != MP_QSTR_index && attr != MP_QSTR_input_shape &&
        attr != MP_QSTR_output_shape && attr != MP_QSTR_trained) {
        dest[1] = MP_OBJ_SENTINEL;
        return;
    }
    const mct_model_t *m = model_of(self->model);
    mct_op_t op;
    mct_op_get(m, self->index, &op);
    if (attr == MP_QSTR_kind) {
        dest[0] = mp_obj_new_str(mct_op_name(op.type), strlen(mct_op_name(op.type)));
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
        dest[0] = mp_obj_new_tuple(2, items);   // (weight, bias)
    } else {
        dest[1] = MP_OBJ_SENTINEL;
    }
}

static void layer_print(const mp_print_t *print, mp_obj_t self_in, mp_print_kind_t kind) {
    mcutrain_layer_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mct_op_t op;
    mct_act_t in, out;
    const mct_model_t *m = model_of(self->model);
    mct_op_get(m, self->index, &op);
    mct_act_get(m, op.in0, &in);
    mct_act_get(m, op.out, &out);
    mp_printf(print, "<Layer %u %s (%u,%u,%u)->(%u,%u,%u)>", self->index, mct_op_name(op.type),
        in.c, in.h, in.w, out.c, out.h, out.w);
}

#define MCT_LAYER_METHODS(X) \
    X(MP_QSTR_forward, layer_forward_obj) \
    X(MP_QSTR_backward, layer_backward_obj)

#if !MICROPY_ENABLE_DYNRUNTIME
#define MCT_ROM_METHOD(name, obj) { MP_ROM_QSTR(name), MP_ROM_PTR(&obj) },

static const mp_rom_map_elem_t model_locals_table[] = {
    MCT_MODEL_METHODS(MCT_ROM_METHOD)
};
static MP_DEFINE_CONST_DICT(model_locals_dict, model_locals_table);

MP_DEFINE_CONST_OBJ_TYPE(
    mcutrain_model_type,
    MP_QSTR_Model,
    MP_TYPE_FLAG_NONE,
    make_new, model_make_new,
    attr, model_attr,
    locals_dict, &model_locals_dict
    );

static const mp_rom_map_elem_t layer_locals_table[] = {
    MCT_LAYER_METHODS(MCT_ROM_METHOD)
};
static MP_DEFINE_CONST_DICT(layer_locals_dict, layer_locals_table);

MP_DEFINE_CONST_OBJ_TYPE(
    mcutrain_layer_type,
    MP_QSTR_Layer,
    MP_TYPE_FLAG_NONE,
    print, layer_print,
    attr, layer_attr,
    locals_dict, &layer_locals_dict
    );

static const mp_rom_map_elem_t mcutrain_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_mcutrain) },
    { MP_ROM_QSTR(MP_QSTR_Model), MP_ROM_PTR(&mcutrain_model_type) },
    { MP_ROM_QSTR(MP_QSTR_Layer), MP_ROM_PTR(&mcutrain_layer_type) },
    { MP_ROM_QSTR(MP_QSTR_FORMAT_VERSION), MP_ROM_INT(MCT_VERSION) },
};
static MP_DEFINE_CONST_DICT(mcutrain_module_globals, mcutrain_module_globals_table);

const mp_obj_module_t mcutrain_user_cmodule = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&mcutrain_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_mcutrain, mcutrain_user_cmodule);
#endif
