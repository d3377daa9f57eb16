"""The patch-based first stage: which ops run tile by tile, the windows each tile needs, and the
choice of the stage and grid that lowers the memory peak most.

At high resolution the first layers' whole activations set the memory peak (MobileNetV2-w0.35 at
128x128: a 48x64x64 expansion next to its input), and a frozen first stage keeps nothing for the
backward pass. So ops 0..S-1 run once per tile of the stage output (rows x cols), each computing
only the window of its output that the tile needs; neighbouring tiles recompute the halos. Only the
model input and the stage output are whole. The device does exactly this (c_src/mct_patch.c, with
the same window arithmetic; its loader re-checks every buffer against these windows).
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from host_tools.model import graph as g

MAX_STAGE_OPS = 64          # c_src/mcutrain.h MCT_MAX_STAGE_OPS
MAX_GRID = 15               # rows and columns are 4 bits each in the header
SPATIAL = (g.CONV2D, g.ADD, g.MAXPOOL2D, g.AVGPOOL2D, g.LUT, g.CONCAT)
ELEMENTWISE = (g.ADD, g.LUT, g.CONCAT)       # each output reads its inputs' same position

Region = Tuple[int, int, int, int]      # y0, x0, h, w (h == 0: none)


@dataclass(frozen=True)
class Stage:
    ops: int                # ops 0 .. ops-1
    rows: int
    cols: int

    @property
    def grid_byte(self):
        return self.rows << 4 | self.cols


def _inputs(op):
    return [op.input] + ([op.input2] if hasattr(op, "input2") else [])


def stage_ok(graph, n: int, frozen_acts: set) -> bool:
    """Can ops 0..n-1 run patch by patch? Spatial ops only, none differentiated, reading only the
    model input and each other, their outputs (but the last) read by nobody after the stage; with the
    input fed row by row (graph.input_buffer "rows"), the input read by nobody after it either.
    frozen_acts: the activations that need no gradient."""
    if not 1 <= n <= min(MAX_STAGE_OPS, len(graph.ops)):
        return False
    produced = set()
    for op in graph.ops[:n]:
        if op.kind not in SPATIAL or op.output not in frozen_acts or op.output == graph.output:
            return False
        if any(a != graph.input and a not in produced for a in _inputs(op)):
            return False
        produced.add(op.output)
    internal = produced - {graph.ops[n - 1].output}
    if rows_input(graph):
        internal.add(graph.input)
    return not any(a in internal for op in graph.ops[n:] for a in _inputs(op))


def rows_input(graph) -> bool:
    """Is the model input fed row by row (convert --input-buffer rows)?"""
    return getattr(graph, "input_buffer", "caller") == "rows"


def check(graph, stage: Stage, frozen_acts: set):
    """A clear error for a stage the device would reject."""
    from host_tools.errors import UserError
    if not stage_ok(graph, stage.ops, frozen_acts):
        raise UserError(f"ops 0..{stage.ops - 1} cannot run patch by patch: the stage must be at most "
                        f"{MAX_STAGE_OPS} frozen conv, add, pooling, lookup-table and concatenation layers reading the input "
                        f"and each other" + (", and the only layers reading the input (--input-buffer rows)"
                                             if rows_input(graph) else ""))
    _, oh, ow = graph.shapes[graph.ops[stage.ops - 1].output]
    if not (1 <= stage.rows <= min(oh, MAX_GRID) and 1 <= stage.cols <= min(ow, MAX_GRID)):
        raise UserError(f"a {stage.rows}x{stage.cols} patch grid does not fit the stage output of {oh}x{ow} "
                        f"(at most {MAX_GRID} per side)")


def _grow(r: Region, y0, y1, x0, x1) -> Region:
    if y0 >= y1 or x0 >= x1:
        return r
    if r[2] > 0:
        y0, x0 = min(y0, r[0]), min(x0, r[1])
        y1, x1 = max(y1, r[0] + r[2]), max(x1, r[1] + r[3])
    return (y0, x0, y1 - y0, x1 - x0)


def regions(graph, stage: Stage, p: int) -> List[Region]:
    """The window of each stage op's output that patch p (row-major) needs."""
    n = stage.ops
    producer = {op.output: k for k, op in enumerate(graph.ops[:n])}
    regs: List[Region] = [(0, 0, 0, 0)] * n
    _, oh, ow = graph.shapes[graph.ops[n - 1].output]
    py, px = divmod(p, stage.cols)
    regs[n - 1] = _grow(regs[n - 1], oh * py // stage.rows, oh * (py + 1) // stage.rows,
                        ow * px // stage.cols, ow * (px + 1) // stage.cols)
    for k in range(n - 1, -1, -1):
        if regs[k][2] == 0:
            continue
        op = graph.ops[k]
        for a in _inputs(op):
            if a in producer:
                j = producer[a]
                regs[j] = _grow(regs[j], *_input_window(graph, op, regs[k]))
    return regs


def _input_window(graph, op, region: Region):
    """Rows [y0, y1) and columns [x0, x1) of its input that op's outputs in region read."""
    y0, x0, h, w = region
    if op.kind in ELEMENTWISE:
        return y0, y0 + h, x0, x0 + w
    if op.kind == g.CONV2D:
        (kh, kw), (sh, sw), (ph, pw) = op.weight.shape[2:], op.stride, op.padding
    else:
        (kh, kw), (sh, sw), (ph, pw) = op.kernel, op.stride, op.padding
    _, ih, iw = graph.shapes[op.input]
    return (min(max(y0 * sh - ph, 0), ih), min(max((y0 + h - 1) * sh - ph + kh, 0), ih),
            min(max(x0 * sw - pw, 0), iw), min(max((x0 + w - 1) * sw - pw + kw, 0), iw))


def input_rows(graph, stage: Stage, py: int) -> Tuple[int, int]:
    """The model input's rows [y0, y1) that tile row py of the stage reads (c_src/mct_patch.c's
    mct_patch_input_rows): with --input-buffer rows, the band of the input the arena holds then."""
    regs = regions(graph, stage, py * stage.cols)
    r: Region = (0, 0, 0, 0)
    for k, op in enumerate(graph.ops[:stage.ops]):
        if regs[k][2] and graph.input in _inputs(op):
            r = _grow(r, *_input_window(graph, op, regs[k]))
    return r[0], r[0] + r[2]


def band_bytes(graph, stage: Stage) -> int:
    """Bytes of the input band (--input-buffer rows): the most input rows a tile row reads, whole rows."""
    c, _, w = graph.shapes[graph.input]
    return max(y1 - y0 for y0, y1 in (input_rows(graph, stage, py) for py in range(stage.rows))) * w * c


def capacities(graph, stage: Stage) -> Dict[str, int]:
    """Bytes of each patch buffer: the largest window of any patch (outputs of ops 0..n-2)."""
    cap = {graph.ops[k].output: 0 for k in range(stage.ops - 1)}
    for p in range(stage.rows * stage.cols):
        for k, (_, _, h, w) in enumerate(regions(graph, stage, p)[:-1]):
            c = graph.shapes[graph.ops[k].output][0]
            cap[graph.ops[k].output] = max(cap[graph.ops[k].output], c * h * w)
    return cap


def _macs(graph, k, h, w) -> int:
    op = graph.ops[k]
    if op.kind == g.CONV2D:
        o, ipg, kh, kw = op.weight.shape
        return o * h * w * ipg * kh * kw
    c = graph.shapes[op.output][0]
    return c * h * w * (op.kernel[0] * op.kernel[1] if op.kind not in ELEMENTWISE else 1)


def stage_macs(graph, stage: Optional[Stage], n: int) -> int:
    """Multiply-accumulates of ops 0..n-1, patch by patch (halos recomputed) or whole."""
    if stage is None:
        return sum(_macs(graph, k, *graph.shapes[graph.ops[k].output][1:]) for k in range(n))
    return sum(_macs(graph, k, h, w) for p in range(stage.rows * stage.cols)
               for k, (_, _, h, w) in enumerate(regions(graph, stage, p)))


def model_macs(graph) -> int:
    """Multiply-accumulates of one whole-tensor forward of the spatial ops."""
    return sum(_macs(graph, k, *graph.shapes[op.output][1:]) for k, op in enumerate(graph.ops) if op.kind in SPATIAL)


def choose(graph, arena_of, frozen_acts: set, max_overhead: float = 0.2) -> Optional[Stage]:
    """The stage and square grid with the smallest arena (arena_of(stage) -> bytes, None = whole
    tensors). Kept only when it saves at least 10 %; among those within 2 % of the best, the one
    that recomputes least, and never one whose recomputed halos add more than max_overhead to
    the whole forward's multiply-accumulates. With the input fed row by row (rows_input) a stage is
    needed: bands of full-width tiles (ROWSx1) are options too, and the best is kept whatever it saves."""
    rows = rows_input(graph)
    whole = None if rows else arena_of(None)
    total = max(model_macs(graph), 1)
    options = []
    for n in range(1, min(MAX_STAGE_OPS, len(graph.ops)) + 1):
        if not stage_ok(graph, n, frozen_acts):
            continue
        _, oh, ow = graph.shapes[graph.ops[n - 1].output]
        base = stage_macs(graph, None, n)
        grids = [(r, r) for r in range(2, min(oh, ow, 8) + 1)]
        if rows:
            grids += [(r, 1) for r in range(2, min(oh, 8) + 1)]      # row bands
        for r, c in grids:
            st = Stage(n, r, c)
            extra = (stage_macs(graph, st, n) - base) / total
            if extra <= max_overhead or rows:
                options.append((arena_of(st), extra, st))
    if rows:
        # a stage is needed: within the recompute limit if any is, else the least recompute
        least = min((extra for _, extra, _ in options), default=0)
        options = [o for o in options if o[1] <= max(max_overhead, least)]
    if not options:
        if rows:
            from host_tools.errors import UserError
            raise UserError("--input-buffer rows needs a patch-based first stage, and no first layers of this model "
                            "can run tile by tile (frozen conv, add, pooling, lookup-table and concatenation layers, "
                            "the only ones reading the input)")
        return None
    best = min(a for a, _, _ in options)
    if not rows and best > 0.9 * whole:
        return None
    return min(((extra, a, st) for a, extra, st in options if a <= 1.02 * best),
               key=lambda t: (t[0], t[1], t[2].ops))[2]
