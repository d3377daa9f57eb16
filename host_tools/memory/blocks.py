"""Which blocks of ops the memory plan (arena.py) treats as one: frozen inverted-residual blocks that
run row by row (c_src/mct_rows.c), blocks whose backward runs fused (c_src/mct_block_backward.c),
and depthwise convs that write their output (forward) or input gradient (backward) over their input
or output gradient (in place)."""
from typing import List, Tuple

from host_tools.model import graph as g


def _pointwise(op):
    return (op.kind == g.CONV2D and op.groups == 1 and tuple(op.weight.shape[2:]) == (1, 1)
            and tuple(op.stride) == (1, 1) and tuple(op.padding) == (0, 0))


def _depthwise(graph, op):
    return (op.kind == g.CONV2D and op.groups == op.weight.shape[0] == graph.shapes[op.input][0]
            and op.weight.shape[1] == 1)


def row_blocks(graph, needs_grad, consumers, start=0) -> List[Tuple[int, int]]:
    """Frozen blocks that run row by row (c_src/mct_rows.c), as (first op, last op), after the
    patch-based stage (ops start..): a conv A with one group, a depthwise conv D reading it with a
    stride no larger than its kernel, a pointwise conv B reading D, and the residual add of A's
    input and B's output when there is one; nothing else reading A's, D's (or, with the add, B's)
    output, nothing differentiated. A's output is then a ring of k rows, D's (and B's) one row.
    graph.row_blocks: True (default: make_plan keeps those that lower the arena), "all", False."""
    if not getattr(graph, "row_blocks", True):
        return []
    blocks, i, n = [], start, len(graph.ops)
    while i + 2 < n:
        a, d, b = graph.ops[i:i + 3]
        outs = [a.output, d.output, b.output]
        if not (a.kind == g.CONV2D and a.groups == 1 and _depthwise(graph, d) and d.input == a.output
                and d.stride[0] <= d.weight.shape[2] and _pointwise(b) and b.input == d.output
                and consumers[a.output] == [i + 1] and consumers[d.output] == [i + 2]
                and not any(o in needs_grad or o == graph.output for o in outs)):
            i += 1
            continue
        last = i + 2
        s = graph.ops[i + 3] if i + 3 < n else None
        if (s is not None and s.kind == g.ADD and {s.input, s.input2} == {a.input, b.output}
                and consumers[b.output] == [i + 3] and s.output not in needs_grad and s.output != graph.output):
            last = i + 3
        blocks.append((i, last))
        i = last + 1
    return blocks


def fused_blocks(graph, needs_grad, consumers) -> List[int]:
    """Heads k of the blocks whose backward runs fused (float32 backward only): ops k-2, k-1, k a
    pointwise, a depthwise and a pointwise conv, each reading the previous one's output, which
    nothing else reads, the depthwise output needing a gradient. The block's backward streams the
    expanded channels: the head's input gradient for channel e, the depthwise conv's backward for
    channel e, the first pointwise conv's for channel e (c_src/mct_block_backward.c)."""
    if getattr(graph, "backward", "float") != "float" or not getattr(graph, "fused_backward", True):
        return []
    heads = []
    for k in range(2, len(graph.ops)):
        pw1, dw, pw2 = graph.ops[k - 2:k + 1]
        if (_pointwise(pw1) and _depthwise(graph, dw) and _pointwise(pw2)
                and dw.input == pw1.output and pw2.input == dw.output
                and consumers[pw1.output] == [k - 1] and consumers[dw.output] == [k]
                and dw.output in needs_grad and graph.output not in (pw1.output, dw.output, pw2.output)
                and not (heads and heads[-1] > k - 3)):
            heads.append(k)
    return heads


def recompute_heads(graph, fused, trainable_ops) -> List[int]:
    """Heads k of fused blocks whose expansion's clamp mask need not be kept: the fused backward
    recomputes it, channel by channel, from the block input, which the expansion's weight gradient
    keeps anyway (c_src/mct_block_backward.c). graph.recompute_masks: True (default: make_plan keeps
    those that lower the arena), "all", False."""
    if not getattr(graph, "recompute_masks", True):
        return []
    return [k for k in fused if "weight" in trainable_ops.get(k - 2, ()) and graph.ops[k - 2].input != graph.input]


def inplace_ops(graph, needs_grad, consumers) -> List[int]:
    """Depthwise convs (one input channel per output channel, same shape in and out) whose input
    gradient can overwrite their output gradient: channel o of the input's gradient depends on
    channel o of the output's only, so it goes where output channel o-1's gradient was, which is
    no longer needed (c_src/mct_train.c). Their input must have no other reader, and their output
    must not be the input of another such conv."""
    ops = []
    for k, op in enumerate(graph.ops):
        if (op.kind == g.CONV2D and op.groups == op.weight.shape[0] and op.weight.shape[1] == 1
                and graph.shapes[op.input] == graph.shapes[op.output] and op.input in needs_grad
                and op.output in needs_grad and consumers[op.input] == [k]
                and not any(graph.ops[j].input == op.output for j in ops)
                and not any(graph.ops[j].output == op.input for j in ops)):
            ops.append(k)
    return ops


def in_place_forward_ops(graph, trainable_ops, consumers) -> List[int]:
    """Depthwise convs (stride 1, the output the input's shape) that can write their output over their
    input, through a delay ring of ph + 1 output rows (c_src/mct_dw_in_place.c): the input read by
    nothing else and not the model input, the output not the model output, the weights not trained
    (their gradient would read the input), and the ring smaller than the tensor. Whether the backward
    keeps the input is the plan's to check. graph.in_place_forward: True (default: make_plan keeps those
    that lower the arena), "all", False."""
    if not getattr(graph, "in_place_forward", True):
        return []
    ops = []
    for k, op in enumerate(graph.ops):
        if (_depthwise(graph, op) and tuple(op.stride) == (1, 1) and graph.shapes[op.input] == graph.shapes[op.output]
                and op.padding[0] + 1 < graph.shapes[op.output][1] and op.padding[0] < op.weight.shape[2]
                and consumers[op.input] == [k] and op.input != graph.input and op.output != graph.output
                and "weight" not in trainable_ops.get(k, ())):
            ops.append(k)
    return ops
