// CircuitPython's unix port with the mcutrain module: a variant (VARIANT_DIR) of its ports/unix,
// built by `make firmware BOARD=circuitpython-unix` (mk/circuitpython.mk).

// the standard variant's feature level
#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)

#include "variants/mpconfigvariant_common.h"

// MicroPython's micropython.RingIO (py/objringio.c) does not compile against CircuitPython's
// own py/ringbuf.h; CircuitPython's coverage variant turns it off the same way.
#define MICROPY_PY_MICROPYTHON_RINGIO (0)
