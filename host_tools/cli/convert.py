"""`host_tools convert`: a PyTorch, ONNX, TF-Lite int8 or MIT int8 model -> .mct file for the device."""
import argparse
import importlib.util
import os
import sys

import numpy as np

from host_tools.boards.backward import DEFAULT_BACKWARD, default_backward
from host_tools.errors import UserError
from host_tools.frontends.select import KINDS

EPILOG = """examples:
  # your own PyTorch model: class in a file + state_dict, calibrated on a .npz (x: float32 NCHW)
  host_tools convert examples/fashion_net.py:FashionNet --weights build/demo/fashion_net.pt \\
      --calib build/demo/calib.npz --val build/demo/val.npz --n-bias-update 2 -o build/demo/fashion.mct

  # a whole pickled nn.Module (torch.save(model, "model.pt")), a TorchScript archive, an
  # ExportedProgram (torch.export.save), an ONNX file: each calibrated on your data
  host_tools convert model.pt --calib calib.npz -o model.mct
  host_tools convert model.pt2 --calib calib.npz -o model.mct
  host_tools convert model.onnx --calib calib.npz -o model.mct

  # a fully int8 TF-Lite model: its own quantization, no calibration
  host_tools convert model.tflite --val val.npz -o model.mct

  # which operators each front end reads
  host_tools convert --list-ops

  # the MIT int8 models of the paper, with a fresh 10-way classifier for transfer learning
  host_tools convert --from mit-int8 ../shared/models/mit/mbv2-w0.35 --num-classes 10 \\
      --n-bias-update 12 -o mbv2.mct

--calib/--val take a .npz file (x float32 [N, C, H, W] in the model's input range, optional y
labels) or a folder of images (class subfolders give the labels; needs Pillow).
"""


HELP = "convert a PyTorch, ONNX, TF-Lite int8 or MIT int8 model to a .mct file"
DESCRIPTION = ("Quantize a model to int8 (post-training, per-channel weights; a TF-Lite int8 model keeps its "
               "own) and write the .mct file the device loads; prints a per-layer table and the int8-vs-float "
               "top-1.")


