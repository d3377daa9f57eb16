# Build mcutrain into any MicroPython port (make ... USER_C_MODULES=<repo>/modules).
MCUTRAIN_MOD_DIR := $(USERMOD_DIR)
MCUTRAIN_CORE_DIR := $(abspath $(USERMOD_DIR)/../../c_src)

SRC_USERMOD_C += $(wildcard $(MCUTRAIN_MOD_DIR)/*.c)
SRC_USERMOD_LIB_C += $(wildcard $(MCUTRAIN_CORE_DIR)/*.c)

CFLAGS_USERMOD += -I$(MCUTRAIN_CORE_DIR) -ffp-contract=off
