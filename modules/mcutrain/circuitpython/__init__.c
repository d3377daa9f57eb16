// mcutrain as a CircuitPython module: shared-bindings/mcutrain/__init__.c of a CircuitPython tree,
// compiled when CIRCUITPY_MCUTRAIN is 1 (mcutrain.mk). CircuitPython (MicroPython 1.27 inside)
// compiles the project's one binding source, which lies beside this file in shared-bindings/mcutrain/;
// the core (c_src/) is shared-module/mcutrain/.
#include "modmcutrain.c"
