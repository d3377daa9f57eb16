"""The device's arithmetic on a converted .tflite against the TF-Lite interpreter (ai-edge-litert).

    r = tflite_parity("model.tflite", x)      # x: float images [N, C, H, W] in the model's input range
    r["per_op"]      {layer: largest difference, in int8 steps, of the device's op run on TF-Lite's
                     own inputs of that op} (0 = the op reproduces TF-Lite's kernel bit for bit)
    r["logits_max"]  largest difference of the int8 logits, end to end
    r["top1"]        fraction of inputs with the same top-1

The interpreter runs its reference kernels (OpResolverType.BUILTIN_REF), the kernels TF-Lite Micro
shares; its default optimized kernels (XNNPACK) round differently from them.
"""
import numpy as np

from host_tools.errors import UserError
from host_tools.frontends.tflite_int8 import load_tflite
from host_tools.frontends.torch_fx import quantize_input
from host_tools.model import mct_format
from host_tools.model.layout import to_device
from host_tools.reference import oracle as reference


def _interpreter(path, resolver):
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        raise UserError("comparing with TF-Lite needs the ai-edge-litert package: pip install ai-edge-litert") from None
    it = Interpreter(str(path), experimental_op_resolver_type=getattr(OpResolverType, resolver),
                     experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    return it


def _chw(t):
    return t[0].transpose(2, 0, 1) if t.ndim == 4 else t.reshape(-1, 1, 1)


def tflite_parity(path, x, resolver="BUILTIN_REF") -> dict:
    graph = load_tflite(str(path))
    model = mct_format.load(mct_format.to_bytes(graph))
    ref = reference.Reference(model)
    it = _interpreter(path, resolver)
    index = {t["name"]: t["index"] for t in it.get_tensor_details()}
    names = list(graph.shapes)
    missing = [n for n in names if n not in index]
    if missing:
        raise UserError(f"the interpreter has no tensors named {missing}: tensor names must be unique")
    per_op = {op.name: 0 for op in graph.ops}
    logits_max, same = 0, 0
    for xi in np.asarray(x):
        q = quantize_input(graph, xi[None])
        it.set_tensor(it.get_input_details()[0]["index"], q.transpose(0, 2, 3, 1))
        it.invoke()
        theirs = {k: _chw(it.get_tensor(index[n])) for k, n in enumerate(names)}
        mine = ref.forward(to_device(q[0])).astype(int)
        tl = theirs[names.index(graph.output)].reshape(-1).astype(int)
        logits_max = max(logits_max, int(np.abs(mine - tl).max()))
        same += int(np.argmax(mine) == np.argmax(tl))
        for k, _ in enumerate(names):             # each op on TF-Lite's own inputs
            ref.acts[k] = theirs[k].reshape(ref._shape(k))
        for op, gop in zip(model.ops, graph.ops):
            d = np.abs(ref.forward_op(op).reshape(theirs[op.out].shape).astype(int) - theirs[op.out].astype(int))
            per_op[gop.name] = max(per_op[gop.name], int(d.max()))
    return {"per_op": per_op, "logits_max": logits_max, "top1": same / len(x), "n": len(x)}
