"""Static memory plan of one training step: which tensors live when, and where in the arena.

Timeline of a step with n ops: forward op i runs at t = i, the loss at t = n, the backward of op i
at t = 2n - i. The model input is written at t = -1. A buffer lives over [first, last] inclusive;
two buffers may share arena bytes only when their lifetimes do not overlap.

Buffers:
- every activation (int8, C*H*W bytes), from its producer to its last reader; but the model input,
  when only the forward reads it, stays where the caller keeps it (IN_PLACE: a file in memory-mapped
  Flash, the caller's buffer), not copied into the arena; unless graph.input_buffer is "model": then
  it is at offset 0, for the caller to fill there (mcutrain's input_buffer(): a camera frame); or "rows":
  then it is a band of the rows one tile row of the patch-based stage reads (patch.band_bytes), which
  the device fills row by row as the stage moves down (c_src/mct_band.c). Readers in the
  backward extend it ("saved"): a trained layer's input is read by its weight update, a max pool's
  input by the max pool's backward, a lookup-table activation's input by its derivative table.
- a 1-bit mask of each clamped output (conv, FC, add) that needs a gradient: where the clamp (ReLU,
  ReLU6, int8 saturation) let the gradient through; written by the forward, read by the backward.
  Not for the model output: the loss and predict read its unclamped logits, K int32 values after its
  K int8 values in its buffer (logits_size), from the last op's forward to the loss.
- a float32 gradient for each activation that needs one (a trained tensor is at or before it),
  from the backward of its last consumer (where it is first written) to its producer's backward.

A residual add's input that only the add reads has its gradient in the add output's buffer (the
add's backward writes it in place, add_shared_grads). A depthwise conv of stride 1 whose input nothing
else reads nor the backward keeps writes its output over its input through a ring of ph + 1 output
rows (c_src/mct_dw_in_place.c), where that lowers the arena: one buffer of the input and the ring.

Inverted-residual blocks (pointwise, depthwise, pointwise, consecutive, each read only by the
next) whose expanded activations need a gradient run their backward fused, one expanded channel at a
time (c_src/mct_block_backward.c): the gradients of the two expanded tensors are one channel each,
alive only during the block's backward, instead of the whole expanded width in float32. Where the
block input is kept anyway (its first conv's weights are trained) and that lowers the arena, the
expansion keeps no clamp mask: the fused backward recomputes it from the block input (recompute_heads).

With a patch-based first stage (host_tools/memory/patch.py), ops 0..S-1 run once per tile: their outputs
but the last are patch buffers (the largest window of any tile), and the model input and the stage
output are whole and live through the whole stage. A patch buffer's lifetime within one tile is
the same as a whole tensor's in the whole-tensor forward, so the same placement holds for every tile.
After the stage, frozen inverted-residual blocks run row by row (row_blocks, c_src/mct_rows.c): the
expansion is a ring of k rows, the depthwise (and, with a residual add, the projection) output one
row, all of them and the block's input and output alive through the whole block.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from host_tools.model import graph as g
from host_tools.memory import patch as patching
from host_tools.memory.blocks import fused_blocks, in_place_forward_ops, inplace_ops, recompute_heads, row_blocks

CLAMPED = (g.CONV2D, g.FC, g.ADD, g.MUL)          # ops whose backward reads their output as a clamp mask

ALIGN = 8
NO_GRAD = 0xFFFFFFFF
IN_PLACE = 0xFFFFFFFF       # the model input's offset when the forward reads it from the caller's buffer


@dataclass
class Buffer:
    name: str
    size: int
    first: int
    last: int
    offset: int = -1
    fixed: bool = False     # placed at offset 0 (the model input of input_buffer(), see _make_plan)


@dataclass
class Plan:
    act_offset: Dict[str, int]
    grad_offset: Dict[str, int]        # only activations that carry a gradient
    mask_offset: Dict[str, int]        # 1-bit clamp masks of the outputs of clamped ops that need one
    arena_size: int
    saved_bytes: int                   # what the forward keeps for the backward: masks, some inputs
    buffers: List[Buffer]
    stage: Optional[patching.Stage] = None     # the patch-based first stage, if any
    capacity: Dict[str, int] = field(default_factory=dict)     # patch, ring and row buffers' bytes
    fused: List[int] = field(default_factory=list)     # heads (last op) of blocks with a fused backward
    rows: List[Tuple[int, int]] = field(default_factory=list)     # (first, last) op of row-streamed blocks
    in_place: List[int] = field(default_factory=list)     # depthwise convs writing their output over their input
    recompute: List[int] = field(default_factory=list)     # fused heads whose expansion's clamp mask is recomputed


def _size(shape):
    c, h, w = shape
    return c * h * w


# Orders in which first-fit places the buffers; place() keeps the one with the smallest arena.
ORDERS = (
    lambda b: (-b.size, b.first, b.name),                           # largest first
    lambda b: (-b.size * (b.last - b.first + 1), b.first, b.name),  # largest area of size x time
    lambda b: (-(b.last - b.first), -b.size, b.name),               # longest-lived first
    lambda b: (b.first, -b.size, b.name),                           # in order of birth
)


def place(buffers: List[Buffer], first_fit=None) -> int:
    """First-fit in several orders: each buffer at the lowest offset free over its lifetime. Sets
    the offsets of the best order and returns its arena size. first_fit(buffers, order) places them
    in one order and returns the arena size (default: whole buffers; bench/forward_alternatives.py
    gives one for buffers of several pieces)."""
    first_fit = first_fit or _place
    best = None
    for order in ORDERS:
        size = first_fit(buffers, order)
        if best is None or size < best[0]:
            best = (size, [b.offset for b in buffers])
    for b, off in zip(buffers, best[1]):
        b.offset = off
    return best[0]


def _place(buffers: List[Buffer], order) -> int:
    placed: List[Buffer] = [b for b in buffers if b.fixed]
    for buf in placed:
        buf.offset = 0
    for buf in sorted((b for b in buffers if not b.fixed), key=order):
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


def logits_size(k):
    """Bytes of the model output's buffer: its K int8 values, then (from the next multiple of 4) the
    K int32 logits before the clamp (docs/format.md)."""
    return (k + 3) // 4 * 4 + 4 * k


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


def add_shared_grads(graph, needs_grad, consumers, special) -> Dict[str, str]:
    """Inputs of residual adds whose float32 gradient shares the add output's buffer: an input that
    only the add reads, of the output's shape, gets the output's gradient as its own, written in
    place by the add's backward (c_src/mct_backward_add.c), whose output gradient is not read after
    it. Float32 backward only. special: activations whose gradient buffer is laid out otherwise (in
    place, one channel). Returns input -> the activation whose buffer it is (chains resolved).
    graph.shared_add_grads: True (default), False."""
    if getattr(graph, "backward", "float") != "float" or not getattr(graph, "shared_add_grads", True):
        return {}
    shared = {}
    for k, op in enumerate(graph.ops):
        if op.kind != g.ADD or op.output not in needs_grad or op.output in special or op.input == op.input2:
            continue
        for b in (op.input2, op.input):
            if (b in needs_grad and b not in special and b != graph.input and consumers[b] == [k]
                    and graph.shapes[b] == graph.shapes[op.output]):
                shared[b] = shared.get(op.output, op.output)
                break
    for b in shared:        # an add's output that is itself another add's shared input: one buffer
        while shared[b] in shared:
            shared[b] = shared[shared[b]]
    return shared


def make_plan(graph, trainable_ops: Dict[int, set], stage="graph") -> Plan:
    """trainable_ops: op index -> set of trained parameter names ('weight', 'bias'). stage: a
    patching.Stage, None (whole tensors), "auto" (the stage and grid that lower the peak most) or
    "graph": the graph's own choice (graph.patch)."""
    if stage == "graph":
        stage = graph.patch
    if stage is None and patching.rows_input(graph):
        from host_tools.errors import UserError
        raise UserError("--input-buffer rows feeds the input to a patch-based first stage: leave out --patch none")
    if stage == "auto":
        frozen = set(graph.shapes) - (grad_acts(graph, trainable_ops) if trainable_ops else set())
        stage = patching.choose(graph, lambda st: _make_plan(graph, trainable_ops, st).arena_size, frozen)
    elif stage is not None:
        patching.check(graph, stage, set(graph.shapes) - grad_acts(graph, trainable_ops))
    best = _make_plan(graph, trainable_ops, stage)
    # stream a block by rows only where that lowers the arena: a whole-tensor block is faster
    for block in list(best.rows) if getattr(graph, "row_blocks", True) != "all" else []:
        trial = _make_plan(graph, trainable_ops, stage, [r for r in best.rows if r != block])
        if trial.arena_size <= best.arena_size:
            best = trial
    # likewise a depthwise conv in place, one output row at a time through its ring
    for k in list(best.in_place) if getattr(graph, "in_place_forward", True) != "all" else []:
        trial = _make_plan(graph, trainable_ops, stage, best.rows, [j for j in best.in_place if j != k])
        if trial.arena_size <= best.arena_size:
            best = trial
    # and a fused block's expansion mask recomputed (more MACs in its backward)
    for k in list(best.recompute) if getattr(graph, "recompute_masks", True) != "all" else []:
        trial = _make_plan(graph, trainable_ops, stage, best.rows, best.in_place, [j for j in best.recompute if j != k])
        if trial.arena_size <= best.arena_size:
            best = trial
    return best


