"""Boards: run scripts on them (runners), ROMFS images (romfs), deploy over a serial port (deploy), check
a model on one against the reference (check)."""
