# CircuitPython's unix port with mcutrain as a CircuitPython module (issue 16):
#   make firmware BOARD=circuitpython-unix  -> build/firmware/circuitpython-unix/micropython
# CircuitPython has no user C modules and loads no native .mpy: the module is built into the
# firmware. The source is ../shared's snapshot of CircuitPython main (CIRCUITPY_TARBALL), unpacked
# under build/ and used as it is; mcutrain goes in as a CircuitPython module would, as links:
#   shared-bindings/mcutrain/  modules/mcutrain/circuitpython/* + the binding (modmcutrain.c, mct_names.h)
#   shared-module/mcutrain     -> c_src/
# and the port is built with the variant boards/circuitpython-unix.

CIRCUITPY_TARBALL ?= $(firstword $(wildcard $(CURDIR)/../shared/vendor/circuitpython-*.tar.gz))
CIRCUITPY_DIR := $(BUILD)/circuitpython
# The snapshot has no git metadata; CircuitPython's makeversionhdr.py takes CP_VERSION for the
# missing tag, and an empty repository of its own (git init) keeps it from reading this one's.
# 0.0.0: not a release; the suffix names the snapshot's commit.
CIRCUITPY_VERSION ?= 0.0.0-main-$(patsubst circuitpython-%.tar.gz,%,$(notdir $(CIRCUITPY_TARBALL)))

.PHONY: firmware-circuitpython-unix

ifeq ($(CIRCUITPY_TARBALL),)
firmware-circuitpython-unix:
	@echo "the CircuitPython snapshot is absent (../shared/vendor/circuitpython-*.tar.gz): not built" >&2
	@exit 1
else
$(CIRCUITPY_DIR)/py/mpconfig.h: $(CIRCUITPY_TARBALL)
	rm -rf $(CIRCUITPY_DIR)
	mkdir -p $(CIRCUITPY_DIR)
	tar xzf $< -C $(CIRCUITPY_DIR) --strip-components=1
	git init -q $(CIRCUITPY_DIR)
	touch $@

# The links are made on every build: a file added to the binding's directory gets its link.
firmware-circuitpython-unix: $(CIRCUITPY_DIR)/py/mpconfig.h $(VENV_STAMP)
	mkdir -p $(CIRCUITPY_DIR)/shared-bindings/mcutrain
	ln -sf $(CURDIR)/modules/mcutrain/circuitpython/* $(CURDIR)/modules/mcutrain/modmcutrain.c \
		$(CURDIR)/modules/mcutrain/mct_names.h $(CIRCUITPY_DIR)/shared-bindings/mcutrain/
	ln -sfn $(CURDIR)/c_src $(CIRCUITPY_DIR)/shared-module/mcutrain
	CP_VERSION=$(CIRCUITPY_VERSION) $(MAKE) -C $(CIRCUITPY_DIR)/ports/unix -j$(JOBS) BUILD=$(BUILD)/circuitpython-unix \
		VARIANT_DIR=$(CURDIR)/boards/circuitpython-unix PYTHON=$(abspath $(PYTHON))
	mkdir -p $(FIRMWARE)/circuitpython-unix
	cp $(BUILD)/circuitpython-unix/micropython $(FIRMWARE)/circuitpython-unix/micropython

# The board tests run on it too (they skip it, saying why, where the snapshot is absent).
test: firmware-circuitpython-unix
endif

clean: clean-circuitpython
.PHONY: clean-circuitpython
clean-circuitpython:
	rm -rf $(CIRCUITPY_DIR) $(BUILD)/circuitpython-unix
