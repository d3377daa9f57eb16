"""Which backward pass a model gets by default on each board (`host_tools convert --board BOARD`).

The backward is chosen when the model is converted (header byte 50, bit 2: docs/format.md), since the
plan of the arena depends on it; the firmware runs what the file says. This table is the one place
where a board's default is set. The Raspberry Pi Pico's Cortex-M0+ has no FPU: each float32 operation
of the float32 backward is a call into the RP2040 boot ROM's float routines (pico-sdk's pico_float),
and even with them the integer backward takes 2.5x fewer cycles per training step of the demo model
(`make bench-mcu`, docs/benchmarks.md). The emulated qemu boards and the unix ports keep the float32
backward, the project's reference numerics (their demo trains with the master rule, which the integer
backward does not take); on qemu-m3 and qemu-m0 the integer backward is also cheaper (docs/numerics.md)
and is one `--backward int` away."""
from host_tools.errors import UserError

DEFAULT_BACKWARD = {
    "unix": "float",
    "circuitpython-unix": "float",
    "qemu-m3": "float",
    "qemu-m7": "float",       # Cortex-M7 with a single-precision FPU
    "qemu-m0": "float",
    "rp2-pico": "int",        # Cortex-M0+, no FPU
}
NO_BOARD = "float"           # convert without --board


def default_backward(board):
    """The backward a model converted for `board` (None: no board named) gets unless told otherwise."""
    if board is None:
        return NO_BOARD
    if board not in DEFAULT_BACKWARD:
        raise UserError(f"unknown board {board!r}; the boards are {', '.join(DEFAULT_BACKWARD)}")
    return DEFAULT_BACKWARD[board]