def add_arguments(p):
    p.add_argument("model", nargs="?", help="file.py:ClassName (with --weights), a .pt file (pickled nn.Module "
                                            "or TorchScript), a .pt2 ExportedProgram, a .onnx file, an int8 "
                                            ".tflite file, or a MIT int8 model folder")
    p.add_argument("-o", "--output", help="the .mct file to write")
    p.add_argument("--from", dest="source", choices=KINDS, default="auto",
                   help="which front end reads MODEL (default auto: from the file name and content)")
    p.add_argument("--list-ops", action="store_true", help="print the operators each front end supports and exit")
    p.add_argument("--weights", help="state_dict checkpoint (.pt) for file.py:ClassName")
    p.add_argument("--calib", help="calibration data: .npz or image folder (required for torch models)")
    p.add_argument("--val", help="validation data: .npz or image folder; reports top-1 int8 vs float")
    p.add_argument("--method", choices=("minmax", "percentile"), default="minmax",
                   help="activation range calibration (default: minmax)")
    p.add_argument("--percentile", type=float, default=99.99, help="for --method percentile (default 99.99)")
    p.add_argument("--input-scale", type=float, default=1 / 255,
                   help="torch models: int8 input = round(x / scale) + zero (default 1/255)")
    p.add_argument("--input-zero", type=int, default=-128, help="(default -128: int8 = pixel - 128)")
    p.add_argument("--input-mean", type=_floats, metavar="M[,M...]",
                   help="torch models trained on (x - mean) / std of 0-1 pixels x (torchvision's Normalize): the "
                        "mean per channel (or one for all); --calib/--val then hold 0-1 pixels, the device gets "
                        "pixel - 128, and the normalization is folded into the model (the report says how)")
    p.add_argument("--input-std", type=_floats, metavar="S[,S...]", help="the std per channel (or one for all)")
    p.add_argument("--n-bias-update", type=int, default=0, metavar="N",
                   help="the device trains the biases of the last N conv layers (default 0)")
    p.add_argument("--no-train-classifier", dest="train_classifier", action="store_false",
                   help="do not train the final Linear layer on the device")
    p.add_argument("--weight-update", metavar="IDX:RATIO,...", type=_weight_update,
                   help="the device trains the weights of conv layer IDX (counted from 0 in forward order, "
                        "the classifier excluded) on the first RATIO of its output channels, e.g. 36:1,39:0.125")
    p.add_argument("--scheme", metavar="FILE.json:MODEL:BUDGET",
                   help="take n_bias_update and the weight updates from a scheme file in the paper's format, "
                        "e.g. ../shared/models/mit/schemes.json:mbv2-w0.35:99kb (overrides --n-bias-update "
                        "and --weight-update)")
    p.add_argument("--update-rule", choices=("master", "frac8", "stochastic", "nearest"), default="stochastic",
                   help="how updates reach the trained int8/int32 values: stochastic rounding (no extra RAM), "
                        "nearest rounding (no extra RAM, loses small steps), frac8 (1 B per trained value: the "
                        "fraction of a step in 1/256) or a float32 master copy (4 B); see docs/numerics.md "
                        "(default stochastic)")
    p.add_argument("--backward", choices=("float", "int"),
                   help="the device's backward pass: float32 or integer only (block floating point, for MCUs "
                        "without an FPU; needs --update-rule frac8, stochastic or nearest); default: the "
                        "--board's (host_tools/boards/backward.py), float32 without --board")
    p.add_argument("--board", choices=sorted(DEFAULT_BACKWARD), metavar="BOARD",
                   help="the board the model is for, which sets the default --backward: the integer one on "
                        "rp2-pico (no FPU), float32 on the others (" + ", ".join(sorted(DEFAULT_BACKWARD)) + ")")
    p.add_argument("--num-classes", type=int, metavar="K",
                   help="mit-int8: replace the 1000-way classifier by a fresh K-way one")
    p.add_argument("--patch", type=_patch, default="auto", metavar="auto|none|OPS:ROWSxCOLS",
                   help="run the first OPS layers tile by tile on a ROWSxCOLS grid, so their whole "
                        "activations never exist (default auto: the stage and grid that lower the memory "
                        "peak most, if any; none: whole tensors)")
    p.add_argument("--recompute", choices=("auto", "none"), default="auto",
                   help="fused inverted-residual blocks whose block input the backward keeps anyway can "
                        "recompute their expansion's outputs in the backward instead of keeping its clamp "
                        "mask: auto (default): where that lowers the memory peak, at more multiply-"
                        "accumulates per step (the report says how many); none: keep every mask (the "
                        "faster step, the larger peak)")
    p.add_argument("--input-buffer", choices=("caller", "model", "rows"), default="caller",
                   help="where the device reads each input: caller (default): where the script keeps it, "
                        "e.g. a file in memory-mapped Flash, no copy in the model's RAM; model: a buffer in "
                        "the model's RAM that the script fills before each step (Model.input_buffer(), "
                        "e.g. a camera frame), whose bytes the model reuses once read; rows: a band of rows "
                        "in the model's RAM that a reader (a camera, a file) fills as the patch-based first "
                        "stage moves down, so the whole frame never is in RAM (forward/train_step(reader))")


def _weight_update(text):
    out = {}
    for part in filter(None, text.split(",")):
        idx, _, ratio = part.partition(":")
        try:
            out[int(idx)] = float(ratio)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{part}' is not IDX:RATIO (e.g. 36:0.5)") from None
    return out


def _folder_shape(model, folder):
    """The input shape for a folder of calibration images: the first conv's input channels, the
    first image's size (every image is resized to it)."""
    import torch.nn as nn
    from host_tools.frontends.calibrate import folder_image_size
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise UserError(f"cannot tell the model's input channels (no Conv2d) to read the images of {folder}: "
                        "give the calibration data as a .npz with x float32 [N, C, H, W]")
    return (conv.in_channels, *folder_image_size(folder))


def _patch(text):
    from host_tools.memory.patch import Stage
    if text in ("auto", "none"):
        return None if text == "none" else text
    try:
        ops, grid = text.split(":")
        rows, cols = grid.lower().split("x")
        return Stage(int(ops), int(rows), int(cols))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto, none or OPS:ROWSxCOLS (e.g. 6:2x2), not {text!r}") from None


def _backward(args):
    """--backward, else the --board's default (said in the report when it is the integer one)."""
    if args.backward:
        return args.backward
    backward = default_backward(args.board)
    if backward == "int":
        if args.update_rule == "master":
            raise UserError(f"--board {args.board} takes the integer backward by default, which needs an integer "
                            "update rule: give --update-rule frac8, stochastic or nearest, or --backward float")
        print(f"backward: integer only, the default for --board {args.board} (no FPU; --backward float for float32)")
    return backward


