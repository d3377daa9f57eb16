"""A training scheme (what the device trains) and the .mct file rewritten for it.

The scheme is what `host_tools convert` writes from --n-bias-update, --weight-update and
--no-train-classifier. Rewriting a converted file for another scheme touches only what depends on
it (each tensor's trained flag and count, the memory plan in the activation table, the header's
arena and saved bytes, the CRC): the quantized tensors stay bit for bit as the converter wrote them.
"""
import json
import math
import struct
import zlib
from dataclasses import dataclass
from typing import Dict

import numpy as np

from host_tools.model import graph as g
from host_tools.model import mct_format as fmt
from host_tools.model import numerics
from host_tools.memory import patch as patching
from host_tools.errors import UserError
from host_tools.memory.arena import NO_GRAD, make_plan

RATIOS = (0.125, 0.25, 0.5, 1.0)


@dataclass(frozen=True)
class Scheme:
    n_bias: int = 0                                   # biases of the last n_bias convs
    weights: tuple = ()                               # ((conv index, ratio), ...) sorted
    classifier: bool = True                           # the final fully connected layer

    @staticmethod
    def make(n_bias=0, weights: Dict[int, float] = None, classifier=True):
        w = tuple(sorted((int(i), float(r)) for i, r in (weights or {}).items() if r > 0))
        return Scheme(int(n_bias), w, bool(classifier))

    def describe(self) -> str:
        parts = ["classifier"] if self.classifier else []
        if self.n_bias:
            parts.append(f"biases of the last {self.n_bias} convs")
        parts += [f"conv {i} weights x{r:g}" for i, r in self.weights]
        return ", ".join(parts) or "nothing"


def _align(n, a=4):
    return (n + a - 1) // a * a


