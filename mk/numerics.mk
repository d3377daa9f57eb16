# Training numerics (docs/numerics.md). Included by the Makefile (-include mk/*.mk).
#
#   make bench-update-rules    held-out accuracy of each update rule on the demo task (C core on the
#                              host, 3 seeds, 2 schemes, 4 learning rates) -> docs/numerics.md

.PHONY: bench-update-rules
bench-update-rules: $(VENV_STAMP) $(BUILD)/demo/fashion.mct
	$(PYTHON) bench/update_rules.py

#   make bench-backward        instructions per training step on qemu-m3 and qemu-m0, float32 against
#                              the integer backward -> docs/numerics.md
.PHONY: bench-backward
bench-backward: $(VENV_STAMP) firmware-qemu-m3 firmware-qemu-m0 $(BUILD)/demo/fashion.mct
	$(PYTHON) bench/backward_cost.py
