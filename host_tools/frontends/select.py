"""Which front end reads a model, from what the user gives `host_tools convert`.

    file.py:ClassName (+ --weights)   torch.fx; when it cannot trace forward() (shape checks, asserts),
                                      torch.export at the calibration data's shape
    model.pt / .pth                   a pickled nn.Module (as above), or a TorchScript archive
    model.pt2                         an ExportedProgram (torch.export.save)
    model.onnx                        ONNX (the onnx package)
    model.tflite                      TF-Lite int8, its own quantization kept
    FOLDER with --from mit-int8       the paper's int8 models

Every float front end gives an nn.Module that host_tools.frontends.torch_fx quantizes; the int8 ones give
the Graph directly. `supported_ops_markdown()` is the table `convert --list-ops` prints and
docs/host_tools.md holds.
"""
import os
import sys

from host_tools.errors import UserError

KINDS = ("auto", "torch", "export", "torchscript", "onnx", "tflite", "mit-int8")


def detect(spec: str, source: str = "auto") -> str:
    """The front end for MODEL: `source` when given, else from the file's name and content."""
    if source != "auto":
        return source
    low = spec.lower()
    if low.endswith(".onnx"):
        return "onnx"
    if low.endswith(".tflite"):
        return "tflite"
    if low.endswith(".pt2"):
        return "export"
    if low.endswith((".pt", ".pth")) and os.path.isfile(spec):
        from host_tools.frontends.torch_export import is_torchscript_file
        return "torchscript" if is_torchscript_file(spec) else "torch"
    if os.path.isdir(spec) and os.path.exists(os.path.join(spec, "model.json")):
        return "mit-int8"
    return "torch"


def float_model(kind: str, spec: str, weights, calib):
    """(nn.Module, calibration images float32 [N, C, H, W], their labels or None) for a float front end."""
    from host_tools.frontends.calibrate import load_data
    if weights and kind != "torch":
        raise UserError(f"--weights goes with file.py:ClassName; a {kind} model file holds its own weights")
    if kind == "torch":
        from host_tools.cli.convert import _folder_shape, load_torch_model
        model = load_torch_model(spec, weights)
        x, y = load_data(calib, _folder_shape(model, calib) if os.path.isdir(calib) else None)
        x = model_layout(model, x)
        return _traceable_or_exported(model, x), x, y
    if os.path.isdir(calib):
        raise UserError(f"--calib {calib}: a {kind} model takes its calibration data as a .npz file "
                        f"(x float32 [N, C, H, W])")
    x, y = load_data(calib, None)
    if x.ndim != 4 or len(x) == 0:
        raise UserError(f"the calibration data must be float images [N, C, H, W], got shape {x.shape}")
    from host_tools.frontends import torch_export as fe
    if kind == "export":
        gm = fe.module_from_exported(fe.load_exported(spec), _name(spec))
        return gm, model_layout(gm, x), y
    if kind == "torchscript":
        ts = fe.load_torchscript(spec)
        try:
            return fe.module_from_exported(fe.torchscript_to_exported(ts, x[:2], spec), _name(spec)), x, y
        except UserError as e:
            if "TorchScript" in str(e):
                raise
            raise UserError(f"{e}; {spec} is a TorchScript archive: if that part cannot change, "
                            + fe.TORCHSCRIPT_INSTEAD.format(path=spec)) from None
    if kind == "onnx":
        from host_tools.frontends.onnx_model import load_onnx
        gm = load_onnx(spec, x.shape[1:])
        return gm, model_layout(gm, x), y
    raise UserError(f"unknown front end {kind!r}")


def model_layout(model, x):
    """x as the model takes it: a 1-D model (one with a Conv1d) takes signals [N, C, W], which a .npz
    holds as they come but load_data reads as one-channel images [N, 1, C, W]."""
    import torch.nn as nn
    if x.ndim == 4 and x.shape[1] == 1 and any(isinstance(m, nn.Conv1d) for m in model.modules()):
        return x[:, 0]
    return x


def _traceable_or_exported(model, x):
    """The model itself when torch.fx traces it, else its torch.export rebuild at x's shape."""
    import torch.nn as nn
    from host_tools.frontends import torch_export as fe
    from host_tools.frontends.torch_fx import _trace
    if isinstance(model, nn.Module) and type(model).__module__.startswith("torch.jit"):
        return fe.module_from_exported(fe.torchscript_to_exported(model, x[:2]), type(model).__name__)
    try:
        _trace(model)
        return model
    except UserError as e:
        why = str(e).split("; make forward()")[0]
        print(f"note: {why}: converting through torch.export at the calibration data's shape "
              f"{list(x.shape[1:])}", file=sys.stderr)
    return fe.module_from_exported(fe.export_module(model, x[:2]), type(model).__name__)


def _name(path):
    return os.path.splitext(os.path.basename(path))[0]


def check_logits(graph):
    """UserError unless the graph's output is a vector of K >= 2 logits."""
    c, h, w = graph.shapes[graph.output]
    if (h, w) != (1, 1) or c < 2:
        raise UserError(f"the model's output '{graph.output}' has shape [N, {c}, {h}, {w}]: the device trains a "
                        f"classifier whose output is logits [N, K] (K >= 2); end the model with a global "
                        f"average pool, a flatten and a Linear layer")


def supported_ops_markdown() -> str:
    """The supported operators of every front end, as the Markdown table of docs/host_tools.md."""
    from host_tools.frontends.torch_fx import SUPPORTED
    from host_tools.frontends.torch_export import SUPPORTED_ATEN
    from host_tools.frontends.onnx_model import SUPPORTED_ONNX
    from host_tools.frontends.tflite_int8 import SUPPORTED_TFLITE
    rows = [("torch.fx (`file.py:Class`, pickled `.pt`)", SUPPORTED.replace(" and ", ", "),
             "the same layers (batch norm folded into the conv before it, ReLU/ReLU6/Hardtanh into the layer's "
             "clamp, the other activations lookup tables, 1-D layers on [N, C, W] inputs as H = 1)")]
    rows += [("torch.export / TorchScript (`.pt2`, `.pt`)", f"aten.{k}", v) for k, v in SUPPORTED_ATEN.items()]
    rows += [("ONNX (`.onnx`)", k, v) for k, v in SUPPORTED_ONNX.items()]
    rows += [("TF-Lite int8 (`.tflite`)", k, v) for k, v in SUPPORTED_TFLITE.items()]
    lines = ["| front end | operator | becomes |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)
