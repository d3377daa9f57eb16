# mcutrain: on-device int8 training for microcontrollers, as MicroPython user C module `mcutrain`.
#
#   make deps                      apt packages: ARM toolchain, qemu, pkg-config, Fashion-MNIST
#   make venv                      .venv with the host tools (host_tools) and their dependencies
#   make firmware BOARD=unix       MicroPython unix port with mcutrain -> build/firmware/unix/micropython
#   make firmware BOARD=qemu-m3    Cortex-M3 MCU on qemu (boards/qemu-m3) -> build/firmware/qemu-m3/firmware.elf
#   make demo                      pretrain, convert, then learn new classes on the emulated 256 KB MCU
#   make test                      the test suite (builds what the tests need)
#
# MICROPY_DIR: a MicroPython v1.25.0 source tree; fetched there by tools/fetch_micropython.sh if absent.
# Everything built goes under build/, outside MICROPY_DIR.

MICROPY_DIR ?= build/micropython
BOARD ?= unix
PYTHON ?= .venv/bin/python
# Python for build steps (MicroPython's own scripts need only the standard library).
HOST_PYTHON ?= python3
USER_C_MODULES ?= $(CURDIR)/modules
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

BOARDS := unix qemu-m3 qemu-m7 qemu-m0 rp2-pico stm32f746 esp32s3 circuitpython-unix
# The boards that build and run here (the real ones need their vendors' SDKs).
EMULATED_BOARDS := unix qemu-m3 qemu-m7 qemu-m0
BUILD := $(CURDIR)/build
FIRMWARE := $(BUILD)/firmware
MPY_DIR := $(abspath $(MICROPY_DIR))
MPY_SOURCE := $(MICROPY_DIR)/py/mpconfig.h
VENV_STAMP := .venv/.installed

# A MicroPython tree without its own .git (Debian's tarball, under build/) would take its version
# string from this repository's git history.
ifeq ($(wildcard $(MPY_DIR)/.git),)
export MICROPY_GIT_TAG ?= v1.25.0
endif

# Options every port build gets: no frozen micropython-lib (not in Debian's source tarball),
# no modules that need absent submodules, and the project's C module.
PORT_FLAGS := FROZEN_MANIFEST= USER_C_MODULES=$(abspath $(USER_C_MODULES)) PYTHON=$(HOST_PYTHON)

.PHONY: all demo bench-mcu micropython venv deps firmware $(addprefix firmware-,$(BOARDS)) mpy-cross test clean distclean help

all: firmware-unix firmware-qemu-m3

help:
	@sed -n '3,10p' Makefile

# --- sources and tools -----------------------------------------------------------------------

micropython: $(MPY_SOURCE)

$(MPY_SOURCE):
	bash tools/fetch_micropython.sh $(MICROPY_DIR)

deps:
	bash tools/install_deps.sh

venv: $(VENV_STAMP)

# Re-installed only when the package list or the package metadata change.
$(VENV_STAMP): pyproject.toml requirements.txt
	test -x .venv/bin/python || $(HOST_PYTHON) -m venv .venv
	.venv/bin/python -m pip install -r requirements.txt
	.venv/bin/python -m pip install -e .
	touch $@

# The MicroPython cross-compiler of the same version as the firmware (for .mpy files).
mpy-cross: $(MPY_SOURCE)
	$(MAKE) -C $(MPY_DIR)/mpy-cross -j$(JOBS) BUILD=$(BUILD)/mpy-cross PYTHON=$(HOST_PYTHON)

# --- firmware --------------------------------------------------------------------------------

ifeq ($(filter $(BOARD),$(BOARDS)),)
firmware:
	@echo "unknown BOARD=$(BOARD); the boards are: $(BOARDS)" >&2; exit 1
else
firmware: firmware-$(BOARD)
endif

# Copy $(1) to $(2) through a temporary name and a rename (when they differ): a firmware that runs
# meanwhile (a `host_tools run` in another terminal) keeps its file, and no reader sees half a copy.
install_file = cmp -s $(1) $(2) || { cp $(1) $(2).$$$$.tmp && mv -f $(2).$$$$.tmp $(2); }

