# A fleet learning together: federated sparse updates over Flower, boards as clients (docs/fleet.md).
#
#   make demo-fleet     Flower's simulation engine: 100 clients on a Dirichlet(0.5) split of
#                       Fashion-MNIST, two of them emulated boards (unix port, qemu-m3), the rest
#                       the C core; prints `fleet accuracy before X after Y (...)`
#   make demo-fleet-deployment   the same apps on Flower's deployment engine: a SuperLink and one
#                       SuperNode per client as processes on 127.0.0.1, two of them boards
#   make bench-fleet    fleet vs centralized vs local-only accuracy, bytes per round, dropouts,
#                       wall time per round -> docs/benchmarks.md, docs/img/fleet_rounds.png

FLEET_STAMP := .venv/.fleet-installed
FLEET_BOARDS ?= unix,qemu-m3
FLEET_ROUNDS ?= 10

# Ray for the simulation engine (heavy: about 250 MB), only for the targets that run it.
$(FLEET_STAMP): requirements-fleet.txt | $(VENV_STAMP)
	.venv/bin/python -m pip install -r requirements-fleet.txt
	touch $@

.PHONY: demo-fleet demo-fleet-deployment bench-fleet
demo-fleet: $(FLEET_STAMP) firmware-unix firmware-qemu-m3 $(DEMO)/fashion.mct
	$(PYTHON) -m host_tools.fleet $(DEMO)/fashion.mct --clients 100 --rounds $(FLEET_ROUNDS) \
		--boards $(FLEET_BOARDS) --out $(BUILD)/fleet/demo

demo-fleet-deployment: $(VENV_STAMP) firmware-unix firmware-qemu-m3 $(DEMO)/fashion.mct
	$(PYTHON) -m host_tools.fleet.deployment $(DEMO)/fashion.mct --clients 4 --rounds 3 \
		--boards $(FLEET_BOARDS) --out $(BUILD)/fleet/deployment

bench-fleet: $(FLEET_STAMP) firmware-unix firmware-qemu-m3 $(DEMO)/fashion.mct
	$(PYTHON) bench/bench_fleet.py --model $(DEMO)/fashion.mct --boards $(FLEET_BOARDS)
