# The real Raspberry Pi Pico firmware: MicroPython v1.25's ports/rp2 (board RPI_PICO, with a ROMFS partition: boards/rp2-pico) with mcutrain
# built in (included by the top-level Makefile).
#
#   make firmware BOARD=rp2-pico   -> build/firmware/rp2-pico/firmware.{uf2,elf}
#
# The port's submodules pico-sdk (2.1.1) and tinyusb (0.18): a PICO_SDK_PATH given by the user and a
# MicroPython checkout with lib/tinyusb are used as they are; else tools/fetch_pico_sdk.sh fetches
# them (Debian's pico-sdk-source and tinyusb-source) into build/rp2-deps. No picotool
# (PICO_NO_PICOTOOL): the .uf2 is written from the .bin by MicroPython's tools/uf2conv.py.

RP2_DEPS := $(BUILD)/rp2-deps
PICO_SDK_PATH ?= $(RP2_DEPS)/pico-sdk
RP2_BUILD := $(BUILD)/rp2-pico
RP2_FIRMWARE := $(FIRMWARE)/rp2-pico
# The port's CMakeLists takes tinyusb and mbedtls from MICROPY_DIR/lib only.
RP2_SUBMODULES := $(MPY_DIR)/lib/tinyusb/src/tusb.h $(MPY_DIR)/lib/mbedtls/library/aes.c
# micropython-lib (the port's manifest takes drivers from it): the checkout's, else an empty stand-in,
# since Debian's tarball has none (boards/rp2-pico/manifest.py then leaves those drivers out).
RP2_LIB_DIR := $(if $(wildcard $(MPY_DIR)/lib/micropython-lib/README.md),$(MPY_DIR)/lib/micropython-lib,$(RP2_DEPS)/no-micropython-lib)

.PHONY: firmware-rp2-pico

$(PICO_SDK_PATH)/pico_sdk_init.cmake:
	bash tools/fetch_pico_sdk.sh $(RP2_DEPS)

# Debian's tarball leaves lib/tinyusb and lib/mbedtls empty folders: point them at the fetched ones.
$(RP2_SUBMODULES): $(MPY_DIR)/lib/%: | $(MPY_SOURCE)
	bash tools/fetch_pico_sdk.sh $(RP2_DEPS)
	rmdir $(MPY_DIR)/lib/$(firstword $(subst /, ,$*)) 2>/dev/null || true
	ln -sfn $(RP2_DEPS)/$(firstword $(subst /, ,$*)) $(MPY_DIR)/lib/$(firstword $(subst /, ,$*))

# cmake runs each time: the module's CMake file globs c_src/ at configure time.
firmware-rp2-pico: $(MPY_SOURCE) $(PICO_SDK_PATH)/pico_sdk_init.cmake $(RP2_SUBMODULES) mpy-cross
	mkdir -p $(RP2_DEPS)/no-micropython-lib
	test -e $(RP2_LIB_DIR)/README.md || echo "empty: the MicroPython tree has no micropython-lib" > $(RP2_LIB_DIR)/README.md
	cmake -S $(MPY_DIR)/ports/rp2 -B $(RP2_BUILD) -DPICO_BUILD_DOCS=0 \
		-DPICO_SDK_PATH_OVERRIDE=$(abspath $(PICO_SDK_PATH)) -DPICO_NO_PICOTOOL=1 \
		-DMICROPY_BOARD=rp2-pico -DMICROPY_BOARD_DIR=$(CURDIR)/boards/rp2-pico \
		-DMICROPY_LIB_DIR=$(RP2_LIB_DIR) \
		-DUSER_C_MODULES=$(CURDIR)/modules/mcutrain/micropython.cmake \
		-DMICROPY_FROZEN_MANIFEST=$(CURDIR)/boards/rp2-pico/manifest.py
	MICROPY_MPYCROSS=$(BUILD)/mpy-cross/mpy-cross $(MAKE) -C $(RP2_BUILD) -j$(JOBS)
	mkdir -p $(RP2_FIRMWARE)
	$(HOST_PYTHON) $(MPY_DIR)/tools/uf2conv.py --convert --family RP2040 --base 0x10000000 \
		--output $(RP2_BUILD)/firmware.uf2 $(RP2_BUILD)/firmware.bin
	$(foreach f,elf bin uf2,$(call install_file,$(RP2_BUILD)/firmware.$(f),$(RP2_FIRMWARE)/firmware.$(f));)

# The emulator that runs this firmware: rp2040js (npm) under build/rp2040js, at a pinned version.
.PHONY: rp2040js
rp2040js:
	bash tools/install_rp2040js.sh $(BUILD)/rp2040js
