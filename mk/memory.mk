# make bench-memory: training memory of the paper's three models (every scheme of
# ../shared/models/mit/schemes.json) measured on the emulated 256 KB qemu-m3, beside the paper's
# figures, plus instructions per training step; writes its section of docs/benchmarks.md.
# About 20 minutes on 2 cores. Without ../shared it says so and measures nothing.
BENCH_MEMORY_FLAGS ?= --update-rule stochastic

.PHONY: bench-memory
bench-memory: $(VENV_STAMP) firmware-qemu-m3 firmware-qemu-m7 firmware-rp2-pico rp2040js
	$(PYTHON) bench/bench_memory.py $(BENCH_MEMORY_FLAGS)
	$(PYTHON) bench/rp2_pico.py

# make bench-forward: peak memory of the frozen forward stages of the same three models (~100 KB
# schemes) under each strategy: whole tensors, the patch-based first stage, in-place depthwise,
# row-streamed inverted-residual blocks and their combinations (a buffer-level model), beside what
# the planner builds (host only, about 30 s); writes its section of docs/benchmarks.md. Without
# ../shared it says so.
.PHONY: bench-forward
bench-forward: $(VENV_STAMP)
	$(PYTHON) bench/forward_alternatives.py
