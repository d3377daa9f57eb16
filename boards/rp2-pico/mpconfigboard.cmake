# mcutrain's rp2-pico board: MicroPython's RPI_PICO (see mpconfigboard.h for its Flash layout).
set(PICO_BOARD "pico")
set(PICO_PLATFORM "rp2040")