def load_scheme(spec):
    """(n_bias_update, {conv index: ratio}) from 'FILE.json:MODEL:BUDGET' (the paper's schemes.json)."""
    import json
    try:
        path, model, budget = spec.rsplit(":", 2)
    except ValueError:
        raise UserError(f"--scheme {spec}: expected FILE.json:MODEL:BUDGET") from None
    try:
        with open(path) as f:
            schemes = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the scheme file {path}: {e}") from None
    entry = schemes.get(model, {}).get(budget) if isinstance(schemes.get(model), dict) else None
    if not isinstance(entry, dict):
        have = ", ".join(f"{m}:{b}" for m, v in schemes.items() if isinstance(v, dict) for b in v)
        raise UserError(f"{path} has no scheme {model}:{budget} (it has {have})")
    ratios = dict(zip(entry.get("manual_weight_idx", []), entry.get("weight_update_ratio", [])))
    return int(entry.get("n_bias_update", 0)), {int(k): float(v) for k, v in ratios.items() if v}


# ----------------------------------------------------------------------------------------------

def load_torch_model(spec: str, weights: str = None):
    """An nn.Module (eval mode) from 'file.py:ClassName' (+ state_dict file) or a pickled-module .pt."""
    import torch
    import torch.nn as nn

    if ":" in spec and spec.rsplit(":", 1)[0].endswith(".py"):
        path, cls_name = spec.rsplit(":", 1)
        if not os.path.exists(path):
            raise UserError(f"{path} does not exist")
        folder = os.path.dirname(os.path.abspath(path))
        mod_name = "_mcutrain_model_" + os.path.splitext(os.path.basename(path))[0]
        sys.path.insert(0, folder)
        try:
            s = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(s)
            s.loader.exec_module(module)
        except Exception as e:
            raise UserError(f"importing {path} failed ({type(e).__name__}: {e})") from None
        finally:
            sys.path.remove(folder)
        cls = getattr(module, cls_name, None)
        if cls is None:
            raise UserError(f"{path} has no {cls_name}")
        try:
            model = cls()
        except Exception as e:
            raise UserError(f"{cls_name}() failed ({type(e).__name__}: {e}): the class must be "
                            f"constructible without arguments") from None
        if not isinstance(model, nn.Module):
            raise UserError(f"{cls_name} is not a torch.nn.Module")
        if weights:
            try:
                state = torch.load(weights, map_location="cpu", weights_only=True)
            except Exception as e:
                raise UserError(f"cannot read the state_dict {weights} ({type(e).__name__}: {e})") from None
            if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
                state = state["state_dict"]
            try:
                model.load_state_dict(state)
            except Exception as e:
                raise UserError(f"{weights} does not fit {cls_name}: {str(e).splitlines()[0]}") from None
        else:
            print(f"warning: no --weights: converting {cls_name} with its initial (random) weights",
                  file=sys.stderr)
        return model.eval()
    if spec.endswith((".pt", ".pth")):
        if not os.path.exists(spec):
            raise UserError(f"{spec} does not exist")
        if weights:
            raise UserError("--weights goes with file.py:ClassName, not with a pickled model .pt")
        try:
            obj = torch.load(spec, map_location="cpu", weights_only=False)
        except Exception as e:
            raise UserError(f"cannot load {spec} ({type(e).__name__}: {e}); if it holds a state_dict, "
                            f"give file.py:ClassName --weights {spec}") from None
        if not isinstance(obj, nn.Module):
            raise UserError(f"{spec} holds a {type(obj).__name__}, not a pickled nn.Module: give the model "
                            f"as file.py:ClassName --weights {spec}")
        return obj.eval()
    raise UserError(f"cannot tell what {spec!r} is: give file.py:ClassName, a .pt file (pickled nn.Module or "
                    f"TorchScript), a .pt2 ExportedProgram, a .onnx or int8 .tflite file, or a MIT model folder")


