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
DIST_BOARDS ?= qemu-m3 qemu-m7 qemu-m0
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
	cp $(BUILD)/unix-stock/micropython $(FIRMWARE)/unix-stock/micropython

firmware-qemu-stock: $(MPY_SOURCE)
	$(MAKE) -C $(MPY_DIR)/ports/qemu -j$(JOBS) FROZEN_MANIFEST= PYTHON=$(HOST_PYTHON) \
		BUILD=$(BUILD)/qemu-stock BOARD=MPS2_AN385
	mkdir -p $(FIRMWARE)/qemu-stock
	cp $(BUILD)/qemu-stock/firmware.elf $(FIRMWARE)/qemu-stock/firmware.elf

dist: $(addprefix firmware-,$(DIST_BOARDS)) natmod
	$(HOST_PYTHON) mk/dist_manifest.py --out $(DIST) --firmware $(FIRMWARE) --natmod $(BUILD)/natmod \
		--micropython $(MPY_DIR) --boards $(DIST_BOARDS) --archs $(NATMOD_ARCHS)
