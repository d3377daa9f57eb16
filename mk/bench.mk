# Accuracy and speed benchmarks (included by the top-level Makefile); both write their sections of
# docs/benchmarks.md.
#
#   make bench-accuracy           int8 + QAS sparse vs fp32 PyTorch on real data (about 40 min on 2 cores),
#                                 learning curves in docs/img/; the MIT tasks need ../shared/models/mit
#   make bench-accuracy-quick     the same at tiny sizes (a few minutes; tests/test_bench_smoke.py runs it)
#   make bench-speed              steps/s and peak RSS of the unix-port engine vs PyTorch, instructions
#                                 per step on the emulated Cortex-M
#   make bench-convert            host_tools convert's seconds per 1,000 validation images: float64 original, main, now
#                                 the fast int8 simulation (MbV2-w0.35 needs ../shared/models/mit)
#   make bench-deploy             copy speed onto the emulated board's serial line: host_tools deploy vs mpremote cp

BENCH_BOARDS := firmware-unix firmware-qemu-m3

.PHONY: bench-accuracy bench-accuracy-quick bench-speed bench-convert bench-deploy

bench-accuracy: $(VENV_STAMP) $(BENCH_BOARDS) $(DEMO)/fashion_net.pt
	nice $(PYTHON) bench/bench_accuracy.py

bench-accuracy-quick: $(VENV_STAMP) $(BENCH_BOARDS) $(DEMO)/fashion_net.pt
	nice $(PYTHON) bench/bench_accuracy.py --quick --docs $(BUILD)/bench/quick.md --img-dir $(BUILD)/bench/img

bench-speed: $(VENV_STAMP) $(BENCH_BOARDS) firmware-qemu-m7 $(DEMO)/fashion_net.pt
	$(PYTHON) bench/bench_speed.py

bench-convert: $(VENV_STAMP) $(DEMO)/fashion_net.pt
	nice $(PYTHON) bench/bench_convert.py

bench-deploy: $(VENV_STAMP) firmware-qemu-m3
	$(PYTHON) bench/bench_deploy_copy.py