def _memory_line(graph):
    """The memory plan's arena and what lowered it. Sets graph.patch to the stage chosen, so that
    writing the file does not search again."""
    from host_tools.memory import patch as patching
    from host_tools.model.mct_format import trained_params
    from host_tools.memory.arena import make_plan, make_whole_plan
    trained = trained_params(graph)
    chosen = make_plan(graph, trained)
    graph.patch = chosen.stage          # "auto" resolved once: the writer plans with this stage
    whole = make_whole_plan(graph, trained)
    line = f"memory plan: arena {chosen.arena_size} bytes (every tensor whole: {whole.arena_size})"
    ways = []
    if chosen.stage:
        st = chosen.stage
        extra = patching.stage_macs(graph, st, st.ops) / max(patching.stage_macs(graph, None, st.ops), 1) - 1
        ways.append(f"the first {st.ops} layers in {st.rows}x{st.cols} patches ({extra * 100:.0f}% more "
                    f"multiply-accumulates in those layers)")
    if chosen.rows:
        ways.append(f"{len(chosen.rows)} frozen blocks row by row")
    if chosen.fused:
        ways.append(f"{len(chosen.fused)} blocks' backward one channel at a time")
    if chosen.recompute:
        from math import prod
        macs = sum(prod(graph.shapes[graph.ops[k - 2].output]) * graph.shapes[graph.ops[k - 2].input][0]
                   for k in chosen.recompute)
        ways.append(f"{len(chosen.recompute)} of them recomputing their expansion's clamp mask ({macs} more "
                    f"multiply-accumulates per step)")
    line += _input_line(graph, chosen)
    from host_tools.model.graph import CONCAT, LUT, MUL
    return line + ("; " + ", ".join(ways) if ways else "") + "".join(_op_note(graph, chosen, *kind) for kind in (
        (LUT, "lookup-table activations", "a block with a table between its convs runs op by op"),
        (CONCAT, "concatenations", "a block ending in one or with one between its convs runs op by op"),
        (MUL, "gate multiplies (squeeze-and-excitation)", "a block with one between its convs runs op by op")))


def _input_line(graph, plan):
    """Where the device keeps the model input (--input-buffer)."""
    c, h, w = graph.shapes[graph.input]
    where = getattr(graph, "input_buffer", "caller")
    if where == "rows":
        band = plan.capacity[graph.input]
        return (f"\ninput: fed row by row (a reader, or a buffer copied from) into a band of {band // (w * c)} of its "
                f"{h} rows in the arena, {band} bytes (the whole frame: {c * h * w}), at offset "
                f"{plan.act_offset[graph.input]}")
    if where == "model":
        return f"\ninput: whole in the arena, {c * h * w} bytes at offset 0 (Model.input_buffer())"
    return "\ninput: read where the caller keeps it (no copy in the arena)"


def _op_note(graph, plan, kind, what, blocks):
    """Where the ops of a kind (lookup tables, concatenations) run: in the patch stage's tiles, else on
    whole tensors. A row-streamed block, and a block whose backward runs fused, is three convs in a
    row (and a residual add): other ops in or after it make it run op by op."""
    ks = [k for k, op in enumerate(graph.ops) if op.kind == kind]
    if not ks:
        return ""
    patched = sum(k < plan.stage.ops for k in ks) if plan.stage else 0
    return (f"\n{what}: {len(ks)}, {patched} in the patch stage, {len(ks) - patched} on whole tensors "
            f"(row-streamed and fused-backward blocks step around them: {blocks})")


def _int8_top1(graph, val, scored, **scaling):
    """Print the int8 graph's top-1 on the labelled images of `val` (the device's arithmetic)."""
    from host_tools.data_checks import check_labels
    from host_tools.frontends.calibrate import load_data
    from host_tools.frontends.int8_sim import Int8Simulation
    from host_tools.frontends.torch_fx import quantize_input
    x, y = load_data(val, graph.shapes[graph.input], **scaling)
    pred = Int8Simulation(graph).run(quantize_input(graph, x), desc="int8 simulation").argmax(1)
    if y is not None and scored:
        check_labels(y, graph.classifier().weight.shape[0], val)
        print(f"int8 top-1 on {val}: {np.mean(pred == y) * 100:.2f}% ({len(x)} images)")
    else:
        print(f"ran {len(x)} images of {val} (no labels to score, or a fresh classifier)")


def _floats(text):
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None


