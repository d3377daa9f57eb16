"""Copying files to and from a MicroPython board through its raw REPL, as few bytes on the wire as
the REPL allows.

mpremote's fs_writefile/fs_readfile send each 256-byte chunk as a Python bytes literal: binary data
(int8 images, model weights) becomes mostly `\\xNN`, about 3 bytes on the wire per byte, and each
chunk costs a raw-REPL round trip. Here the chunks are base64 (4 bytes per 3) and 8 times larger.
A board without `binascii` gets mpremote's own way.

    from mpremote.transport_serial import SerialTransport
    write_file(link, "/flash/train.bin", data)
"""
import base64

CHUNK = 2048        # bytes per raw-REPL command: the board holds ~3 KB of base64 and 2 KB decoded at once


def has_binascii(link) -> bool:
    try:
        link.exec("import binascii")
        return True
    except Exception:  # mpremote's TransportExecError: the board has no binascii
        return False


def write_file(link, path: str, data: bytes, chunk: int = CHUNK) -> None:
    """path on the board holds data afterwards (link: an mpremote transport in its raw REPL).
    Errors are mpremote's (TransportExecError with the board's traceback, e.g. ENOSPC)."""
    if not has_binascii(link):
        link.fs_writefile(path, data, chunk_size=256)
        return
    link.exec(f"f=open({path!r},'wb')\nw=f.write\na=binascii.a2b_base64")
    for start in range(0, len(data), chunk):
        link.exec("w(a(" + repr(base64.b64encode(data[start:start + chunk])) + "))")
    link.exec("f.close()")


def read_file(link, path: str, chunk: int = CHUNK) -> bytes:
    """The contents of path on the board."""
    if not has_binascii(link):
        return bytes(link.fs_readfile(path, chunk_size=256))
    link.exec(f"f=open({path!r},'rb')\nr=f.read\nb=binascii.b2a_base64")
    out = bytearray()
    while True:
        text = link.exec(f"print(b(r({chunk})).decode(),end='')").strip()
        if not text:
            break
        out += base64.b64decode(text)
    link.exec("f.close()")
    return bytes(out)
