"""Faults a fleet must survive, injected by configuration (host_tools.fleet.apps.FleetConfig) in
the benchmark and the tests: clients that crash mid-round, a board reset mid-round, hostile
updates."""
import struct
import zlib

import numpy as np

from host_tools.fleet.blob import ENTRY, HEADER
from host_tools.fleet.board import BoardFailed

# what a hostile client sends instead of its update
HOSTILE = ("garbage", "foreign", "extreme", "count", "nan", "corrupt")


class ClientCrash(RuntimeError):
    """A client that dies during its round (Flower reports it to the server as a failure)."""


def crashes(fraction: float, rnd: int, pid: int, n_clients: int) -> bool:
    """Does client pid crash in round rnd? A fresh random `fraction` of the n clients each round."""
    k = int(round(fraction * n_clients))
    return k > 0 and pid in np.random.default_rng([rnd, 7]).permutation(n_clients)[:k]


def reset_mid_round(session, global_blob: bytes, order, lr):
    """The board loads the global tensors, starts training, and loses power before it answers."""
    if not session.running:
        session.start()
    session.command("L " + global_blob.hex())
    session.serial.write(f"T {lr!r} ".encode() + ",".join(str(int(i)) for i in order).encode() + b"\n")
    session.reset()
    raise BoardFailed(f"{session.board} board reset in the middle of its round")


def hostile_update(kind: str, blob: bytes, n: int, rnd: int):
    """(blob, sample count) of a hostile client in place of its honest ones."""
    rng = np.random.default_rng(rnd)
    if kind == "garbage":
        return rng.integers(0, 256, len(blob), dtype=np.uint8).tobytes(), n
    if kind == "foreign":           # a well-formed blob of another model: another model id
        b = bytearray(blob)
        b[16:20] = struct.pack("<I", struct.unpack_from("<I", b, 16)[0] ^ 0x5A5A5A5A)
        b[12:16] = struct.pack("<I", zlib.crc32(bytes(b[16:])) & 0xFFFFFFFF)
        return bytes(b), n
    if kind == "corrupt":           # one byte flipped in transit: the CRC no longer matches
        b = bytearray(blob)
        b[-1] ^= 0xFF
        return bytes(b), n
    if kind == "extreme":           # valid format, every value pushed to its limit, a large claimed count
        return _extreme(blob), n * 50
    if kind == "count":
        return blob, 10 ** 12
    if kind == "nan":
        return blob, float("nan")
    raise ValueError(f"unknown hostile kind {kind!r}: one of {HOSTILE}")


def _extreme(blob: bytes) -> bytes:
    """The same blob with each int8 weight at +127 and each int32 bias at +2^30 (CRC redone)."""
    b = bytearray(blob)
    pos = HEADER.size
    while pos < len(b):
        _, dtype, _, channels, count = ENTRY.unpack_from(b, pos)
        start = pos + ENTRY.size + 4 * channels
        if dtype == 1:
            b[start:start + count] = bytes([127]) * count
            nbytes = count
        else:
            b[start:start + 4 * count] = struct.pack("<i", 1 << 30) * count
            nbytes = 4 * count
        pos = start + ((nbytes + 3) & ~3)
    b[12:16] = struct.pack("<I", zlib.crc32(bytes(b[16:])) & 0xFFFFFFFF)
    return bytes(b)
