// What the native module's runtime (py/dynruntime.h, everything through mp_fun_table) lacks and
// the shared binding (modules/mcutrain/modmcutrain.c) uses: the same calls, made from what
// mp_fun_table offers. Included by mcutrain_natmod.c before the binding.
#ifndef MCT_NATMOD_PORT_H
#define MCT_NATMOD_PORT_H

#include "py/dynruntime.h"

// Argument tables are built at call time: their qstrs are only known once the .mpy is loaded.
#define MCT_ARG_TABLE const

#define mp_type_MemoryError (*(mp_obj_type_t *)(mp_load_global(MP_QSTR_MemoryError)))
#define m_malloc_maybe(n) (m_realloc_maybe(NULL, (n), false))

// The dynamic runtime's mp_obj_get_int truncates an int that does not fit a machine word; the
// firmware's raises OverflowError, as this one does (checked for ints only: an object's __int__
// runs once, in the conversion).
static mp_int_t mct_obj_get_int(mp_obj_t o) {
    mp_int_t v = mp_fun_table.native_from_obj(o, MP_NATIVE_TYPE_INT);
    if (!mp_obj_is_small_int(o) && mp_obj_get_type(o) == &mp_type_int &&
        !mp_obj_is_true(mp_binary_op(MP_BINARY_OP_EQUAL, o, mp_obj_new_int(v)))) {
        mp_raise_msg(mp_load_global(MP_QSTR_OverflowError), MP_ERROR_TEXT("overflow converting long int to machine word"));
    }
    return v;
}
#undef mp_obj_get_int
#define mp_obj_get_int(o) (mct_obj_get_int((o)))

// as py/runtime.c's: args[0] the method, args[1] self (or NULL), then the arguments
static inline mp_obj_t mct_call_method_n_kw(size_t n_args, size_t n_kw, const mp_obj_t *args) {
    size_t self = args[1] != MP_OBJ_NULL;
    return mp_call_function_n_kw(args[0], n_args + self, n_kw, args + 2 - self);
}
#define mp_call_method_n_kw(n_args, n_kw, args) (mct_call_method_n_kw((n_args), (n_kw), (args)))

// Formatted messages (%u %d %s %x %02x %08x), formatted here and raised with a str argument: the
// dynamic runtime has no mp_raise_msg_varg.
static char *mct_fmt_uint(char *p, char *end, uint32_t v, unsigned base, int width) {
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

static NORETURN void mct_raise_fmt(const mp_obj_type_t *type, const char *fmt, ...) {
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
            p = mct_fmt_uint(p, end, va_arg(ap, unsigned), 10, width);
        } else if (*fmt == 'x') {
            p = mct_fmt_uint(p, end, va_arg(ap, unsigned), 16, width);
        } else if (*fmt == 'd') {
            int v = va_arg(ap, int);
            if (v < 0 && p < end) {
                *p++ = '-';
            }
            p = mct_fmt_uint(p, end, v < 0 ? (uint32_t)0 - (uint32_t)v : (uint32_t)v, 10, width);
        } else if (*fmt == 's') {
            for (const char *s = va_arg(ap, const char *); *s && p < end; s++) {
                *p++ = *s;
            }
        }
    }
    va_end(ap);
    mp_raise_dyn(mp_obj_new_exception_arg1_dyn(type, mp_obj_new_str(buf, p - buf)));
}
#define mp_raise_msg_varg(type, fmt, ...) mct_raise_fmt((type), (const char *)(fmt), __VA_ARGS__)

// Catching an input reader's exception: the firmware's nlr_push (never setjmp-based on the
// architectures of the .mpy: x64 and Thumb have their own), through mp_fun_table.
#define nlr_push(buf) (mp_fun_table.nlr_push(buf))
#define nlr_pop() (mp_fun_table.nlr_pop())

static mp_obj_t mct_new_memoryview(mp_obj_t obj) {
    return mp_call_function_n_kw(mp_load_global(MP_QSTR_memoryview), 1, 0, &obj);
}

// forward()'s logits: a memoryview of a new array('b') of n bytes; *data: its bytes.
static mp_obj_t new_int8_view(size_t n, int8_t **data) {
    mp_obj_t array_mod = mp_import_name(MP_QSTR_array, mp_const_none, MP_OBJ_NEW_SMALL_INT(0));
    mp_obj_t size = mp_obj_new_int(n);
    mp_obj_t args[2] = { MP_OBJ_NEW_QSTR(MP_QSTR_b), mp_call_function_n_kw(mp_load_global(MP_QSTR_bytes), 1, 0, &size) };
    mp_obj_t arr = mp_call_function_n_kw(mp_load_attr(array_mod, MP_QSTR_array), 2, 0, args);
    mp_buffer_info_t bi;
    mp_get_buffer_raise(arr, &bi, MP_BUFFER_WRITE);
    *data = bi.buf;
    return mct_new_memoryview(arr);
}

// save()'s pieces: bytearrays that refer to the model's memory (no read-only memoryview here).
static mp_obj_t piece_view(const uint8_t *p, size_t n) {
    return mp_obj_new_bytearray_by_ref(n, (void *)p);
}

// input_buffer(): a memoryview of a bytearray that refers to the model's own bytes.
static mp_obj_t writable_view(int8_t *p, size_t n) {
    return mct_new_memoryview(mp_obj_new_bytearray_by_ref(n, p));
}

// The largest block the heap can give now (at most `limit`), found by trying: there is no gc_info().
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

#endif
