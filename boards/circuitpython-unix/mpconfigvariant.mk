# CircuitPython's unix port with mcutrain (ports/unix VARIANT_DIR; see mpconfigvariant.h).

# nothing frozen (micropython-lib is not in the snapshot), no modules that need absent libraries
FROZEN_MANIFEST =
MICROPY_PY_FFI = 0
CIRCUITPY_ULAB = 0

CIRCUITPY_MCUTRAIN = 1
include $(TOP)/shared-bindings/mcutrain/mcutrain.mk
SRC_C += $(SRC_MCUTRAIN)
