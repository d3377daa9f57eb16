"""Flat model format v1 (`.mct`): writer and validating reader. Specified in docs/format.md."""
import json
import struct
import zlib
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from host_tools import atomic
from host_tools.model import graph as g
from host_tools.errors import UserError
from host_tools.memory import patch as patching
from host_tools.model.numerics import flags_problem, train_flags
from host_tools.memory.arena import IN_PLACE, NO_GRAD, make_plan
from host_tools.model.quant import ADD_LEFT_SHIFT, add_params, quantize_multiplier

MAGIC = b"MCTR"
VERSION = 3          # 3: activations channels last; 2: int32 logits after the output (docs/format.md)
HEADER_SIZE = 64
TENSOR_ENTRY = 16
ACT_ENTRY = 24
OP_ENTRY = 64
DATA_ALIGN = 16
NONE16 = 0xFFFF

DT_INT8, DT_INT32, DT_FLOAT32 = 1, 2, 3
DTYPES = {DT_INT8: np.int8, DT_INT32: np.int32, DT_FLOAT32: np.float32}
TF_TRAINABLE = 1
OF_PATCH = 1            # op flags: runs in the patch-based first stage
OF_FUSED = 2            # op flags: the head of a block whose backward runs fused (blocks.fused_blocks)
OF_ROWS_FIRST = 4       # op flags: the first op of a row-streamed frozen block (blocks.row_blocks)
OF_ROWS = 8             # op flags: its other ops
OF_IN_PLACE = 16        # op flags: a depthwise conv writing its output over its input (blocks.in_place_forward_ops)
OF_RECOMPUTE = 32       # op flags, with OF_FUSED: the expansion's clamp mask is recomputed (blocks.recompute_heads)

HEADER = struct.Struct("<4sHHII HHHHHH III I f hH I II")
TENSOR = struct.Struct("<IIBBHI")
ACT = struct.Struct("<HHHHIIII")
OP = struct.Struct("<BBHHH hhhbb HHHHH BBBBBB HH fff iii bbbB")
assert HEADER.size == HEADER_SIZE and TENSOR.size == TENSOR_ENTRY
assert ACT.size == ACT_ENTRY and OP.size == OP_ENTRY


class FormatError(UserError):
    pass


# ---------------------------------------------------------------------------------------------
# writer

def trained_params(graph) -> dict:
    """op index -> {'weight', 'bias'}: the classifier, the biases of the last N conv layers and the
    weights of the scheme's conv layers."""
    out = {}
    convs = [i for i, op in enumerate(graph.ops) if op.kind == g.CONV2D]
    n = graph.n_bias_update
    if n < 0 or n > len(convs):
        raise UserError(f"n_bias_update={n} but the model has {len(convs)} conv layers")
    for i in convs[len(convs) - n:] if n else []:
        out.setdefault(i, set()).add("bias")
    for idx in trained_weight_rows(graph):
        out.setdefault(idx, set()).add("weight")
    if graph.train_classifier:
        if graph.classifier() is None:
            raise UserError("train_classifier is set but the model does not end in a fully connected layer")
        out.setdefault(len(graph.ops) - 1, set()).update({"weight", "bias"})
    return out


def trained_weight_rows(graph) -> dict:
    """op index -> number of leading output channels whose weights are trained."""
    convs = [i for i, op in enumerate(graph.ops) if op.kind == g.CONV2D]
    rows = {}
    for idx, ratio in graph.weight_update.items():
        if not 0 <= idx < len(convs):
            raise UserError(f"weight update of conv layer {idx}, but the model has {len(convs)} conv layers (0..{len(convs) - 1})")
        if not 0 <= ratio <= 1:
            raise UserError(f"weight update ratio {ratio} of conv layer {idx} is not between 0 and 1")
        o = graph.ops[convs[idx]].weight.shape[0]
        if ratio > 0:
            rows[convs[idx]] = max(1, int(o * ratio))
    if graph.train_classifier and graph.classifier() is not None:
        rows[len(graph.ops) - 1] = graph.classifier().weight.shape[0]
    return rows


def softmax_exp_table(y_scale: float) -> np.ndarray:
    """exp(-y_scale * d) for d = 0..255: softmax of int8 logits without an exp on the device."""
    return np.exp(-float(y_scale) * np.arange(256, dtype=np.float64)).astype(np.float32)


