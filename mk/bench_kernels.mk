# make bench-kernels: instructions per MAC of the int8 forward kernels on the layer shapes of
# MobileNetV2-w0.35 at 128x128, bare metal (bench/bare/, arm-none-eabi-gcc -O2, no MicroPython) on
# qemu-m7 (DSP extension), qemu-m3 and qemu-m0: the channels-last kernels (c_src/mct_*_s8_hwc.c)
# beside today's channel-planar ones and CMSIS-NN v7 (../shared/vendor, benchmark firmware only,
# never the product). Exact counts with ../shared/tools/qemu-insn-count (built into build/plugin/);
# about 30 s. Writes its section of docs/benchmarks.md. Without ../shared it says so.
.PHONY: bench-kernels
bench-kernels: $(VENV_STAMP)
	$(PYTHON) bench/bench_kernels.py
