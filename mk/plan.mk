# The demo model's training scheme chosen for a RAM budget (host_tools plan, docs/host_tools.md),
# then trained on the emulated board. Included by the Makefile (-include mk/*.mk).
#
#   make plan-demo [PLAN_BUDGET=64KB]   contribution analysis on the board's 500 training images
#                                       (a few minutes), build/demo/fashion_plan.mct + frontier.png,
#                                       then examples/fashion_new_classes.py with it on $(DEMO_BOARD)

PLAN_BUDGET ?= 64KB

# the board's training images (int8, pixel - 128) as the .npz that --data reads
$(DEMO)/target.npz: $(DEMO)/fashion.mct
	$(PYTHON) -c 'import numpy as np, sys; d = sys.argv[1]; \
		x = np.fromfile(d + "/train.bin", np.int8).reshape(-1, 1, 28, 28); \
		y = np.fromfile(d + "/train_labels.bin", np.uint8).astype(np.int64); \
		np.savez(d + "/target.npz", x=(x.astype(np.float32) + 128) / 255, y=y)' $(DEMO)

plan-demo: $(DEMO)/target.npz firmware-$(DEMO_BOARD)
	$(PYTHON) -m host_tools plan $(DEMO)/fashion.mct --data $(DEMO)/target.npz --budget $(PLAN_BUDGET) \
		-o $(DEMO)/fashion_plan.mct --png $(DEMO)/frontier.png
	mkdir -p $(BUILD)/plan-demo
	cp $(DEMO)/fashion_plan.mct $(BUILD)/plan-demo/fashion.mct    # the script opens fashion.mct
	$(PYTHON) -m host_tools run --board $(DEMO_BOARD) examples/fashion_new_classes.py boards/lib/romfile.py natmod/mcutrain_util.py \
		$(BUILD)/plan-demo/fashion.mct $(DEMO_DATA)

.PHONY: plan-demo
