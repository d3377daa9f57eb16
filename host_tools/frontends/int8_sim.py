"""The device's int8 forward of a Graph on many images at once: what `host_tools convert` runs for its
report (per-layer SQNR, top-1). Every activation and the unclamped logits are bit for bit those of
the numpy reference (host_tools/reference/) and the C core, computed in batches of PyTorch tensors
(N, C, H, W) of float32 integers.

How it stays exact and fast:
- An activation is kept centered, q - zero (in [-255, 255]): a conv's zero padding is then the
  device's padding with the zero point, and no pass subtracts the input's zero.
- A conv or FC sums in float32 when every partial sum is an integer below 2^24 (a bound from its
  weights, biases and input range): exact in any order. Otherwise float64 (exact below 2^53).
- The requantization (quant.multiply_by_quantized_multiplier: round(acc * M / 2^(31 + r)), ties up,
  then ties away from zero) equals sign(acc) * floor(|acc| * m + c) with m = M / 2^(31 + r) and
  c = 1/2 + 2^-(r+1) (1/2 when r = 0), but for a 2^-31 nudge on negative exact ties. float32 gets
  |acc| * m + c within 2^-12 when it is below 2^10 (larger values clamp anyway); the few values
  whose fraction is within 2^-12 of an integer are recomputed in int64 with quant's own function.
- A residual add is a 256 x 256 table of the reference's add_z, built once per add; an activation
  table (Lut) is looked up as on the device.
- Pools are exact integer arithmetic in float32; the last op's unclamped logits (what predict and the
  loss read) come from its exact accumulators in int64.
"""
import ctypes
import gc
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from host_tools.errors import UserError
from host_tools.frontends.progress import progress
from host_tools.model.graph import (Add, AvgPool2d, Concat, Conv2d, FullyConnected, GlobalAvgPool, Graph, Lut,
                                    MaxPool2d, Mul)
from host_tools.model.quant import multiply_by_quantized_multiplier, quantize_multiplier, round_half_even_div
from host_tools.reference.kernels import add_z

NEAR = 2.0 ** -13           # float32 requantizations this close to an integer are redone in int64
BLOCK = 256                 # elements per block of the search for them
CHUNK = 1 << 18             # output elements a conv computes and requantizes at once: cache-sized
BATCH_ELEMENTS = 1 << 22    # elements of the largest activation in one batch (at most 256 images)
POOLED_BATCH_ELEMENTS = 1 << 23     # the same where only the logits are kept (a few shared buffers)
C_BLOCK = 256              # outputs the C core estimates at once (whole pixels)
FLOAT32_EXACT = 1 << 24     # float32 holds every integer below this
FEW_INPUTS = 4              # convs on this many input channels or fewer run in C (PyTorch's are slow on them)


