# The baseline of the fast kernels for make bench-mcu: qemu-m3 built with -DMCT_REFERENCE_KERNELS
# (requantization step by step, depthwise convs through the general conv kernel), so that one run
# measures the fast kernels against it. make bench-mcu also measures the MbV2-w0.35 model of
# ../shared/models/mit when present (converted into build/bench/).
$(FIRMWARE)/qemu-m3-reference/firmware.elf: $(MPY_SOURCE) $(wildcard c_src/*.[ch] modules/mcutrain/*.c)
	$(MAKE) -C $(MPY_DIR)/ports/qemu -j$(JOBS) $(PORT_FLAGS) BUILD=$(BUILD)/qemu-m3-reference \
		BOARD=qemu-m3 BOARD_DIR=$(CURDIR)/boards/qemu-m3 CFLAGS_EXTRA=-DMCT_REFERENCE_KERNELS
	mkdir -p $(dir $@)
	cp $(BUILD)/qemu-m3-reference/firmware.elf $@

bench-mcu: $(FIRMWARE)/qemu-m3-reference/firmware.elf
