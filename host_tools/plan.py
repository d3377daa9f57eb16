"""Static memory plan of one training step: which tensors live when, and where in the arena.

Timeline of a step with n ops: forward op i runs at t = i, the loss at t = n, the backward of op i
at t = 2n - i. The model input is written at t = -1. A buffer lives over [first, last] inclusive;
two buffers may share arena bytes only when their lifetimes do not overlap.

Buffers:
- every activation (int8, C*H*W bytes), from its producer to its last reader. Readers in the
  backward extend it ("saved"): a trained layer's input is read by its weight update, a max pool's
  input by the max pool's backward.
- a 1-bit mask of each clamped output (conv, FC, add) that needs a gradient: where the clamp (ReLU,
  ReLU6, int8 saturation) let the gradient through; written by the forward, read by the backward.
- a float32 gradient for each activation that needs one (a trained tensor is at or before it),
  from the backward of its last consumer (where it is first written) to its producer's backward.
"""
from dataclasses import dataclass
from typing import Dict, List

from host_tools import graph as g

CLAMPED = (g.CONV2D, g.FC, g.ADD)          # ops whose backward reads their output as a clamp mask

ALIGN = 8
NO_GRAD = 0xFFFFFFFF


@dataclass
class Buffer:
    name: str
    size: int
    first: int
    last: int
    offset: int = -1


@dataclass
class Plan:
    act_offset: Dict[str, int]
    grad_offset: Dict[str, int]        # only activations that carry a gradient
    mask_offset: Dict[str, int]        # 1-bit clamp masks of the outputs of clamped ops that need one
    arena_size: int
    saved_bytes: int                   # what the forward keeps for the backward: masks, some inputs
    buffers: List[Buffer]


def _size(shape):
    c, h, w = shape
    return c * h * w


def place(buffers: List[Buffer]) -> int:
    """Greedy first-fit, largest first: each buffer at the lowest offset free over its lifetime."""
    placed: List[Buffer] = []
    for buf in sorted(buffers, key=lambda b: (-b.size, b.first, b.name)):
        conflicts = sorted((p for p in placed if p.first <= buf.last and buf.first <= p.last),
                           key=lambda p: p.offset)
        offset = 0
        for p in conflicts:
            if offset + buf.size <= p.offset:
                break
            offset = max(offset, _align(p.offset + p.size))
        buf.offset = offset
        placed.append(buf)
    return max((_align(b.offset + b.size) for b in placed), default=0)


def _align(n):
    return (n + ALIGN - 1) // ALIGN * ALIGN


def grad_acts(graph, trainable_ops) -> set:
    """Activations that need a gradient: those with a trained tensor at or upstream of them."""
    needs = set()
    for i, op in enumerate(graph.ops):
        ins = [op.input] + ([op.input2] if hasattr(op, "input2") else [])
        if i in trainable_ops or any(a in needs for a in ins):
            needs.add(op.output)
    return needs


def make_plan(graph, trainable_ops: Dict[int, set]) -> Plan:
    """trainable_ops: op index -> set of trained parameter names ('weight', 'bias')."""
    n = len(graph.ops)
    t_loss = n
    producer = {graph.input: -1}
    consumers: Dict[str, List[int]] = {name: [] for name in graph.shapes}
    for i, op in enumerate(graph.ops):
        producer[op.output] = i
        for a in [op.input] + ([op.input2] if hasattr(op, "input2") else []):
            consumers[a].append(i)
    training = bool(trainable_ops)
    needs_grad = grad_acts(graph, trainable_ops) if training else set()

    def t_bwd(i):
        return 2 * n - i

    buffers, saved = [], 0
    for name, shape in graph.shapes.items():
        first = producer[name]
        last = max(consumers[name], default=first)
        if name == graph.output:
            last = max(last, t_loss)
        end_fwd = last
        if name in needs_grad and graph.ops[producer[name]].kind in CLAMPED:
            # the clamp mask of its producer: one bit per element, from the forward to the backward
            size = (_size(shape) + 7) // 8
            buffers.append(Buffer("mask:" + name, size, producer[name], t_bwd(producer[name])))
            saved += size
        for c in consumers[name]:
            op = graph.ops[c]
            if "weight" in trainable_ops.get(c, ()) and op.input == name:
                last = max(last, t_bwd(c))                     # weight gradient needs the input
            if op.kind == g.MAXPOOL2D and op.output in needs_grad:
                last = max(last, t_bwd(c))                     # where each window's max was
        if last > end_fwd and last > t_loss:
            saved += _size(shape)
        buffers.append(Buffer("act:" + name, _size(shape), first, last))
    for name in needs_grad:
        first = t_loss if name == graph.output else t_bwd(max(consumers[name]))
        buffers.append(Buffer("grad:" + name, 4 * _size(graph.shapes[name]), first,
                              t_bwd(producer[name])))
    arena = place(buffers)
    act_offset = {b.name[4:]: b.offset for b in buffers if b.name.startswith("act:")}
    mask_offset = {b.name[5:]: b.offset for b in buffers if b.name.startswith("mask:")}
    grad_offset = {b.name[5:]: b.offset for b in buffers if b.name.startswith("grad:")}
    return Plan(act_offset, grad_offset, mask_offset, arena, saved, buffers)