# The unix port, 64-bit host build: the reference to compare the MCU against.
firmware-unix: $(MPY_SOURCE)
	$(MAKE) -C $(MPY_DIR)/ports/unix -j$(JOBS) $(PORT_FLAGS) BUILD=$(BUILD)/unix \
		MICROPY_PY_BTREE=0 MICROPY_PY_SSL=0 MICROPY_PY_FFI=0
	mkdir -p $(FIRMWARE)/unix
	$(call install_file,$(BUILD)/unix/micropython,$(FIRMWARE)/unix/micropython)

# The emulated MCU: ports/qemu with the board definition in boards/qemu-m3.
firmware-qemu-m3: $(MPY_SOURCE)
	$(MAKE) -C $(MPY_DIR)/ports/qemu -j$(JOBS) $(PORT_FLAGS) BUILD=$(BUILD)/qemu-m3 \
		BOARD=qemu-m3 BOARD_DIR=$(CURDIR)/boards/qemu-m3
	mkdir -p $(FIRMWARE)/qemu-m3
	$(call install_file,$(BUILD)/qemu-m3/firmware.elf,$(FIRMWARE)/qemu-m3/firmware.elf)
	$(call install_file,$(BUILD)/qemu-m3/firmware.map,$(FIRMWARE)/qemu-m3/firmware.map)
	$(HOST_PYTHON) tools/memory_report.py $(FIRMWARE)/qemu-m3/firmware.elf | tee $(FIRMWARE)/qemu-m3/memory.txt

# The other emulated MCUs (boards/qemu-m7: Cortex-M7 + FPU, boards/qemu-m0: Cortex-M0), same scheme.
firmware-qemu-m7 firmware-qemu-m0: firmware-%: $(MPY_SOURCE)
	$(MAKE) -C $(MPY_DIR)/ports/qemu -j$(JOBS) $(PORT_FLAGS) BUILD=$(BUILD)/$* \
		BOARD=$* BOARD_DIR=$(CURDIR)/boards/$*
	mkdir -p $(FIRMWARE)/$*
	$(call install_file,$(BUILD)/$*/firmware.elf,$(FIRMWARE)/$*/firmware.elf)
	$(call install_file,$(BUILD)/$*/firmware.map,$(FIRMWARE)/$*/firmware.map)
	$(HOST_PYTHON) -c 'import sys; sys.path.insert(0, "."); from host_tools.boards import runners as boards; \
		print(boards.memory_summary(boards.qemu_memory("$*", sys.argv[1]), "$*"))' \
		$(FIRMWARE)/$*/firmware.elf | tee $(FIRMWARE)/$*/memory.txt

# --- the demo: pretrain on the host, convert, learn new classes on the emulated 256 KB MCU ----

DEMO := $(BUILD)/demo
DEMO_N_BIAS ?= 2
# make demo BOARD=rp2-pico: the board named on the command line, else the emulated 256 KB MCU
DEMO_BOARD ?= $(if $(filter command line,$(origin BOARD)),$(BOARD),qemu-m3)
DEMO_DATA := $(DEMO)/train.bin $(DEMO)/train_labels.bin $(DEMO)/test.bin $(DEMO)/test_labels.bin
DEMO_CONVERT = $(PYTHON) -m host_tools convert examples/fashion_net.py:FashionNet --weights $(DEMO)/fashion_net.pt \
	--calib $(DEMO)/calib.npz --val $(DEMO)/val.npz --n-bias-update $(DEMO_N_BIAS)
# The Pico's demo: rp2040js emulates tens of millions of cycles a second, not 125 M, so the Pico learns
# from the first DEMO_PICO_TRAIN training images (2 epochs) and is tested on the first DEMO_PICO_TEST
# held-out ones (about 3 minutes here; all 500 + 500: five times as long), with its board's default
# backward, the integer one (the demo's step: 26 M cycles).
DEMO_PICO_TRAIN ?= 100
DEMO_PICO_TEST ?= 100
DEMO_PICO := $(DEMO)/rp2-pico
DEMO_FILES := $(if $(filter rp2-pico,$(DEMO_BOARD)),$(DEMO_PICO)/fashion.mct $(subst $(DEMO)/,$(DEMO_PICO)/,$(DEMO_DATA)),\
	$(DEMO)/fashion.mct $(DEMO_DATA))

