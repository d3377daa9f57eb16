# Build mcutrain into any MicroPython port (make ... USER_C_MODULES=<repo>/modules).
MCUTRAIN_MOD_DIR := $(USERMOD_DIR)
MCUTRAIN_CORE_DIR := $(abspath $(USERMOD_DIR)/../../c_src)

SRC_USERMOD_C += $(wildcard $(MCUTRAIN_MOD_DIR)/*.c)
SRC_USERMOD_LIB_C += $(wildcard $(MCUTRAIN_CORE_DIR)/*.c)

CFLAGS_USERMOD += -I$(MCUTRAIN_CORE_DIR) -ffp-contract=off

# The module's own sources at -O2 (the kernels' speed), the rest of MicroPython at the port's -Os:
# a target-specific flag on the module's objects, named as py/py.mk names them ($(BUILD)/ and the
# source's path below USER_C_MODULES, or its absolute path for c_src/); the later -O2 wins.
MCUTRAIN_OBJ := $(addprefix $(BUILD)/,$(patsubst %.c,%.o,$(patsubst $(USER_C_MODULES)/%,%,\
	$(wildcard $(MCUTRAIN_MOD_DIR)/*.c) $(wildcard $(MCUTRAIN_CORE_DIR)/*.c))))
$(MCUTRAIN_OBJ): CFLAGS += -O2

# Cortex-M7 STM32s (the stm32 port's F7 and H7 series): the float backward multiply-adds as
# VMLA.F32, bit-exact and one instruction where VMUL + VADD are two (c_src/mct_mla_f32.h).
ifneq ($(filter f7 h7,$(MCU_SERIES)),)
$(MCUTRAIN_OBJ): CFLAGS += -DMCT_FPU_VMLA
endif