def structure(model: fmt.Model) -> g.Graph:
    """The graph of a loaded file, enough for the memory planner and the scheme rules of
    mct_format (shapes, connectivity, weight shapes, the backward, the input buffer); activations
    are named by their index."""
    names = [f"a{i}" for i in range(len(model.acts))]
    layer = model.meta.get("ops", [])
    ops = []
    for k, op in enumerate(model.ops):
        name = layer[k] if k < len(layer) else f"op{k}"
        io = dict(name=name, input=names[op.in0], output=names[op.out])
        if op.type in (g.CONV2D, g.FC):
            o = model.tensors[op.bias].size
            w = model.tensors[op.weight]
            if op.type == g.CONV2D:
                cin = model.acts[op.in0][0]
                ops.append(g.Conv2d(**io, weight=w.reshape(o, cin // op.groups, *op.kernel),
                                    bias=model.tensors[op.bias], w_scales=model.tensors[op.wscale],
                                    stride=op.stride, padding=op.padding, groups=op.groups))
            else:
                ops.append(g.FullyConnected(**io, weight=w.reshape(o, -1), bias=model.tensors[op.bias],
                                            w_scales=model.tensors[op.wscale]))
        elif op.type == g.ADD:
            ops.append(g.Add(**io, input2=names[op.in1]))
        elif op.type == g.CONCAT:
            ops.append(g.Concat(**io, input2=names[op.in1]))
        elif op.type == g.MUL:
            ops.append(g.Mul(**io, input2=names[op.in1]))
        elif op.type == g.AVGPOOL:
            ops.append(g.GlobalAvgPool(**io))
        elif op.type in (g.MAXPOOL2D, g.AVGPOOL2D):
            cls = g.MaxPool2d if op.type == g.MAXPOOL2D else g.AvgPool2d
            ops.append(cls(**io, kernel=op.kernel, stride=op.stride, padding=op.padding))
        elif op.type == g.LUT:
            ops.append(g.Lut(**io, table=model.tensors[op.weight], deriv=model.tensors[op.wscale]))
        else:
            raise UserError(f"layer {k} has an op type ({op.type}) the scheme rules do not know")
    shapes = {n: tuple(int(v) for v in a[:3]) for n, a in zip(names, model.acts)}
    graph = g.Graph(input=names[model.input], output=names[model.output], shapes=shapes, ops=ops, patch="auto")
    # what the plan depends on beyond the shapes: the backward (fused blocks are float32 only) and
    # where the input is (Model.input_buffer() needs it at the arena's first byte)
    graph.backward = "int" if model.train_flags & numerics.INT_BACKWARD else "float"
    graph.input_buffer = model.meta.get("input_buffer", "caller")
    return graph


def current_scheme(model: fmt.Model) -> Scheme:
    """The scheme a loaded file was written with."""
    conv_ops = [k for k, op in enumerate(model.ops) if op.type == g.CONV2D]
    biases = [model.trainable[model.ops[k].bias] for k in conv_ops]
    n_bias = 0
    while n_bias < len(biases) and biases[len(biases) - 1 - n_bias]:
        n_bias += 1
    weights = {}
    for i, k in enumerate(conv_ops):
        t = model.ops[k].weight
        if model.trainable[t]:
            o = model.tensors[model.ops[k].bias].size
            rows = model.trained_count[t] * o // model.tensors[t].size
            # the smallest ratio giving these rows (few channels: 1/8 and 1/4 may both give 1)
            fit = [r for r in RATIOS if max(1, int(o * r)) == rows]
            weights[i] = fit[0] if fit else rows / o
    last = model.ops[-1]
    clf = last.type == g.FC and model.trainable[last.weight]
    return Scheme.make(n_bias, weights, clf)


class ModelSchemes:
    """One model under different training schemes: the exact device memory of each (the arena plan,
    arena.make_plan, plus the trained copies, as the C core sizes its workspace, mct_workspace_size)
    and the model's file rewritten for one."""

    def __init__(self, model: fmt.Model):
        self.model = model
        self.graph = structure(model)
        self.n_convs = len(self.graph.conv_layers())
        self.n_tensors = len(model.tensors)
        self._cache = {}

    def apply(self, scheme: Scheme):
        gr = self.graph
        gr.n_bias_update, gr.weight_update, gr.train_classifier = (
            scheme.n_bias, dict(scheme.weights), scheme.classifier)
        trained = fmt.trained_params(gr)
        rows = fmt.trained_weight_rows(gr)
        return trained, rows

    def memory(self, scheme: Scheme) -> dict:
        if scheme not in self._cache:
            trained, rows = self.apply(scheme)
            copies = numerics.trained_bytes(self.n_tensors, self._trained_elements(trained, rows),
                                            self.model.train_flags, len(self.model.acts))
            try:
                arena = make_plan(self.graph, trained, stage="auto").arena_size
            except UserError:
                if not patching.rows_input(self.graph):
                    raise
                # the input fed row by row needs a frozen first stage, which this scheme trains: it
                # fits no budget
                self._cache[scheme] = dict(arena=math.inf, trained=copies, workspace=math.inf)
                return self._cache[scheme]
            self._cache[scheme] = dict(arena=arena, trained=copies, workspace=_align(arena) + copies)
        return self._cache[scheme]

    def _trained_elements(self, trained, rows):
        """(elements, itemsize) of each trained tensor, as numerics.trained_bytes takes them."""
        out = []
        for k, what in trained.items():
            op = self.graph.ops[k]
            if "weight" in what:
                out.append((rows[k] * (op.weight.size // op.weight.shape[0]), 1))
            if "bias" in what:
                out.append((op.bias.size, 4))
        return out

    def rewrite(self, scheme: Scheme, note: dict = None) -> bytes:
        """The model's file, trained with `scheme` on the device (see the module docstring)."""
        m = self.model
        trained, rows = self.apply(scheme)
        plan = make_plan(self.graph, trained, stage="auto")     # what convert's default does
        out = bytearray(m.data)
        h = list(fmt.HEADER.unpack_from(out, 0))
        t_off, a_off, o_off = h[11], h[12], h[13]
        for k, op in enumerate(m.ops):
            out[o_off + fmt.OP_ENTRY * k + 1] = fmt.op_flags(plan, k)
            if op.type not in (g.CONV2D, g.FC):
                continue
            what = trained.get(k, set())
            gop = self.graph.ops[k]
            for t, on, n in ((op.weight, "weight" in what, rows.get(k, 0) * (gop.weight.size // gop.weight.shape[0])),
                             (op.bias, "bias" in what, gop.bias.size)):
                e = t_off + fmt.TENSOR_ENTRY * t
                out[e + 9] = fmt.TF_TRAINABLE if on else 0
                struct.pack_into("<I", out, e + 12, n if on else 0)
        for i, name in enumerate(self.graph.shapes):
            struct.pack_into("<IIII", out, a_off + fmt.ACT_ENTRY * i + 8, plan.act_offset[name],
                             plan.grad_offset.get(name, NO_GRAD), plan.mask_offset.get(name, NO_GRAD),
                             plan.capacity.get(name, 0))
        h[17] = ((plan.stage.grid_byte << 8) if plan.stage else 0) | (h[17] & 0xFF)   # keep the update rule
        meta_off = h[19]
        meta = dict(m.meta, **(note or {}))
        meta.pop("patch", None)
        if plan.stage:                                        # as mct_format.to_bytes records it
            st = plan.stage
            meta["patch"] = {"ops": st.ops, "grid": [st.rows, st.cols],
                             "stage_macs_whole": patching.stage_macs(self.graph, None, st.ops),
                             "stage_macs_patched": patching.stage_macs(self.graph, st, st.ops)}
        blob = json.dumps(meta, sort_keys=True).encode()
        size = _align(meta_off + len(blob), fmt.DATA_ALIGN)
        out = out[:meta_off] + blob + bytes(size - meta_off - len(blob))
        h[3], h[14], h[18], h[20] = size, plan.arena_size, plan.saved_bytes, len(blob)
        fmt.HEADER.pack_into(out, 0, *h)
        struct.pack_into("<I", out, 12, zlib.crc32(out[16:]) & 0xFFFFFFFF)
        return bytes(out)
