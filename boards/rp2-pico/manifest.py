# Frozen Python for mcutrain's rp2-pico firmware: the port's own modules, and mcutrain_util
# (save_atomic / load of trained models on the board's LittleFS).
freeze("$(PORT_DIR)/modules")
include("$(MPY_DIR)/extmod/asyncio")
# The port's drivers from micropython-lib, where the MicroPython tree has that submodule (Debian's
# source tarball has not).
for driver in ("onewire", "ds18x20", "dht", "neopixel"):
    try:
        require(driver)
    except Exception:
        pass
module("mcutrain_util.py", base_path="../../natmod")
