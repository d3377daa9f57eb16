# mcutrain in a CircuitPython port, laid out as CircuitPython's own modules are:
#   shared-bindings/mcutrain/  this directory's files + modules/mcutrain/{modmcutrain.c,mct_names.h}
#   shared-module/mcutrain/    c_src/ (the portable core)
# Included by a port build after its settings (a port's user_post_circuitpy_defns.mk, or the unix
# variant boards/circuitpython-unix/mpconfigvariant.mk), which add $(SRC_MCUTRAIN) to their sources.
# Off unless the board turns it on (CIRCUITPY_MCUTRAIN = 1 in its mpconfigboard.mk), as CircuitPython's
# own modules are.
CIRCUITPY_MCUTRAIN ?= 0
CFLAGS += -DCIRCUITPY_MCUTRAIN=$(CIRCUITPY_MCUTRAIN)

ifeq ($(CIRCUITPY_MCUTRAIN),1)
SRC_MCUTRAIN := shared-bindings/mcutrain/__init__.c \
	$(patsubst $(TOP)/%,%,$(wildcard $(TOP)/shared-module/mcutrain/*.c))
CFLAGS += -I$(TOP)/shared-module/mcutrain
# as modules/mcutrain/micropython.mk: no fused multiply-add, so that training is bit-identical
# to the host reference
$(addprefix $(BUILD)/,$(SRC_MCUTRAIN:.c=.o)): CFLAGS += -ffp-contract=off
endif