def command(args):
    from host_tools.data_checks import check_labels, check_range, check_torch_model_on
    from host_tools.model import mct_format
    from host_tools.frontends.calibrate import load_data
    from host_tools.frontends.torch_fx import format_report
    from host_tools.frontends import select as frontend_select

    if args.list_ops:
        print(frontend_select.supported_ops_markdown())
        return 0
    if not args.model or not args.output:
        raise UserError("give MODEL and -o OUTPUT.mct (or --list-ops)")
    kind = frontend_select.detect(args.model, args.source)
    if kind == "tflite":
        from host_tools.frontends.tflite_int8 import load_tflite
        for opt, val in (("--calib", args.calib), ("--weights", args.weights)):
            if val:
                raise UserError(f"{opt} does not apply to a .tflite model (it is already int8: its own "
                                f"quantization is kept)")
        if args.num_classes is not None:
            raise UserError("--num-classes applies to --from mit-int8")
        graph = load_tflite(args.model, n_bias_update=args.n_bias_update, train_classifier=args.train_classifier)
        print(format_report(graph, []))
        if args.val:
            _int8_top1(graph, args.val, scored=True)
    elif kind == "mit-int8":
        from host_tools.frontends.mit import load_mit
        for opt, val in (("--calib", args.calib), ("--weights", args.weights)):
            if val:
                raise UserError(f"{opt} does not apply to --from mit-int8 (the model is already int8)")
        graph = load_mit(args.model, num_classes=args.num_classes, n_bias_update=args.n_bias_update,
                         train_classifier=args.train_classifier)
        print(format_report(graph, []))
        if args.val:
            # MIT input: real = (pixel - 128) / 127.5, so images in [0, 1] map to x*255/127.5 - 128/127.5
            _int8_top1(graph, args.val, args.num_classes is None, scale=255 / 127.5, offset=-128 / 127.5)
    else:
        if args.num_classes is not None:
            raise UserError("--num-classes applies to --from mit-int8; change the Linear layer of your model instead")
        if not args.calib:
            raise UserError(f"a float model ({kind}) needs --calib DATA (a .npz with x float32 [N, C, H, W], "
                            "a few hundred training images) to calibrate the activation ranges")
        from host_tools.frontends.torch_fx import convert_torch, evaluate
        model, x_cal, y_cal = frontend_select.float_model(kind, args.model, args.weights, args.calib)
        n_classes = check_torch_model_on(model, x_cal, args.calib)
        check_labels(y_cal, n_classes, args.calib)
        offset, folded = 0.0, None
        if args.input_mean is not None or args.input_std is not None:
            from host_tools.frontends.normalize import fold_normalization
            if args.input_scale != 1 / 255 or args.input_zero != -128:
                raise UserError("--input-mean/--input-std set the input's scale and zero point themselves: "
                                "leave out --input-scale and --input-zero")
            folded = fold_normalization(model, args.input_mean or [0.0], args.input_std or [1.0], x_cal.shape[1:])
            model, offset = folded.model, folded.offset
            args.input_zero = folded.input_zero
        check_range(x_cal - offset, args.input_scale, args.input_zero, args.calib)
        graph = convert_torch(model, x_cal - offset, input_scale=args.input_scale, input_zero=args.input_zero,
                              method=args.method, percentile=args.percentile,
                              n_bias_update=args.n_bias_update, train_classifier=args.train_classifier)
        if folded:
            graph.meta["normalization"] = folded.describe(*(v or d for v, d in ((args.input_mean, [0.0]),
                                                                                (args.input_std, [1.0]))))
            print(graph.meta["normalization"])
        x_val, y_val = load_data(args.val, None if x_cal.ndim == 3 else graph.shapes[graph.input]) if args.val \
            else (x_cal[:500], None)
        x_val = frontend_select.model_layout(model, x_val)
        if args.val:
            check_range(x_val - offset, args.input_scale, args.input_zero, args.val)
            check_labels(y_val, n_classes, args.val)
        rows, r = evaluate(model, graph, x_val - offset, y_val)
        print(format_report(graph, rows))
        what = args.val or f"the first {len(x_val)} calibration images"
        line = f"int8 vs float top-1 agreement on {what}: {r['agreement'] * 100:.2f}%"
        if "float_acc" in r:
            line += f"; accuracy float {r['float_acc'] * 100:.2f}%, int8 {r['int8_acc'] * 100:.2f}%"
        print(line)
    frontend_select.check_logits(graph)
    if args.scheme:
        graph.n_bias_update, graph.weight_update = load_scheme(args.scheme)
    elif args.weight_update:
        graph.weight_update = args.weight_update
    graph.patch = args.patch
    graph.recompute_masks = args.recompute == "auto"
    graph.update_rule, graph.backward = args.update_rule, _backward(args)     # the plan depends on the backward
    graph.input_buffer = args.input_buffer
    print(_memory_line(graph))
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        raise UserError(f"the output folder {out_dir} does not exist")
    mct_format.write(graph, args.output)
    trained = f"classifier{' + ' if graph.n_bias_update else ''}" if graph.train_classifier else ""
    if graph.n_bias_update:
        trained += f"biases of the last {graph.n_bias_update} convs"
    if graph.weight_update:
        trained += ("; " if trained else "") + "weights of convs " + ", ".join(
            f"{i} ({r:g})" for i, r in sorted(graph.weight_update.items()))
    print(f"wrote {args.output} ({os.path.getsize(args.output)} bytes; device trains: {trained or 'nothing'})")
    from host_tools.model.numerics import model_trained_bytes
    model = mct_format.read(args.output)
    n = sum(model.trained_count)
    if n:
        print(f"trained copies in RAM: {model_trained_bytes(model)} bytes for {n} trained values "
              f"(update rule {args.update_rule}, {graph.backward} backward), arena {model.arena_size} bytes")
    return 0
