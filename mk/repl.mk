# make repl BOARD=qemu-m3 [FILES="build/demo/fashion.mct build/demo/train.bin ..."]: the board's
# interactive MicroPython REPL with FILES on it (host_tools repl; in /rom on the emulated boards).

repl: $(VENV_STAMP) firmware-$(BOARD)
	$(PYTHON) -m host_tools repl --board $(BOARD) $(FILES)

.PHONY: repl