demo: deps $(VENV_STAMP) firmware-$(DEMO_BOARD) $(firstword $(DEMO_FILES)) $(if $(filter rp2-pico,$(DEMO_BOARD)),rp2040js demo-pico-data)
	$(PYTHON) -m host_tools run --board $(DEMO_BOARD) $(if $(filter rp2-pico,$(DEMO_BOARD)),--timeout 0) \
		$(if $(filter qemu-%,$(DEMO_BOARD)),--flash $(DEMO)/flash.img) examples/fashion_new_classes.py \
		boards/lib/romfile.py natmod/mcutrain_util.py $(DEMO_FILES)

# The first images and labels of each set (the sets are balanced and shuffled), written on each run.
.PHONY: demo-pico-data
demo-pico-data: $(DEMO)/fashion_net.pt
	mkdir -p $(DEMO_PICO)
	$(foreach s,train:$(DEMO_PICO_TRAIN) test:$(DEMO_PICO_TEST),\
		head -c $$(( $(lastword $(subst :, ,$(s))) * 784 )) $(DEMO)/$(firstword $(subst :, ,$(s))).bin \
			> $(DEMO_PICO)/$(firstword $(subst :, ,$(s))).bin; \
		head -c $(lastword $(subst :, ,$(s))) $(DEMO)/$(firstword $(subst :, ,$(s)))_labels.bin \
			> $(DEMO_PICO)/$(firstword $(subst :, ,$(s)))_labels.bin;)

# Pretrained on Fashion-MNIST classes 0-4 only (about a minute on 2 cores), once.
$(DEMO)/fashion_net.pt: examples/pretrain_fashion.py examples/fashion_net.py | $(VENV_STAMP)
	$(PYTHON) examples/pretrain_fashion.py $(DEMO)

$(DEMO)/fashion.mct: $(DEMO)/fashion_net.pt $(shell find host_tools -name "*.py")
	$(DEMO_CONVERT) --update-rule master -o $@

# The Pico's: convert --board rp2-pico gives it the integer backward (host_tools/boards/backward.py).
$(DEMO_PICO)/fashion.mct: $(DEMO)/fashion_net.pt $(shell find host_tools -name "*.py")
	mkdir -p $(DEMO_PICO)
	$(DEMO_CONVERT) --board rp2-pico -o $@

# --- benchmarks (write docs/benchmarks.md) ----------------------------------------------------

# qemu-m7 with the portable kernels only (MCT_PORTABLE): the baseline of its SIMD kernels.
$(FIRMWARE)/qemu-m7-portable/firmware.elf: $(MPY_SOURCE) $(wildcard c_src/*.[ch] modules/mcutrain/*.c)
	$(MAKE) -C $(MPY_DIR)/ports/qemu -j$(JOBS) $(PORT_FLAGS) BUILD=$(BUILD)/qemu-m7-portable \
		BOARD=qemu-m7 BOARD_DIR=$(CURDIR)/boards/qemu-m7 CFLAGS_EXTRA=-DMCT_PORTABLE
	mkdir -p $(dir $@)
	cp $(BUILD)/qemu-m7-portable/firmware.elf $@

bench-mcu: $(VENV_STAMP) $(addprefix firmware-,$(filter qemu-%,$(EMULATED_BOARDS))) $(DEMO)/fashion.mct \
		$(FIRMWARE)/qemu-m7-portable/firmware.elf firmware-rp2-pico rp2040js
	$(PYTHON) bench/bench_mcu.py

# --- tests -----------------------------------------------------------------------------------

# Every emulated board's firmware first: tests of several files run scripts on them.
test: deps $(VENV_STAMP) $(addprefix firmware-,$(EMULATED_BOARDS)) firmware-rp2-pico rp2040js
	$(PYTHON) -m pytest tests

# Further targets, one concern per file: fuzzing and sanitizers, release images.
-include mk/*.mk

clean:
	rm -rf $(BUILD)/unix $(BUILD)/qemu-m3 $(BUILD)/qemu-m7 $(BUILD)/qemu-m0 $(BUILD)/mpy-cross $(FIRMWARE)

# Also forgets the fetched MicroPython source and the virtual environment.
distclean: clean
	rm -rf $(BUILD) .venv
