# Frozen Python for mcutrain's rp2-pico firmware: the port's own modules, and mcutrain_util
# (save_atomic / load of trained models on the board's LittleFS).
include("$(PORT_DIR)/boards/manifest.py")
module("mcutrain_util.py", base_path="../../natmod")