@dataclass
class _Weighted:
    """A conv's or FC's tensors as exact float tensors, and its requantization."""
    weight: torch.Tensor        # float32 integers (float64 when the sums may pass 2^24)
    bias: torch.Tensor          # in the sum: the bias, or its low part when it is not exact in float32
    bias_high: Optional[torch.Tensor]   # [O] the rest of the bias (multiples of 128), added after the sum
    mult: np.ndarray            # int64 [O]: quant.quantize_multiplier's M and shift per channel
    shift: np.ndarray
    m: torch.Tensor             # float32 [O]: M * 2^(shift - 31)
    c: torch.Tensor             # float32 [O]: the rounding constant 1/2 + 2^-(r+1), + NEAR
    lo: int                     # the clamp, centered: act_min - y_zero, act_max - y_zero
    hi: int
    mat: Optional[torch.Tensor]     # [K, O]: the weight as a matrix (FCs and 1x1 convs), else None

    def __post_init__(self):
        # what the C core reads: the float constants repeated over a block of whole pixels
        self.mult32, self.shift32 = self.mult.astype(np.int32), self.shift.astype(np.int32)
        reps = max(1, C_BLOCK // len(self.mult))
        high = np.zeros(len(self.mult), np.float32) if self.bias_high is None else self.bias_high.numpy()
        self.block = reps * len(self.mult)
        self.c_consts = [np.tile(v, reps) for v in (self.m.numpy(), self.c.numpy(), high)]
        self.c_args = tuple(ctypes.c_void_p(a.ctypes.data) for a in [self.mult32, self.shift32] + self.c_consts) + \
            (self.block, NEAR, self.lo, self.hi)


def _weighted(op) -> _Weighted:
    """The op's float tensors. Its sums stay exact in float32 when every partial sum stays below
    2^24; a bias beyond that is split into a low part summed exactly and a high part added once
    (one rounding: the requantization's error bound holds). Otherwise float64 (exact below 2^53)."""
    w = np.abs(op.weight.astype(np.int64)).reshape(op.weight.shape[0], -1).sum(axis=1)
    x_max = max(abs(-128 - op.x_zero), abs(127 - op.x_zero))
    bias = op.bias.astype(np.int64)
    sums = int((w * x_max).max())
    if sums + int(np.abs(bias).max()) < FLOAT32_EXACT:
        dt, low, high = torch.float32, bias, None
    elif sums + 128 < FLOAT32_EXACT:
        dt, low, high = torch.float32, bias & 127, torch.from_numpy((bias - (bias & 127)).astype(np.float32))
    else:
        dt, low, high = torch.float64, bias, None
    mult, shift = (np.array(v, dtype=np.int64) for v in zip(*(
        quantize_multiplier(op.x_scale * float(ws) / op.y_scale) for ws in np.asarray(op.w_scales, np.float64))))
    r = np.maximum(-shift, 0)
    m = mult.astype(np.float64) * np.exp2(shift.astype(np.float64) - 31)
    c = 0.5 + np.where(r > 0, np.exp2(-(r + 1.0)), 0.0) + NEAR
    f32 = lambda v: torch.from_numpy(v.astype(np.float32))     # noqa: E731
    weight = torch.from_numpy(op.weight.astype(np.float64)).to(dt)
    pointwise = isinstance(op, FullyConnected) or (
        op.weight.shape[2:] == (1, 1) and tuple(op.stride) == (1, 1) and tuple(op.padding) == (0, 0) and op.groups == 1)
    mat = weight.reshape(len(weight), -1).T.contiguous() if pointwise else None
    return _Weighted(weight, torch.from_numpy(low.astype(np.float64)).to(dt), high, mult, shift, f32(m), f32(c),
                     op.act_min - op.y_zero, op.act_max - op.y_zero, mat)


def requantize(s: torch.Tensor, p: _Weighted, z: torch.Tensor):
    """z = clamp(mbqm(acc), lo, hi) of the exact sums s (float32, channels last: [..., O]), acc = s +
    bias_high: the op's centered int8 output (z: a contiguous tensor of the same shape).

    mbqm(acc) = sign(acc) * floor(|acc| * m + 1/2 + 2^-(r+1)) (1/2 when r = 0) but for a 2^-31 nudge
    on negative exact ties (the two roundings of quant.multiply_by_quantized_multiplier composed).
    float32 gets u = |acc| * m + c within 4 * 2^-24 * u + 2^-25 < NEAR while u < 258 (beyond, the
    output clamps anyway); c includes NEAR, so floor(u) is exact wherever frac(u) >= 2 * NEAR. The
    others, about one in 4,000, are recomputed in int64."""
    acc = s if p.bias_high is None else s + p.bias_high
    u = acc.abs().mul_(p.m).add_(p.c)
    torch.floor(u, out=z)
    frac = u.sub_(z).view(-1)
    z.copysign_(acc).clamp_(p.lo, p.hi)
    near = _near(frac)
    if len(near):
        ch = near % s.shape[-1]
        exact = s.view(-1)[near].numpy().astype(np.int64)
        if p.bias_high is not None:
            exact += p.bias_high.numpy()[ch].astype(np.int64)
        exact = multiply_by_quantized_multiplier(exact, p.mult[ch], p.shift[ch])
        z.view(-1)[near] = torch.from_numpy(np.clip(exact, p.lo, p.hi).astype(np.float32))


def _near(frac: torch.Tensor) -> torch.Tensor:
    """Flat indices where frac < 2 * NEAR: the minimum of each block first, the elements of the few
    blocks that have one next (a boolean test of every element would cost more than the rest)."""
    n = len(frac) // BLOCK * BLOCK
    blocks = frac[:n].view(-1, BLOCK)
    hit = (blocks.amin(dim=1) < 2 * NEAR).nonzero()[:, 0]
    inside = (blocks[hit] < 2 * NEAR).nonzero()
    near = hit[inside[:, 0]] * BLOCK + inside[:, 1]
    tail = (frac[n:] < 2 * NEAR).nonzero()[:, 0] + n
    return torch.cat([near, tail]) if len(tail) else near


def _exact_z(s: torch.Tensor, p: _Weighted) -> np.ndarray:
    """mbqm of every accumulator (channels last: [..., O]), int64: the logits, and float64 sums."""
    acc = s.numpy().astype(np.int64)
    if p.bias_high is not None:
        acc += p.bias_high.numpy().astype(np.int64)
    return multiply_by_quantized_multiplier(acc, p.mult, p.shift)


class _AddFields:
    """The fields of a loaded model's two-input op (add, concatenation, gate multiply) that the
    reference's kernels read."""

    def __init__(self, op):
        from host_tools.model.mct_format import requantization
        r = requantization(op)
        self.in0_zero, self.in1_zero, self.out_zero = op.a_zero, op.b_zero, op.y_zero
        self.add_left_shift = r.get("als", 0)
        self.add_mult = tuple(r.get(k, 0) for k in ("am0", "am1", "amo"))
        self.add_shift = tuple(r.get(k, 0) for k in ("as0", "as1", "aso"))


def _add_table(op) -> torch.Tensor:
    """float32 [256 * 256]: the add's centered output for the raw inputs a, b at (a + 128) * 256 + b + 128
    (a column and a row: add_z rescales each input's 256 values once, broadcasts their sum)."""
    a, b = np.arange(-128, 128).reshape(256, 1), np.arange(-128, 128).reshape(1, 256)
    z = np.clip(add_z(a, b, _AddFields(op)), op.act_min - op.y_zero, op.act_max - op.y_zero)
    return torch.from_numpy(z.reshape(-1).astype(np.float32))


def _concat_tables(op) -> Tuple[torch.Tensor, torch.Tensor]:
    """float32 [256] per input: the concatenation's centered output for the raw input q at q + 128."""
    from host_tools.reference.concat import concat_s8
    q = np.arange(-128, 128).reshape(256, 1, 1)
    y = concat_s8(q, q, _AddFields(op)).astype(np.float32).reshape(-1) - op.y_zero
    return torch.from_numpy(y[:256].copy()), torch.from_numpy(y[256:].copy())


def _mul_tables(op) -> Tuple[torch.Tensor, np.ndarray]:
    """The gate multiply's centered output (float32) and unclamped product (int64), each [256 * 256],
    for the raw map value a and gate value b at (a + 128) * 256 + b + 128."""
    a, b = np.meshgrid(np.arange(-128, 128), np.arange(-128, 128), indexing="ij")
    f = _AddFields(op)
    z = multiply_by_quantized_multiplier((a - f.in0_zero) * (b - f.in1_zero), f.add_mult[0], f.add_shift[0])
    y = np.clip(z, op.act_min - op.y_zero, op.act_max - op.y_zero)
    return torch.from_numpy(y.reshape(-1).astype(np.float32)), z.reshape(-1)


_C_FUNCTIONS = {}
_REQUANT_ARGS = [ctypes.c_void_p] * 5 + [ctypes.c_size_t, ctypes.c_float, ctypes.c_int32, ctypes.c_int32]


def _c_function(name, argtypes):
    """A function of the host library through ctypes, or None where it cannot be built (no C compiler,
    no c_src/): then PyTorch does the same, slower."""
    if name not in _C_FUNCTIONS:
        try:
            from host_tools.ccore.core import CoreModel
            fn = getattr(CoreModel.lib(), name)
        except (UserError, OSError):
            fn = None
        else:
            fn.argtypes = argtypes
        _C_FUNCTIONS[name] = fn
    return _C_FUNCTIONS[name]


def c_requant():
    """The requantization of host_tools/ccore/requant.c, or None without a C compiler."""
    P = ctypes.c_void_p
    return _c_function("h_requant_f32", [P, P, ctypes.c_size_t, ctypes.c_uint32] + _REQUANT_ARGS)


def c_conv_rows():
    """The requantized convs of host_tools/ccore/conv_rows.c, or None without a C compiler."""
    P = ctypes.c_void_p
    return _c_function("h_conv_rows_f32", [P, P, ctypes.c_uint32, P, P, P, P] + _REQUANT_ARGS)


def _row_conv(op, in_shape) -> Optional[Tuple[torch.Tensor, np.ndarray]]:
    """The weight and geometry of h_conv_rows_f32 for a depthwise conv ([KH, KW, C]) or a conv on at
    most FEW_INPUTS channels ([KH, KW, CIN, C]); None for other convs."""
    c, h, w = in_shape
    o, _, kh, kw = op.weight.shape
    if op.groups == c and o == c:
        weight, cin = op.weight[:, 0].transpose(1, 2, 0), 0
    elif op.groups == 1 and c <= FEW_INPUTS:
        weight, cin = op.weight.transpose(2, 3, 1, 0), c
    else:
        return None
    oh, ow = ((n + 2 * p - k) // s + 1 for n, p, k, s in zip((h, w), op.padding, (kh, kw), op.stride))
    return (torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float32)),
            np.array([h, w, o, kh, kw, *op.stride, *op.padding, oh, ow, cin], np.int32))


