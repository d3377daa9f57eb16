# make bench-memory: training memory of the paper's three models (every scheme of
# ../shared/models/mit/schemes.json) measured on the emulated 256 KB qemu-m3, beside the paper's
# figures, plus instructions per training step; writes its section of docs/benchmarks.md.
# About 20 minutes on 2 cores. Without ../shared it says so and measures nothing.
BENCH_MEMORY_FLAGS ?= --update-rule stochastic

.PHONY: bench-memory
bench-memory: $(VENV_STAMP) firmware-qemu-m3
	$(PYTHON) bench/bench_memory.py $(BENCH_MEMORY_FLAGS)