def requantization(op) -> dict:
    """The multipliers of a two-input op's record (am*, as*, als): the add's three (TF-Lite's scheme);
    a concatenation's two, each input to the output, (x - zero) << 20 times in_scale / out_scale / 2^20
    (the left shift keeps the first rounding below the output's step), with a 1x1 window for the patch
    stage (it is per pixel); a gate multiply's one, of the product (TF-Lite's MUL)."""
    if op.kind == g.ADD:
        (am0, as0), (am1, as1), (amo, aso) = add_params(op.a_scale, op.b_scale, op.y_scale)
        return dict(am0=am0, am1=am1, amo=amo, as0=as0, as1=as1, aso=aso, als=ADD_LEFT_SHIFT)
    if op.kind == g.CONCAT:
        (am0, as0), (am1, as1) = (quantize_multiplier(s / op.y_scale / (1 << ADD_LEFT_SHIFT))
                                  for s in (op.a_scale, op.b_scale))
        return dict(am0=am0, am1=am1, as0=as0, as1=as1, als=ADD_LEFT_SHIFT, kh=1, kw=1, sh=1, sw=1)
    am0, as0 = quantize_multiplier(op.a_scale * op.b_scale / op.y_scale)
    return dict(am0=am0, as0=as0)


def to_bytes(graph) -> bytes:
    _check_graph(graph)
    trained = trained_params(graph)
    rows = trained_weight_rows(graph)
    plan = make_plan(graph, trained)
    names = list(graph.shapes)
    act_index = {name: i for i, name in enumerate(names)}
    tensors: List[tuple] = []          # (array, dtype code, flags, trained elements)

    def add_tensor(arr, code, flags=0, n_trained=None):
        arr = np.ascontiguousarray(arr, dtype=DTYPES[code])
        tensors.append((arr, code, flags, (arr.size if n_trained is None else n_trained) if flags else 0))
        return len(tensors) - 1

    op_records = []
    for i, op in enumerate(graph.ops):
        tr = trained.get(i, set())
        rec = dict(type=op.kind, in0=act_index[op.input], in1=NONE16, out=act_index[op.output],
                   in0_zero=0, in1_zero=0, out_zero=0, act_min=-128, act_max=127,
                   weight=NONE16, bias=NONE16, mult=NONE16, shift=NONE16, wscale=NONE16,
                   kh=0, kw=0, sh=0, sw=0, ph=0, pw=0, groups=0,
                   in0_scale=0.0, in1_scale=0.0, out_scale=0.0,
                   am0=0, am1=0, amo=0, as0=0, as1=0, aso=0, als=0)
        if op.kind in (g.CONV2D, g.FC):
            w_scales = np.asarray(op.w_scales, dtype=np.float64)
            mults, shifts = zip(*(quantize_multiplier(op.x_scale * ws / op.y_scale) for ws in w_scales))
            weight = np.asarray(op.weight, dtype=np.int8)
            rec.update(in0_zero=op.x_zero, out_zero=op.y_zero, act_min=op.act_min, act_max=op.act_max,
                       in0_scale=op.x_scale, out_scale=op.y_scale,
                       weight=add_tensor(weight, DT_INT8, TF_TRAINABLE if "weight" in tr else 0,
                                         rows.get(i, 0) * (weight.size // weight.shape[0])),
                       bias=add_tensor(op.bias, DT_INT32, TF_TRAINABLE if "bias" in tr else 0),
                       mult=add_tensor(np.array(mults), DT_INT32),
                       shift=add_tensor(np.array(shifts), DT_INT32),
                       wscale=add_tensor(op.w_scales, DT_FLOAT32))
            if op.kind == g.CONV2D:
                o, ipg, kh, kw = weight.shape
                rec.update(kh=kh, kw=kw, sh=op.stride[0], sw=op.stride[1],
                           ph=op.padding[0], pw=op.padding[1], groups=op.groups)
        elif op.kind in (g.ADD, g.CONCAT, g.MUL):
            rec.update(in1=act_index[op.input2], in0_zero=op.a_zero, in1_zero=op.b_zero, out_zero=op.y_zero,
                       in0_scale=op.a_scale, in1_scale=op.b_scale, out_scale=op.y_scale,
                       act_min=getattr(op, "act_min", -128), act_max=getattr(op, "act_max", 127),
                       **requantization(op))
        elif op.kind == g.AVGPOOL:
            rec.update(in0_zero=op.zero, out_zero=op.zero, in0_scale=op.scale, out_scale=op.scale)
        elif op.kind in (g.MAXPOOL2D, g.AVGPOOL2D):
            rec.update(in0_zero=op.zero, out_zero=op.zero, in0_scale=op.scale, out_scale=op.scale,
                       kh=op.kernel[0], kw=op.kernel[1], sh=op.stride[0], sw=op.stride[1],
                       ph=op.padding[0], pw=op.padding[1])
        elif op.kind == g.LUT:
            # elementwise: a 1x1 window, so the patch stage's window arithmetic needs nothing else
            rec.update(in0_zero=op.x_zero, out_zero=op.y_zero, in0_scale=op.x_scale, out_scale=op.y_scale,
                       weight=add_tensor(op.table, DT_INT8), wscale=add_tensor(op.deriv, DT_FLOAT32),
                       kh=1, kw=1, sh=1, sw=1)
        op_records.append(rec)

    out_scale, _ = graph.op_output_scale(graph.ops[-1])
    exp_table = add_tensor(softmax_exp_table(out_scale), DT_FLOAT32)

    tensor_off = HEADER_SIZE
    act_off = tensor_off + TENSOR_ENTRY * len(tensors)
    op_off = act_off + ACT_ENTRY * len(names)
    pos = _align(op_off + OP_ENTRY * len(op_records), DATA_ALIGN)
    body_tensors, data_offsets = [], []
    for arr, code, flags, _ in tensors:
        data_offsets.append(pos)
        pos = _align(pos + arr.nbytes, DATA_ALIGN)
    # metadata for the host (layer names, where the model came from); the device ignores it
    info = dict(graph.meta)
    if getattr(graph, "input_buffer", "caller") in ("model", "rows"):
        info["input_buffer"] = graph.input_buffer   # for host_tools plan's rewrite (scheme.structure)
    if plan.stage:
        st = plan.stage
        info["patch"] = {"ops": st.ops, "grid": [st.rows, st.cols],
                         "stage_macs_whole": patching.stage_macs(graph, None, st.ops),
                         "stage_macs_patched": patching.stage_macs(graph, st, st.ops)}
    meta = json.dumps({"ops": [op.name for op in graph.ops], **info}, sort_keys=True).encode()
    meta_off = pos
    file_size = _align(pos + len(meta), DATA_ALIGN)

    out = bytearray(file_size)
    for (arr, code, flags, n_trained), off in zip(tensors, data_offsets):
        TENSOR.pack_into(out, tensor_off + TENSOR_ENTRY * len(body_tensors), off, arr.size, code, flags, 0,
                         n_trained)
        out[off:off + arr.nbytes] = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        body_tensors.append(off)
    for i, name in enumerate(names):
        c, h, w = graph.shapes[name]
        ACT.pack_into(out, act_off + ACT_ENTRY * i, c, h, w, 0, plan.act_offset[name],
                      plan.grad_offset.get(name, NO_GRAD), plan.mask_offset.get(name, NO_GRAD),
                      plan.capacity.get(name, 0))
    for i, r in enumerate(op_records):
        OP.pack_into(out, op_off + OP_ENTRY * i, r["type"], op_flags(plan, i),
                     r["in0"], r["in1"], r["out"],
                     r["in0_zero"], r["in1_zero"], r["out_zero"], r["act_min"], r["act_max"],
                     r["weight"], r["bias"], r["mult"], r["shift"], r["wscale"],
                     r["kh"], r["kw"], r["sh"], r["sw"], r["ph"], r["pw"], r["groups"], 0,
                     r["in0_scale"], r["in1_scale"], r["out_scale"],
                     r["am0"], r["am1"], r["amo"], r["as0"], r["as1"], r["aso"], r["als"])
    HEADER.pack_into(out, 0, MAGIC, VERSION, HEADER_SIZE, file_size, 0,
                     len(tensors), len(names), len(op_records),
                     act_index[graph.input], act_index[graph.output], exp_table,
                     tensor_off, act_off, op_off, plan.arena_size,
                     graph.input_scale, graph.input_zero,
                     ((plan.stage.grid_byte << 8) if plan.stage else 0) |
                     train_flags(getattr(graph, "update_rule", "master"), getattr(graph, "backward", "float")),
                     plan.saved_bytes, meta_off, len(meta))
    out[meta_off:meta_off + len(meta)] = meta
    struct.pack_into("<I", out, 12, zlib.crc32(out[16:]) & 0xFFFFFFFF)
    return bytes(out)


def op_flags(plan, k) -> int:
    """Op entry byte 1: in the patch-based stage, in a row-streamed block, the head of a block with a
    fused backward (recomputing its expansion's clamp mask or not), or a depthwise conv writing its
    output over its input."""
    if plan.stage is not None and k < plan.stage.ops:
        return OF_PATCH
    for first, last in plan.rows:
        if first <= k <= last:
            return OF_ROWS_FIRST if k == first else OF_ROWS
    if k in plan.fused:
        return OF_FUSED | (OF_RECOMPUTE if k in plan.recompute else 0)
    return OF_IN_PLACE if k in plan.in_place else 0


def write(graph, path):
    """Write atomically: a crash or a bad model never leaves a half-written file at `path`."""
    write_bytes(to_bytes(graph), path)


def write_bytes(data: bytes, path):
    atomic.write_bytes(data, path)


def _align(n, a):
    return (n + a - 1) // a * a


def _check_graph(graph):
    if not graph.ops:
        raise UserError("the model has no layers")
    if len(graph.ops) > 1024 or len(graph.shapes) > 1024:
        raise UserError("the model has more than 1024 layers or activations")
    for name, (c, h, w) in graph.shapes.items():
        if min(c, h, w) < 1 or max(c, h, w) > 0xFFFF:
            raise UserError(f"activation {name} has shape {(c, h, w)}, each dimension must be 1..65535")
    if graph.input_scale <= 0:
        raise UserError("the input scale must be positive")


# ---------------------------------------------------------------------------------------------
# reader (host side; the C core has its own validating reader in c_src/mct_model.c)

@dataclass
class Op:
    type: int
    in0: int
    in1: Optional[int]
    out: int
    in0_zero: int
    in1_zero: int
    out_zero: int
    act_min: int
    act_max: int
    weight: Optional[int]
    bias: Optional[int]
    mult: Optional[int]
    shift: Optional[int]
    wscale: Optional[int]
    kernel: tuple
    stride: tuple
    padding: tuple
    groups: int
    in0_scale: float
    in1_scale: float
    out_scale: float
    add_mult: tuple = ()
    add_shift: tuple = ()
    add_left_shift: int = 0
    flags: int = 0                      # OF_*: patch stage, row-streamed block, fused backward


@dataclass
class Model:
    data: bytes
    tensors: List[np.ndarray]           # views into data (copies where trained on the device)
    trainable: List[bool]
    trained_count: List[int]            # trained elements: a prefix (a weight's first output channels)
    tensor_offsets: List[int]
    acts: List[tuple]                   # (C, H, W, arena offset, grad offset or None)
    ops: List[Op]
    input: int
    output: int
    exp_table: int
    arena_size: int
    saved_bytes: int
    input_scale: float
    input_zero: int
    meta: dict = field(default_factory=dict)  # layer names ('ops') and what the converter recorded
    stage: Optional[patching.Stage] = None    # the patch-based first stage
    act_capacity: List[int] = field(default_factory=list)   # patch buffers' bytes (0: whole)
    train_flags: int = 0                # header byte 50: the update rule (host_tools.model.numerics)

    @property
    def input_shape(self):
        return self.acts[self.input][:3]

    @property
    def n_classes(self):
        c, h, w = self.acts[self.output][:3]
        return c * h * w

    def to_bytes(self) -> bytes:
        """The file with the current (trained) tensor values, CRC updated."""
        out = bytearray(self.data)
        for t, off, tr in zip(self.tensors, self.tensor_offsets, self.trainable):
            if tr:
                out[off:off + t.nbytes] = t.astype(t.dtype.newbyteorder("<")).tobytes()   # untrained part unchanged
        struct.pack_into("<I", out, 12, zlib.crc32(out[16:]) & 0xFFFFFFFF)
        return bytes(out)


def load(data: bytes) -> Model:
    data = bytes(data)
    if len(data) < HEADER_SIZE:
        raise FormatError(f"model file is truncated: {len(data)} bytes, the header alone is {HEADER_SIZE}")
    (magic, version, hsize, fsize, crc, n_t, n_a, n_o, inp, outp, exp_t, t_off, a_off, o_off,
     arena, in_scale, in_zero, flags, saved, meta_off, meta_len) = HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise FormatError(f"not an mcutrain model (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise FormatError(f"model format version {version} is not supported (expected {VERSION}): "
                          "convert the model again")
    if hsize != HEADER_SIZE or fsize != len(data):
        raise FormatError(f"model file size {len(data)} does not match its header ({fsize})")
    if zlib.crc32(data[16:]) & 0xFFFFFFFF != crc:
        raise FormatError("model file is corrupted: CRC32 mismatch")
    if flags_problem(flags & 0xFF):
        raise FormatError(f"model has {flags_problem(flags & 0xFF)}")

    def table(off, count, entry, what):
        if off < HEADER_SIZE or off + count * entry > len(data):
            raise FormatError(f"{what} table lies outside the file")

    table(t_off, n_t, TENSOR_ENTRY, "tensor")
    table(meta_off, meta_len, 1, "metadata") if meta_len else None
    table(a_off, n_a, ACT_ENTRY, "activation")
    table(o_off, n_o, OP_ENTRY, "op")
    tensors, trainable, offsets, counts = [], [], [], []
    for i in range(n_t):
        off, count, code, tflags, _, n_trained = TENSOR.unpack_from(data, t_off + TENSOR_ENTRY * i)
        if code not in DTYPES:
            raise FormatError(f"tensor {i} has unknown dtype {code}")
        dt = np.dtype(DTYPES[code]).newbyteorder("<")
        if off % DATA_ALIGN or off + count * dt.itemsize > len(data):
            raise FormatError(f"tensor {i} lies outside the file or is misaligned")
        tensors.append(np.frombuffer(data, dtype=dt, count=count, offset=off).astype(DTYPES[code]))
        trainable.append(bool(tflags & TF_TRAINABLE))
        counts.append(n_trained if tflags & TF_TRAINABLE else 0)
        if trainable[-1] and not 0 < n_trained <= count:
            raise FormatError(f"tensor {i} is trained on {n_trained} of its {count} elements")
        offsets.append(off)
    # a fused block's expanded activations (outputs of the two ops before a head) have a
    # one-channel gradient
    op_rows = [OP.unpack_from(data, o_off + OP_ENTRY * i) for i in range(n_o)]
    streamed = {op_rows[j][4] for k, f in enumerate(op_rows) if f[1] & OF_FUSED for j in (k - 2, k - 1) if j >= 0}
    acts, capacity = [], []
    for i in range(n_a):
        c, h, w, _, aoff, goff, moff, cap = ACT.unpack_from(data, a_off + ACT_ENTRY * i)
        size = c * h * w
        gsize = 4 * (h * w if i in streamed else size)
        in_place = i == inp and aoff == IN_PLACE                # read from the caller's buffer
        held = (size + 3) // 4 * 4 + 4 * size if i == outp else (cap or size)     # + the int32 logits
        if i == outp and aoff % 4:
            raise FormatError(f"the output activation {i} is not 4-aligned in the arena (its int32 logits follow it)")
        if (size == 0 or cap > size or (not in_place and aoff + held > arena)
                or (goff != NO_GRAD and goff + gsize > arena)
                or (moff != NO_GRAD and moff + (size + 7) // 8 > arena)):
            raise FormatError(f"activation {i} lies outside the arena")
        acts.append((c, h, w, aoff, None if goff == NO_GRAD else goff))
        capacity.append(cap)
    ops, stage_ops = [], 0
    for i, f in enumerate(op_rows):
        if f[1] & OF_PATCH:
            if stage_ops != i:
                raise FormatError(f"op {i} is in the patch-based stage but op {i - 1} is not")
            stage_ops += 1
        opt = lambda v: None if v == NONE16 else v  # noqa: E731
        ops.append(Op(type=f[0], in0=f[2], in1=opt(f[3]), out=f[4], in0_zero=f[5], in1_zero=f[6],
                      out_zero=f[7], act_min=f[8], act_max=f[9], weight=opt(f[10]), bias=opt(f[11]),
                      mult=opt(f[12]), shift=opt(f[13]), wscale=opt(f[14]), kernel=(f[15], f[16]),
                      stride=(f[17], f[18]), padding=(f[19], f[20]), groups=f[21],
                      in0_scale=f[23], in1_scale=f[24], out_scale=f[25],
                      add_mult=(f[26], f[27], f[28]), add_shift=(f[29], f[30], f[31]),
                      add_left_shift=f[32], flags=f[1]))
    try:
        meta = json.loads(data[meta_off:meta_off + meta_len]) if meta_len else {}
    except ValueError:
        raise FormatError("model metadata is not valid JSON") from None
    grid = flags >> 8
    stage = patching.Stage(stage_ops, grid >> 4, grid & 15) if grid and stage_ops else None
    if bool(grid) != bool(stage_ops):
        raise FormatError("the patch grid and the patch-based ops do not agree")
    return Model(data, tensors, trainable, counts, offsets, acts, ops, inp, outp, exp_t, arena, saved,
                 in_scale, in_zero, meta, stage, capacity, train_flags=flags & 0xFF)


def read(path) -> Model:
    try:
        with open(path, "rb") as f:
            return load(f.read())
    except OSError as e:
        raise UserError(f"cannot read model {path}: {e.strerror}") from None
