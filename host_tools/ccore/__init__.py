"""The C core (c_src/) on the host through ctypes."""
