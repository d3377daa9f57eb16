# Training numerics (docs/numerics.md). Included by the Makefile (-include mk/*.mk).
#
#   make bench-update-rules    held-out accuracy of each update rule on the demo task (C core on the
#                              host, 3 seeds, 2 schemes, 4 learning rates) -> docs/numerics.md

.PHONY: bench-update-rules
bench-update-rules: $(VENV_STAMP) $(BUILD)/demo/fashion.mct
	$(PYTHON) bench/update_rules.py
