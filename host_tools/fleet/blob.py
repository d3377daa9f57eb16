"""The update blob on the host: the numpy reference of c_src/mct_update_blob.c (docs/format.md,
"Update blob"). A blob holds the int values of a model's trained tensors with their scales; its
model id ties it to one model file. `write` produces the core's bytes, `read` makes the core's
checks, so a server refuses what a board would refuse, with the same messages.
"""
import struct
import zlib
from dataclasses import dataclass
from typing import List

import numpy as np

from host_tools.model import graph as g
from host_tools.model import mct_format as fmt
from host_tools.errors import UserError

MAGIC = b"MCTU"
VERSION = 1
HEADER = struct.Struct("<4sHHIIIHH")        # magic, version, header size, size, CRC, model id, entries, 0
ENTRY = struct.Struct("<HBBII")             # tensor, dtype, kind, channels, count
WEIGHT, BIAS = 1, 2
BIAS_LIMIT = 2147483520                     # the trained bias range of c_src/mct_sgd_qas.c
LIMITS = {fmt.DT_INT8: 127, fmt.DT_INT32: BIAS_LIMIT}

# c_src/mcutrain.h enum mct_blob_problem: the message of each (b: its detail)
PROBLEMS = {
    1: "update blob is truncated: {b} bytes",
    2: "not an mcutrain update blob (bad magic)",
    3: "update blob version {b} not supported",
    4: "update blob is {b} bytes but its header says otherwise",
    5: "update blob is corrupted: CRC32 mismatch",
    6: "update blob is for another model (model id {b:08x}, this model's is {own:08x})",
    7: "update blob entry {index} is not this model's trained tensor",
    8: "update blob entry {index}: channel {b}'s scale is not this model's",
    9: "update blob entry {index}: element {b} outside the trained range",
}


class BlobError(UserError, ValueError):
    """A blob that does not fit the model: what a board raises as ValueError."""


@dataclass
class Entry:
    tensor: int
    dtype: int
    kind: int
    scales: np.ndarray          # float32 per channel: w_scale (weight rows), w_scale * x_scale (bias)
    count: int

    @property
    def channels(self):
        return len(self.scales)

    def nbytes(self):
        return ENTRY.size + 4 * self.channels + _align4(self.count * (1 if self.dtype == fmt.DT_INT8 else 4))


def _align4(n):
    return (n + 3) & ~3


def layout(model: fmt.Model) -> List[Entry]:
    """The blob's entries: each trained weight and bias of a conv or fully connected op, in op order."""
    out = []
    for op in model.ops:
        if op.type not in (g.CONV2D, g.FC):
            continue
        ws = model.tensors[op.wscale].astype(np.float32)
        for kind, t in ((WEIGHT, op.weight), (BIAS, op.bias)):
            if t is None or not model.trainable[t]:
                continue
            n = model.trained_count[t]
            if kind == WEIGHT:
                rows = n // (model.tensors[t].size // model.acts[op.out][0])
                scales = ws[:rows]
            else:
                scales = ws[:n] * np.float32(op.in0_scale)
            code = fmt.DT_INT8 if model.tensors[t].dtype == np.int8 else fmt.DT_INT32
            out.append(Entry(t, code, kind, scales.astype("<f4"), n))
    return out


def model_id(model: fmt.Model) -> int:
    """CRC-32 of the file's bytes [16, size) without the trained elements of trained tensors."""
    data = memoryview(model.data)
    skips = sorted((off, off + model.trained_count[t] * model.tensors[t].itemsize)
                   for t, off in enumerate(model.tensor_offsets) if model.trainable[t])
    crc, pos = 0, 16
    for start, end in skips + [(len(data), len(data))]:
        crc = zlib.crc32(data[pos:max(pos, start)], crc)
        pos = max(pos, end)
    return crc & 0xFFFFFFFF


def trained_values(model: fmt.Model) -> List[np.ndarray]:
    """The model file's trained values, one array per entry (int8 or int32)."""
    return [model.tensors[e.tensor][:e.count].copy() for e in layout(model)]


def write(model: fmt.Model, values: List[np.ndarray]) -> bytes:
    """The blob of these trained values (one array per entry of `layout(model)`)."""
    entries = layout(model)
    if len(values) != len(entries):
        raise BlobError(f"{len(values)} arrays for the model's {len(entries)} trained tensors")
    body = bytearray()
    for e, v in zip(entries, values):
        v = np.asarray(v)
        dt = np.dtype(fmt.DTYPES[e.dtype]).newbyteorder("<")
        if v.size != e.count or np.any(np.abs(v.astype(np.int64)) > LIMITS[e.dtype]):
            raise BlobError(f"tensor {e.tensor}: {v.size} values outside its trained range or count {e.count}")
        part = ENTRY.pack(e.tensor, e.dtype, e.kind, e.channels, e.count) + e.scales.tobytes() \
            + v.reshape(-1).astype(dt).tobytes()
        body += part + bytes(_align4(len(part)) - len(part))
    size = HEADER.size + len(body)
    tail = struct.pack("<IHH", model_id(model), len(entries), 0) + bytes(body)
    return MAGIC + struct.pack("<HHII", VERSION, HEADER.size, size, zlib.crc32(tail) & 0xFFFFFFFF) + tail


def read(model: fmt.Model, blob: bytes) -> List[np.ndarray]:
    """The trained values of a blob, after every check the core makes (BlobError, a ValueError)."""
    blob = bytes(blob)
    own = model_id(model)

    def bad(problem, index=0, b=0):
        return BlobError(PROBLEMS[problem].format(index=index, b=b, own=own))

    if len(blob) < HEADER.size:
        raise bad(1, b=len(blob))
    magic, version, hsize, size, crc, mid, n, reserved = HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise bad(2)
    if version != VERSION or hsize != HEADER.size or reserved:
        raise bad(3, b=version)
    if size != len(blob):
        raise bad(4, b=len(blob))
    if zlib.crc32(blob[16:]) & 0xFFFFFFFF != crc:
        raise bad(5)
    if mid != own:
        raise bad(6, b=mid)
    entries = layout(model)
    if size != HEADER.size + sum(e.nbytes() for e in entries):
        raise bad(7)
    values, pos = [], HEADER.size
    for i, e in enumerate(entries):
        if ENTRY.unpack_from(blob, pos) != (e.tensor, e.dtype, e.kind, e.channels, e.count):
            raise bad(7, i)
        scales = np.frombuffer(blob, "<u4", e.channels, pos + ENTRY.size)
        wrong = np.flatnonzero(scales != e.scales.view("<u4"))
        if wrong.size:
            raise bad(8, i, int(wrong[0]))
        dt = np.dtype(fmt.DTYPES[e.dtype]).newbyteorder("<")
        v = np.frombuffer(blob, dt, e.count, pos + ENTRY.size + 4 * e.channels).astype(fmt.DTYPES[e.dtype])
        out = np.flatnonzero(np.abs(v.astype(np.int64)) > LIMITS[e.dtype])
        if out.size:
            raise bad(9, i, int(out[0]))
        values.append(v)
        pos += e.nbytes()
    if n != len(entries):
        raise bad(7, len(entries))
    return values


def core_blob_error(code, is_blob, index, a, b, own_id):
    """The exception the binding raises for the core's refusal of a blob (host_tools.ccore)."""
    if not is_blob:
        return BlobError(f"the C core refuses to load an update blob (error {code})")
    return BlobError(PROBLEMS[a].format(index=index, b=b & 0xFFFFFFFF, own=own_id))
