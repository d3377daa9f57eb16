// time.time() for the qemu-m3 board, included by extmod/modtime.c (MICROPY_PY_TIME_INCLUDEFILE).
// The board has no RTC, so the epoch is the moment the board started.

#include "py/mphal.h"

static mp_obj_t mp_time_time_get(void) {
    return mp_obj_new_int_from_uint(mp_hal_ticks_ms() / 1000);
}