def _c_requantize(fn, acc: torch.Tensor, p: _Weighted, out: torch.Tensor):
    """requantize with the C core (acc, out: contiguous float32, channels last)."""
    if fn(acc.data_ptr(), out.data_ptr(), acc.numel(), acc.shape[-1], *p.c_args):
        requantize(acc, p, out)     # more channels than the C core's block


def _sums(op, p: _Weighted, x: torch.Tensor) -> torch.Tensor:
    """The exact sums of a conv or FC on centered inputs x, channels last ([N, OH, OW, O] or [N, O])."""
    if isinstance(op, FullyConnected):
        return torch.addmm(p.bias, x.reshape(len(x), -1), p.weight.T)
    acc = F.conv2d(x, p.weight, p.bias, tuple(op.stride), tuple(op.padding), 1, op.groups)
    return acc.permute(0, 2, 3, 1).contiguous()     # a copy only where PyTorch chose channel-planar


@contextmanager
def _exact_float():
    """PyTorch's exact float convolutions: no NNPACK (Winograd, FFT), full float32 matmuls."""
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        with torch.backends.nnpack.flags(enabled=False), torch.no_grad():
            yield
    finally:
        torch.set_float32_matmul_precision(precision)


@contextmanager
def _no_cycle_collection():
    """Python's cycle collector paused: the simulation makes no cycles, but enough small objects per
    batch to set off full collections, which walk every object of PyTorch and the model."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Int8Simulation:
    """The device's forward of `graph`, prepared once (weights as float tensors, requantization
    constants, add tables), run on batches with `batches` or whole arrays with `run`."""

    def __init__(self, graph: Graph, use_c: bool = True):
        self.graph = graph
        self.c_requant = c_requant() if use_c else None
        self.c_conv_rows = c_conv_rows() if use_c else None
        self.params = {}        # by output: a module called twice makes two ops of one name
        self.row_convs = {}     # by output: the convs the C core runs (depthwise, few input channels)
        for op in graph.ops:
            if isinstance(op, (Conv2d, FullyConnected)):
                self.params[op.output] = _weighted(op)
                rc = _row_conv(op, graph.shapes[op.input]) if isinstance(op, Conv2d) and self.c_conv_rows else None
                if rc is not None and self.params[op.output].weight.dtype == torch.float32:
                    self.row_convs[op.output] = rc
            elif isinstance(op, Add):
                self.params[op.output] = _add_table(op)
            elif isinstance(op, Lut):      # centered output of the raw input x at x + 128
                self.params[op.output] = torch.from_numpy(op.table.astype(np.float32) - op.y_zero)
            elif isinstance(op, Concat):
                self.params[op.output] = _concat_tables(op)
            elif isinstance(op, Mul):
                self.params[op.output] = _mul_tables(op)
        self.zeros = {graph.input: graph.input_zero}
        for op in graph.ops:
            self.zeros[op.output] = graph.op_output_scale(op)[1]
        largest = max(int(np.prod(s)) for s in graph.shapes.values())
        self.batch = int(np.clip(BATCH_ELEMENTS // largest, 1, 256))
        self.pooled_batch = int(np.clip(POOLED_BATCH_ELEMENTS // largest, 1, 256))
        self.buffers = {}       # conv and FC outputs, reused from batch to batch (no fresh pages to fault in)
        # where only the logits are kept: the activations each op is the last to read, and conv and FC
        # outputs in a few buffers shared by shape, reused as soon as their activation is read for the last time
        last_read = {}
        for k, op in enumerate(graph.ops):
            for name in (op.input, getattr(op, "input2", None)):
                if name is not None:
                    last_read[name] = k
        self.dead_after = [[n for n, k2 in last_read.items() if k2 == k and n != graph.output] for k in range(len(graph.ops))]
        self.free, self.in_use = {}, {}
        self.scratch = torch.empty(0)   # the sums of a chunk of matrix rows, reused (stays in cache)

    def _input(self, acts, name, zero):
        """Activation `name` centered on `zero` (its own zero point unless a consumer reads another)."""
        x = acts[name]
        return x if self.zeros[name] == zero else x + float(self.zeros[name] - zero)

    def _requantize(self, acc, p, out):
        if self.c_requant is not None:
            _c_requantize(self.c_requant, acc, p, out)
        else:
            requantize(acc, p, out)

    def _requantized_chunks(self, op, p: _Weighted, x: torch.Tensor, y: torch.Tensor):
        """y (channels last) = the requantized outputs of a float32 conv or FC on x, a cache-sized chunk
        at a time: for FCs and 1x1 convs a matrix product on rows of pixels into one reused buffer
        (PyTorch's convolution takes its slow path on those for small batches), depthwise convs and
        convs on a few input channels in the C core, row by row, else PyTorch's conv on a few images."""
        if p.mat is not None:
            o = p.mat.shape[1]
            rows_x = x.reshape(len(x), -1) if isinstance(op, FullyConnected) else \
                x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])      # a view of channels-last x
            rows_y = y.view(-1, o)
            step = max(1, CHUNK // o)
            if self.scratch.numel() < step * o:
                self.scratch = torch.empty(step * o)
            for i in range(0, len(rows_x), step):
                part = rows_x[i:i + step]
                acc = torch.addmm(p.bias, part, p.mat, out=self.scratch[:len(part) * o].view(len(part), o))
                self._requantize(acc, p, rows_y[i:i + step])
        elif op.output in self.row_convs:     # the C core's, sums and requantization row by row
            weight, geometry = self.row_convs[op.output]
            x = x.contiguous(memory_format=torch.channels_last)
            if self.scratch.numel() < y[0, 0].numel():
                self.scratch = torch.empty(y[0, 0].numel())
            if self.c_conv_rows(x.data_ptr(), y.data_ptr(), len(x), geometry.ctypes.data, weight.data_ptr(),
                                p.bias.data_ptr(), self.scratch.data_ptr(), *p.c_args):
                del self.row_convs[op.output]       # more channels than its block: PyTorch's
                self._requantized_chunks(op, p, x, y)
        else:
            step = max(1, CHUNK // y[0].numel())
            for i in range(0, len(x), step):
                self._requantize(_sums(op, p, x[i:i + step]), p, y[i:i + step])

    def forward(self, x_int8: torch.Tensor, keep: bool = True) -> Tuple[Dict[str, torch.Tensor], np.ndarray]:
        """(every activation of a batch of int8 inputs [N, C, H, W], centered float32 (only the last op's
        without keep); the unclamped logits of the last op, int64 [N, size], what the device's predict reads)."""
        g = self.graph
        x = x_int8.to(torch.float32).sub_(float(g.input_zero))
        acts = {g.input: x.contiguous(memory_format=torch.channels_last)}
        z = None
        for k, op in enumerate(g.ops):
            last = op.output == g.output
            if isinstance(op, (Conv2d, FullyConnected)):
                p = self.params[op.output]
                xin = self._input(acts, op.input, op.x_zero).to(p.weight.dtype)
                if last or p.weight.dtype != torch.float32:
                    z = _exact_z(_sums(op, p, xin), p)
                    y = torch.from_numpy(np.clip(z, p.lo, p.hi).astype(np.float32))
                    z = np.moveaxis(z, -1, 1)
                else:
                    y = self._buffer(op, keep)[:len(xin)]
                    self._requantized_chunks(op, p, xin, y)
                y = y.view(len(y), -1, 1, 1) if isinstance(op, FullyConnected) else y.permute(0, 3, 1, 2)
            elif isinstance(op, Add):
                a = self._input(acts, op.input, op.a_zero)
                b = self._input(acts, op.input2, op.b_zero)
                idx = torch.add(b, a, alpha=256).add_(float((op.a_zero + 128) * 256 + op.b_zero + 128))
                y = self.params[op.output].take(idx.long())
                if last:
                    z = add_z(a.numpy().astype(np.int64) + op.a_zero, b.numpy().astype(np.int64) + op.b_zero,
                              _AddFields(op))
            elif isinstance(op, GlobalAvgPool):
                xin = self._input(acts, op.input, op.zero)
                n = xin.shape[2] * xin.shape[3]
                total = xin.sum(dim=(2, 3), keepdim=True).numpy().astype(np.int64) + n * op.zero
                y = torch.from_numpy((np.clip(round_half_even_div(total, n), -128, 127) - op.zero).astype(np.float32))
            elif isinstance(op, MaxPool2d):
                y = F.max_pool2d(self._input(acts, op.input, op.zero), op.kernel, op.stride, op.padding)
            elif isinstance(op, AvgPool2d):
                total = F.avg_pool2d(self._input(acts, op.input, op.zero), op.kernel, op.stride, op.padding,
                                     divisor_override=1)
                y = total.div_(op.kernel[0] * op.kernel[1]).round_()    # exact: ties are exact halves
            elif isinstance(op, Lut):
                y = self.params[op.output].take(self._input(acts, op.input, op.x_zero).add(op.x_zero + 128).long())
            elif isinstance(op, Concat):
                t0, t1 = self.params[op.output]
                y = torch.cat([t0.take(self._input(acts, op.input, op.a_zero).add(op.a_zero + 128).long()),
                               t1.take(self._input(acts, op.input2, op.b_zero).add(op.b_zero + 128).long())], 1)
            elif isinstance(op, Mul):
                table, zs = self.params[op.output]
                a = self._input(acts, op.input, op.a_zero).add(op.a_zero + 128)
                gate = self._input(acts, op.input2, op.b_zero).add(op.b_zero + 128)
                idx = a.mul(256).add(gate).long()
                y = table.take(idx)
                if last:
                    z = zs[idx.numpy()]
            else:
                raise TypeError(f"unknown op {type(op).__name__}")
            acts[op.output] = y
            if last and z is None:
                z = y.numpy().astype(np.int64)          # pools clamp nothing
            if not keep:
                for name in self.dead_after[k]:
                    del acts[name]
                    if name in self.in_use:
                        buf = self.in_use.pop(name)
                        self.free.setdefault(tuple(buf.shape), []).append(buf)
        return acts, z.reshape(len(x), -1)

    def _buffer(self, op, keep: bool) -> torch.Tensor:
        """The output buffer of a conv or FC, channels last: its own (keep), else a free one of its shape."""
        c, h, w = self.graph.shapes[op.output]
        shape = (self.batch if keep else self.pooled_batch,) + ((c,) if isinstance(op, FullyConnected) else (h, w, c))
        if keep:
            if op.output not in self.buffers:
                self.buffers[op.output] = torch.empty(shape)
            return self.buffers[op.output]
        free = self.free.get(shape)
        self.in_use[op.output] = free.pop() if free else torch.empty(shape)
        return self.in_use[op.output]

    def batches(self, x_int8: np.ndarray, desc: Optional[str] = None, keep: bool = True
                ) -> Iterator[Tuple[int, Dict[str, torch.Tensor], np.ndarray]]:
        """(first image, activations, logits) of each batch of x_int8 [N, C, H, W]; desc: a progress bar;
        keep: every activation, else only the last op's (smaller batches, buffers shared). The activations
        are valid until the next batch (their buffers are reused)."""
        bar = progress(len(x_int8), desc) if desc else None
        size = self.batch if keep else self.pooled_batch
        with _exact_float(), _no_cycle_collection():
            for i in range(0, len(x_int8), size):
                acts, z = self.forward(torch.from_numpy(np.asarray(x_int8[i:i + size], dtype=np.int8)), keep)
                yield i, acts, z
                if bar is not None:
                    bar.update(len(z))
        if bar is not None:
            bar.close()

    def run(self, x_int8: np.ndarray, keep_all: bool = False, desc: Optional[str] = None):
        """The unclamped logits int64 [N, size] of x_int8 [N, C, H, W]; with keep_all, also every
        activation as the device holds it: name -> int8 [N, C, H, W]."""
        logits, kept = [], {}
        for _, acts, z in self.batches(x_int8, desc, keep_all):
            logits.append(z)
            if keep_all:
                for name, t in acts.items():
                    kept.setdefault(name, []).append((t.numpy() + self.zeros[name]).astype(np.int8))
        logits = np.concatenate(logits) if logits else np.zeros((0, int(np.prod(self.graph.shapes[self.graph.output]))),
                                                                 dtype=np.int64)
        if not keep_all:
            return logits
        return logits, {name: np.concatenate(v) for name, v in kept.items()}

