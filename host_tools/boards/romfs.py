"""Write MicroPython ROMFS images (the format of extmod/vfs_rom.c, MicroPython 1.25).

A ROMFS image is a tree of records; each record is `varuint kind, varuint length, payload`
(varuint: big-endian 7 bits a byte, high bit set on all but the last byte). The image is one
filesystem record (kind 0x14a6b1, encoded d2 cd 31 = "RM1") holding directory records (4) and
file records (5); a file record holds its name and a verbatim data record (2).

Unlike mpremote's writer, this one aligns every file's data to `align` bytes from the start of
the image (padding records, kind 1, fill the gaps). Placed at an aligned address, a file's
buffer (what `memoryview(open(name, 'rb'))` gives on the device) is then aligned too, so
C code can read int32 tables from Flash in place. To know where data lands before the
enclosing records are complete, directory and filesystem lengths are written as fixed-width
varuints (a varuint may be padded with leading 0x80 bytes).
"""
import os
from typing import Dict, Iterable, Tuple, Union

KIND_PADDING = 1
KIND_DATA_VERBATIM = 2
KIND_DIRECTORY = 4
KIND_FILE = 5
KIND_FILESYSTEM = 0x14A6B1

_FIXED_LEN_BYTES = 5  # enough for lengths below 32 GiB

# A tree: file name -> bytes (a file) or another tree (a directory).
Tree = Dict[str, Union[bytes, "Tree"]]


def encode_uint(value: int, width: int = 0) -> bytes:
    """varuint of `value`, left-padded with 0x80 bytes to at least `width` bytes."""
    out = [value & 0x7F]
    rest = value >> 7
    while rest:
        out.insert(0, 0x80 | (rest & 0x7F))
        rest >>= 7
    if width and len(out) > width:
        raise ValueError(f"{value} does not fit in a {width}-byte varuint")
    return bytes([0x80] * (width - len(out)) + out)


def _padding_record(size: int) -> bytes:
    """A padding record of exactly `size` bytes (size 0 or >= 2; 1 is impossible)."""
    if size == 0:
        return b""
    assert size >= 2
    # Kind takes 1 byte; the length varuint 1 byte up to payload 127, else 2 (padded if need be).
    if size - 2 < 128:
        rec = encode_uint(KIND_PADDING) + encode_uint(size - 2) + bytes(size - 2)
    else:
        rec = encode_uint(KIND_PADDING) + encode_uint(size - 3, 2) + bytes(size - 3)
    assert len(rec) == size
    return rec


class _Writer:
    def __init__(self, align: int):
        if align < 1 or align & (align - 1):
            raise ValueError("align must be a power of two")
        self.align = align
        self.buf = bytearray()

    def _pad_so_that(self, offset_after_pad: int) -> None:
        """Add padding so that a position `offset_after_pad` bytes ahead becomes aligned."""
        pad = -(len(self.buf) + offset_after_pad) % self.align
        if pad == 1:
            pad += self.align  # a padding record is at least 2 bytes
        self.buf += _padding_record(pad)

    def _open(self, kind: int, head: bytes) -> int:
        """Start a container record whose length is patched by _close; returns its start."""
        start = len(self.buf)
        self.buf += encode_uint(kind) + bytes(_FIXED_LEN_BYTES) + head
        return start

    def _close(self, start: int, kind: int) -> None:
        len_at = start + len(encode_uint(kind))
        payload = len(self.buf) - (len_at + _FIXED_LEN_BYTES)
        self.buf[len_at:len_at + _FIXED_LEN_BYTES] = encode_uint(payload, _FIXED_LEN_BYTES)

    def file(self, name: str, data: bytes) -> None:
        bname = name.encode()
        data_rec_head = encode_uint(KIND_DATA_VERBATIM) + encode_uint(len(data))
        payload_len = len(encode_uint(len(bname))) + len(bname) + len(data_rec_head) + len(data)
        file_head = encode_uint(KIND_FILE) + encode_uint(payload_len)
        # Where the data starts, counted from the start of this file record.
        data_offset = len(file_head) + len(encode_uint(len(bname))) + len(bname) + len(data_rec_head)
        self._pad_so_that(data_offset)
        self.buf += file_head + encode_uint(len(bname)) + bname + data_rec_head
        assert len(self.buf) % self.align == 0
        self.buf += data

    def tree(self, tree: Tree) -> None:
        for name in sorted(tree):
            if "/" in name or name in ("", ".", ".."):
                raise ValueError(f"bad ROMFS entry name {name!r}")
            entry = tree[name]
            if isinstance(entry, dict):
                bname = name.encode()
                start = self._open(KIND_DIRECTORY, encode_uint(len(bname)) + bname)
                self.tree(entry)
                self._close(start, KIND_DIRECTORY)
            else:
                self.file(name, bytes(entry))

    def image(self, tree: Tree) -> bytes:
        start = self._open(KIND_FILESYSTEM, b"")
        self.tree(tree)
        # The whole filesystem record must have an even size.
        if len(self.buf) % 2:
            self.buf += _padding_record(3)
        self._close(start, KIND_FILESYSTEM)
        return bytes(self.buf)


def build_image(tree: Tree, align: int = 16) -> bytes:
    """ROMFS image of `tree` (name -> bytes, or name -> subtree for a directory)."""
    return _Writer(align).image(tree)


def build_image_from_files(files: Iterable[Union[str, Tuple[str, str]]], align: int = 16) -> bytes:
    """ROMFS image with the given host files at its top level.

    Each item is a host path (stored under its base name) or a (name in ROMFS, host path) pair.
    """
    tree: Tree = {}
    for item in files:
        name, path = item if isinstance(item, tuple) else (os.path.basename(item), item)
        if name in tree:
            raise ValueError(f"two files named {name!r}")
        with open(path, "rb") as f:
            tree[name] = f.read()
    return build_image(tree, align)


def read_image(image: bytes) -> Tree:
    """Parse an image back into a tree (for tests and for checking images)."""

    def uint(pos: int) -> Tuple[int, int]:
        value = 0
        while True:
            byte = image[pos]
            pos += 1
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                return value, pos

    def records(pos: int, end: int) -> Tree:
        out: Tree = {}
        while pos < end:
            kind, pos = uint(pos)
            length, pos = uint(pos)
            nxt = pos + length
            if kind in (KIND_DIRECTORY, KIND_FILE):
                nlen, p = uint(pos)
                name = image[p:p + nlen].decode()
                p += nlen
                if kind == KIND_DIRECTORY:
                    out[name] = records(p, nxt)
                else:
                    while p < nxt:
                        dkind, p = uint(p)
                        dlen, p = uint(p)
                        if dkind == KIND_DATA_VERBATIM:
                            out[name] = image[p:p + dlen]
                            break
                        p += dlen
            pos = nxt
        return out

    kind, pos = uint(0)
    if kind != KIND_FILESYSTEM:
        raise ValueError("not a ROMFS image")
    length, pos = uint(pos)
    return records(pos, pos + length)
