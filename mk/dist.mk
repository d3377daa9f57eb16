# Release images and the dynamic native module (included by the top-level Makefile).
#
#   make natmod                   mcutrain.mpy for every NATMOD_ARCHS -> build/natmod/<arch>/mcutrain.mpy
#   make natmod-armv7m            one architecture
#   make firmware-unix-stock      MicroPython without mcutrain (unix port), to try the .mpy on
#   make firmware-qemu-stock      ports/qemu's own MPS2_AN385 firmware, without mcutrain
#   make dist                     dist/: firmware of the emulated boards, the .mpy files,
#                                 manifest.json and SHA256SUMS

NATMOD_ARCHS ?= x64 armv6m armv7m armv7emsp
# xtensawin (ESP32, ESP32-S3) only where its toolchain is installed (ESP-IDF's xtensa-esp32-elf-gcc).
ifneq ($(shell command -v xtensa-esp32-elf-gcc 2>/dev/null),)
NATMOD_ARCHS += xtensawin
endif
DIST_BOARDS ?= qemu-m3 qemu-m7 qemu-m0 rp2-pico
DIST ?= $(CURDIR)/dist

.PHONY: natmod $(addprefix natmod-,$(NATMOD_ARCHS)) firmware-unix-stock firmware-qemu-stock dist

natmod: $(addprefix natmod-,$(NATMOD_ARCHS))

# mpy_ld.py (MicroPython's linker for .mpy files) needs pyelftools and ar: the venv has them.
$(addprefix natmod-,$(NATMOD_ARCHS)): natmod-%: $(MPY_SOURCE) $(VENV_STAMP)
	$(MAKE) -C natmod/mcutrain MPY_DIR=$(MPY_DIR) ARCH=$* PYTHON=$(abspath $(PYTHON)) \
		BUILD=$(BUILD)/natmod/$* out

firmware-unix-stock: $(MPY_SOURCE)
	$(MAKE) -C $(MPY_DIR)/ports/unix -j$(JOBS) FROZEN_MANIFEST= PYTHON=$(HOST_PYTHON) \
		BUILD=$(BUILD)/unix-stock MICROPY_PY_BTREE=0 MICROPY_PY_SSL=0 MICROPY_PY_FFI=0
	mkdir -p $(FIRMWARE)/unix-stock
	$(call install_file,$(BUILD)/unix-stock/micropython,$(FIRMWARE)/unix-stock/micropython)

# The stock port with the GC heap of our 256 KB boards (243712 B, boards/README.md), set through the
# port's own MICROPY_HEAP_SIZE option: its default (140 KB) no longer holds the native module's file
# and code (about 57 KB each for armv7m) beside the tests' models.
firmware-qemu-stock: $(MPY_SOURCE)
	$(MAKE) -C $(MPY_DIR)/ports/qemu -j$(JOBS) FROZEN_MANIFEST= PYTHON=$(HOST_PYTHON) \
		BUILD=$(BUILD)/qemu-stock BOARD=MPS2_AN385 MICROPY_HEAP_SIZE=243712
	mkdir -p $(FIRMWARE)/qemu-stock
	$(call install_file,$(BUILD)/qemu-stock/firmware.elf,$(FIRMWARE)/qemu-stock/firmware.elf)

dist: $(addprefix firmware-,$(DIST_BOARDS)) natmod
	$(HOST_PYTHON) mk/dist_manifest.py --out $(DIST) --firmware $(FIRMWARE) --natmod $(BUILD)/natmod \
		--micropython $(MPY_DIR) --boards $(DIST_BOARDS) --archs $(NATMOD_ARCHS) --py natmod/mcutrain_util.py

# --- real boards: for a full MicroPython checkout (submodules, SDKs); not buildable here ------
# make firmware BOARD=stm32f746 MICROPY_DIR=~/micropython    -> build/firmware/stm32f746/firmware.{dfu,hex}
# make firmware BOARD=esp32s3 MICROPY_DIR=~/micropython      -> build/firmware/esp32s3/*.bin (ESP-IDF 5.2-5.4 env)
# See boards/README.md and boards/<board>/README.md.
STM32_BOARD ?= STM32F746_DISCO
ESP32_BOARD ?= ESP32_GENERIC_S3

.PHONY: firmware-stm32f746 firmware-esp32s3

firmware-stm32f746: $(MPY_SOURCE)
	$(MAKE) -C $(MPY_DIR)/ports/stm32 BOARD=$(STM32_BOARD) submodules
	$(MAKE) -C $(MPY_DIR)/ports/stm32 -j$(JOBS) BOARD=$(STM32_BOARD) BUILD=$(BUILD)/stm32f746 \
		USER_C_MODULES=$(CURDIR)/modules FROZEN_MANIFEST=$(CURDIR)/boards/stm32f746/manifest.py
	mkdir -p $(FIRMWARE)/stm32f746
	cp $(BUILD)/stm32f746/firmware.dfu $(BUILD)/stm32f746/firmware.hex $(BUILD)/stm32f746/firmware.elf \
		$(FIRMWARE)/stm32f746/

firmware-esp32s3: $(MPY_SOURCE)
	cd $(MPY_DIR)/ports/esp32 && idf.py -D MICROPY_BOARD=$(ESP32_BOARD) \
		-D USER_C_MODULES=$(CURDIR)/modules/mcutrain/micropython.cmake \
		-D MICROPY_FROZEN_MANIFEST=$(CURDIR)/boards/esp32s3/manifest.py -B $(BUILD)/esp32s3 build
	mkdir -p $(FIRMWARE)/esp32s3
	cp $(BUILD)/esp32s3/micropython.bin $(BUILD)/esp32s3/bootloader/bootloader.bin \
		$(BUILD)/esp32s3/partition_table/partition-table.bin $(FIRMWARE)/esp32s3/
