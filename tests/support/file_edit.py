"""Where a model file's table entries are, to corrupt one on purpose in the loader tests, and its
CRC made right again so that the loader reaches the entry."""
import struct
import zlib


def op_entry(data, k):
    """Byte offset of op k's entry (byte 1: its flags)."""
    return struct.unpack_from("<I", data, 36)[0] + 64 * k


def act_entry(data, a):
    """Byte offset of activation a's entry (8: offset, 12: gradient, 16: mask, 20: capacity)."""
    return struct.unpack_from("<I", data, 32)[0] + 24 * a


def fix_crc(data):
    struct.pack_into("<I", data, 12, zlib.crc32(bytes(data[16:])) & 0xFFFFFFFF)
    return bytes(data)
