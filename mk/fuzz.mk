# Reliability: fuzzing the model reader and the engine, sanitizers, valgrind, long runs.
# See docs/reliability.md. Included by the Makefile (-include mk/*.mk).
#
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_JOBS=2]   libFuzzer (clang, ASan+UBSan): fuzz_model (CRC and size
#                                               patched) then fuzz_model_raw (input as is), FUZZ_SECONDS each
#   make fuzz-build                             the fuzz targets and the gcc ASan/UBSan replay tool
#   make fuzz-replay                            every fuzz/regressions/ input through the replay tool
#   make sanitize                               C-core pytest suite and board scripts under ASan/UBSan
#   make valgrind                               board scripts on the unix firmware under valgrind
#   make reliability [LONGRUN_STEPS=10000]      the long training runs (unix, then qemu-m3)

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 2
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_SRC := $(wildcard c_src/*.c)
FUZZ_DEPS := $(FUZZ_SRC) $(wildcard c_src/*.h) fuzz/fuzz_model.c
FUZZ_CFLAGS := -std=c99 -g -O1 -ffp-contract=off -fno-omit-frame-pointer -Ic_src \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
SAN_CC ?= cc
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

.PHONY: fuzz fuzz-build fuzz-replay fuzz-corpus sanitize sanitize-core sanitize-board valgrind reliability \
	firmware-unix-asan firmware-unix-valgrind

$(FUZZ_DIR)/fuzz_model: $(FUZZ_DEPS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DFUZZ_PATCH_CRC=1 -o $@ fuzz/fuzz_model.c $(FUZZ_SRC)

$(FUZZ_DIR)/fuzz_model_raw: $(FUZZ_DEPS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DFUZZ_PATCH_CRC=0 -o $@ fuzz/fuzz_model.c $(FUZZ_SRC)

# The same harness without libFuzzer, under gcc's sanitizers: replays files (CRC patched).
$(FUZZ_DIR)/fuzz_replay: $(FUZZ_DEPS)
	@mkdir -p $(@D)
	$(SAN_CC) -std=c99 -g -O1 -ffp-contract=off -Ic_src $(SAN_FLAGS) -DFUZZ_REPLAY_MAIN -DFUZZ_PATCH_CRC=1 \
		-o $@ fuzz/fuzz_model.c $(FUZZ_SRC)

fuzz-build: $(FUZZ_DIR)/fuzz_model $(FUZZ_DIR)/fuzz_model_raw $(FUZZ_DIR)/fuzz_replay

fuzz-corpus: $(VENV_STAMP)
	$(PYTHON) fuzz/make_corpus.py $(FUZZ_DIR)/seeds

# The corpus grows in build/fuzz/corpus (kept between runs); crashes land in build/fuzz/artifacts/.
fuzz: $(FUZZ_DIR)/fuzz_model $(FUZZ_DIR)/fuzz_model_raw fuzz-corpus
	@mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/corpus_raw $(FUZZ_DIR)/artifacts
	cd $(FUZZ_DIR) && ./fuzz_model -max_total_time=$(FUZZ_SECONDS) -fork=$(FUZZ_JOBS) -rss_limit_mb=2048 \
		-timeout=20 -max_len=65536 -print_final_stats=1 -artifact_prefix=artifacts/ corpus seeds
	cd $(FUZZ_DIR) && ./fuzz_model_raw -max_total_time=$(FUZZ_SECONDS) -fork=$(FUZZ_JOBS) -rss_limit_mb=2048 \
		-timeout=20 -max_len=65536 -print_final_stats=1 -artifact_prefix=artifacts/ corpus_raw seeds
	$(MAKE) --no-print-directory fuzz-replay

fuzz-replay: $(FUZZ_DIR)/fuzz_replay
	$(FUZZ_DIR)/fuzz_replay fuzz/regressions/*

# --- sanitizers and valgrind --------------------------------------------------------------------

sanitize: sanitize-core sanitize-board fuzz-replay

# The pytest C-core suite on the core built with -fsanitize=address,undefined (MCT_SANITIZE=1 makes
# host_tools/ccore/core.py load that build; libasan must come first, hence LD_PRELOAD).
sanitize-core: $(VENV_STAMP)
	MCT_SANITIZE=1 LD_PRELOAD=$$($(SAN_CC) -print-file-name=libasan.so):$$($(SAN_CC) -print-file-name=libubsan.so) \
		ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		$(PYTHON) -m pytest -q -p no:cacheprovider tests/test_core.py tests/test_reliability.py -k "not fuzz_short"

# The unix port built with ASan+UBSan (own build folder), then every board script on it.
firmware-unix-asan: $(MPY_SOURCE)
	$(MAKE) -C $(MPY_DIR)/ports/unix -j$(JOBS) $(PORT_FLAGS) BUILD=$(BUILD)/unix-asan \
		MICROPY_PY_BTREE=0 MICROPY_PY_SSL=0 MICROPY_PY_FFI=0 \
		CFLAGS_EXTRA="$(SAN_FLAGS)" LDFLAGS_EXTRA="$(SAN_FLAGS)"
	mkdir -p $(FIRMWARE)/unix-asan
	$(call install_file,$(BUILD)/unix-asan/micropython,$(FIRMWARE)/unix-asan/micropython)

sanitize-board: firmware-unix-asan $(VENV_STAMP)
	MCT_BOARD_FIRMWARE=$(FIRMWARE)/unix-asan/micropython ASAN_OPTIONS=detect_leaks=1 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		$(PYTHON) fuzz/run_board_scripts.py

# Unstripped (with symbols), so that fuzz/valgrind.supp can name the
# one thing it suppresses: the GC's conservative scan of the C stack (uninitialised words on purpose).
firmware-unix-valgrind: $(MPY_SOURCE)
	$(MAKE) -C $(MPY_DIR)/ports/unix -j$(JOBS) $(PORT_FLAGS) BUILD=$(BUILD)/unix-valgrind \
		MICROPY_PY_BTREE=0 MICROPY_PY_SSL=0 MICROPY_PY_FFI=0 STRIP= \
		CFLAGS_EXTRA="-g"
	mkdir -p $(FIRMWARE)/unix-valgrind
	$(call install_file,$(BUILD)/unix-valgrind/micropython,$(FIRMWARE)/unix-valgrind/micropython)

valgrind: firmware-unix-valgrind $(VENV_STAMP)
	MCT_BOARD_FIRMWARE=$(FIRMWARE)/unix-valgrind/micropython \
		MCT_BOARD_WRAPPER="valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
		--suppressions=$(CURDIR)/fuzz/valgrind.supp -q" $(PYTHON) fuzz/run_board_scripts.py

# --- long runs ----------------------------------------------------------------------------------

LONGRUN_STEPS ?= 10000
LONGRUN_STEPS_QEMU ?= 500

reliability: firmware-unix firmware-qemu-m3 $(VENV_STAMP)
	$(PYTHON) fuzz/longrun.py --board unix --steps $(LONGRUN_STEPS)
	$(PYTHON) fuzz/longrun.py --board qemu-m3 --steps $(LONGRUN_STEPS_QEMU)