def make_whole_plan(graph, trainable_ops: Dict[int, set]) -> Plan:
    """The same step with every tensor whole: no patch stage, no row-streamed or fused block, the
    model input copied into the arena (at its first byte); the baseline the reports compare with."""
    return _make_plan(graph, trainable_ops, None, rows=[], whole=True)


def _make_plan(graph, trainable_ops: Dict[int, set], stage: Optional[patching.Stage], rows=None, in_place=None,
               recompute=None, whole=False) -> Plan:
    """rows: the row-streamed blocks (None: every block row_blocks finds); in_place: the depthwise convs
    that may write their output over their input (None: every one that can); recompute: the fused heads
    whose expansion's clamp mask the backward recomputes (None: every one that can). whole: see
    make_whole_plan."""
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

    fused = [] if whole else fused_blocks(graph, needs_grad, consumers)
    head = {j: k for k in fused for j in (k - 2, k - 1, k)}
    candidates = recompute_heads(graph, fused, trainable_ops)
    recompute = [k for k in candidates if recompute is None or k in recompute]
    unmasked = {graph.ops[k - 2].output for k in recompute}     # no clamp mask kept

    def t_bwd(i):
        return 2 * n - head.get(i, i)       # a fused block's ops run their backward with its head

    capacity = patching.capacities(graph, stage) if stage else {}
    rows_input = not whole and stage is not None and patching.rows_input(graph)
    if rows_input:
        capacity[graph.input] = patching.band_bytes(graph, stage)     # a band of rows (c_src/mct_band.c)
    stage_out = graph.ops[stage.ops - 1].output if stage else None
    if rows is None:
        rows = row_blocks(graph, needs_grad, consumers, stage.ops if stage else 0)
    born, kept = {}, {}      # a row-streamed block's buffers live through the whole block
    for i, last_op in rows:
        a, d, b = graph.ops[i:i + 3]
        (c_a, h_a, w_a), (c_d, _, w_d), (c_b, _, w_b) = (graph.shapes[o.output] for o in (a, d, b))
        capacity[a.output] = min(d.weight.shape[2], h_a) * c_a * w_a    # a ring of k rows of A's output
        capacity[d.output] = c_d * w_d                              # one row of D's output
        if last_op == i + 3:
            capacity[b.output] = c_b * w_b                          # one row of B's output
        for o in graph.ops[i:last_op + 1]:
            born[o.output] = i
            kept[o.output] = last_op
        kept[a.input] = last_op
    buffers, saved = [], 0
    for name, shape in graph.shapes.items():
        first = min(producer[name], born.get(name, producer[name]))
        last = max(consumers[name] + [kept.get(name, first)], default=first)
        if stage and name == graph.input:
            last = max(last, stage.ops - 1)         # every tile reads it
        if name == stage_out:
            first = 0                               # every tile writes it
        if name == graph.output:
            last = max(last, t_loss)
        end_fwd = last
        if (name in needs_grad and graph.ops[producer[name]].kind in CLAMPED and name != graph.output
                and name not in unmasked):
            # the clamp mask of its producer: one bit per element, from the forward to the backward
            size = (_size(shape) + 7) // 8
            buffers.append(Buffer("mask:" + name, size, producer[name], t_bwd(producer[name])))
            saved += size
        for c in consumers[name]:
            op = graph.ops[c]
            if "weight" in trainable_ops.get(c, ()) and op.input == name:
                last = max(last, t_bwd(c))                     # weight gradient needs the input
            if op.kind == g.MUL and op.output in needs_grad:
                last = max(last, t_bwd(c))                     # each input weights the other's gradient
            if op.kind in (g.MAXPOOL2D, g.LUT) and op.output in needs_grad:
                last = max(last, t_bwd(c))                     # where each window's max was, the
                #                                                derivative table's index
        if last > end_fwd and last > t_loss:
            saved += _size(shape)
        model_buffer = name == graph.input and (whole or getattr(graph, "input_buffer", "caller") == "model")
        if name == graph.input and not model_buffer and not rows_input and last < t_loss:
            continue        # only the forward reads it: from the caller's buffer, no copy in the arena
        # input_buffer(): the input at the arena's first byte, the start of the workspace's heap block,
        # so that a view of it keeps the workspace alive (modules/mcutrain)
        size = logits_size(_size(shape)) if name == graph.output else capacity.get(name, _size(shape))
        buffers.append(Buffer("act:" + name, size, first, last, fixed=model_buffer))
    in_place = [] if whole else _in_place_forward(graph, trainable_ops, consumers, buffers, capacity, in_place)
    inplace = [k for k in inplace_ops(graph, needs_grad, consumers) if k not in head]
    merged = {graph.ops[k].output: graph.ops[k].input for k in inplace}    # out -> in, one buffer
    streamed = {}        # a fused block's expanded activations: their gradient is one channel
    for k in fused:
        dw_out, pw_out = graph.ops[k - 1].output, graph.ops[k - 2].output
        (_, h, w), (_, h1, w1) = graph.shapes[dw_out], graph.shapes[pw_out]
        size = 4 * h * w + (4 * h1 * w1 if pw_out in needs_grad else 0)
        buffers.append(Buffer("grad:" + dw_out, size, t_bwd(k), t_bwd(k)))
        streamed[dw_out] = pw_out
    shared = {} if whole else add_shared_grads(graph, needs_grad, consumers, set(merged) | set(merged.values()) |
                                               set(streamed) | set(streamed.values()))
    for name in needs_grad:
        if name in merged or name in streamed or name in streamed.values() or name in shared:
            continue
        first = t_loss if name == graph.output else t_bwd(max(consumers[name]))
        size = 4 * _size(graph.shapes[name])
        out = next((o for o, i in merged.items() if i == name), None)
        if out is not None:
            # in-place depthwise backward: the input's gradient one channel below the output's
            c, h, w = graph.shapes[name]
            size += 4 * h * w
            first = t_loss if out == graph.output else t_bwd(max(consumers[out]))
        last = max([t_bwd(producer[name])] + [t_bwd(producer[b]) for b, root in shared.items() if root == name])
        buffers.append(Buffer("grad:" + name, size, first, last))
    arena = place(buffers)
    act_offset = {b.name[4:]: b.offset for b in buffers if b.name.startswith("act:")}
    act_offset.setdefault(graph.input, IN_PLACE)
    mask_offset = {b.name[5:]: b.offset for b in buffers if b.name.startswith("mask:")}
    grad_offset = {b.name[5:]: b.offset for b in buffers if b.name.startswith("grad:")}
    for k in in_place:
        act_offset[graph.ops[k].output] = act_offset[graph.ops[k].input]
    for out, inp in merged.items():
        _, h, w = graph.shapes[inp]
        grad_offset[out] = grad_offset[inp] + 4 * h * w
    for b, root in shared.items():
        grad_offset[b] = grad_offset[root]
    for dw_out, pw_out in streamed.items():
        if pw_out in needs_grad:
            _, h, w = graph.shapes[dw_out]
            grad_offset[pw_out] = grad_offset[dw_out] + 4 * h * w
    return Plan(act_offset, grad_offset, mask_offset, arena, saved, buffers, stage, capacity, fused, rows, in_place,
                recompute)


def _in_place_forward(graph, trainable_ops, consumers, buffers, capacity, allowed) -> List[int]:
    """The depthwise convs that write their output over their input (blocks.in_place_forward_ops) whose
    input no backward keeps: their input's and output's buffers become one, the input's, over both
    lifetimes, with the delay ring of ph + 1 output rows after it (c_src/mct_dw_in_place.c)."""
    acts = {b.name[4:]: b for b in buffers if b.name.startswith("act:")}
    ops = []
    for k in in_place_forward_ops(graph, trainable_ops, consumers):
        if allowed is not None and k not in allowed:
            continue
        op = graph.ops[k]
        a, y = acts.get(op.input), acts.get(op.output)
        if a is None or y is None or a.last != k or a.fixed or op.input in capacity or op.output in capacity:
            continue
        c, _, w = graph.shapes[op.output]
        a.size += (op.padding[0] + 1) * w * c
        a.last = y.last
        buffers.remove(y)
        ops.append(k)
    return ops
