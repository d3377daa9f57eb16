"""One parity figure per front end of `host_tools convert`, on FrontNet (examples/frontend_models.py)
and the Fashion-MNIST test images it wrote:

- torch.fx, torch.export, TorchScript, ONNX: the largest difference between the rebuilt float model
  and its source (the PyTorch model; the onnx package's reference evaluator, as probabilities), and
  the top-1 agreement of the int8 model (convert's arithmetic) with the source;
- TF-Lite int8: against the TF-Lite interpreter's reference kernels, the largest int8 logit
  difference and the top-1 agreement (host_tools/tflite_parity.py).

    python examples/frontend_models.py build/frontends
    python bench/frontend_parity.py build/frontends
"""
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))

from frontend_models import CheckedFrontNet, FrontNet  # noqa: E402
from host_tools.frontends import torch_export as fe  # noqa: E402
from host_tools.frontends.torch_fx import convert_torch, quantize_input, run_graph  # noqa: E402
from host_tools.frontends.onnx_model import load_onnx  # noqa: E402
from host_tools.frontends.select import float_model  # noqa: E402
from host_tools.frontends.tflite_parity import tflite_parity  # noqa: E402


def main(folder):
    torch.set_num_threads(2)
    calib, val = os.path.join(folder, "calib.npz"), os.path.join(folder, "val.npz")
    x = np.load(val)["x"]
    model = FrontNet()
    model.load_state_dict(torch.load(os.path.join(folder, "frontnet.pt"), weights_only=True))
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    from onnx.reference import ReferenceEvaluator
    onnx_path = os.path.join(folder, "frontnet.onnx")
    probs = ReferenceEvaluator(onnx_path).run(None, {"input_1": x.transpose(0, 2, 3, 1)})[0]
    checked = CheckedFrontNet()
    checked.load_state_dict(model.state_dict())
    rebuilt = {
        "torch.fx (file.py:FrontNet)": (model.eval(), logits, False),
        "torch.export (CheckedFrontNet, exported for the user)": (
            fe.module_from_exported(fe.export_module(checked.eval(), x[:2])), logits, False),
        "torch.export (.pt2)": (fe.module_from_exported(fe.load_exported(os.path.join(folder, "frontnet.pt2"))),
                                logits, False),
        "TorchScript (.pt)": (float_model("torchscript", os.path.join(folder, "frontnet_ts.pt"), None, calib)[0],
                              logits, False),
        "ONNX (.onnx)": (load_onnx(onnx_path, x.shape[1:]), probs, True),
    }
    print(f"{len(x)} Fashion-MNIST test images")
    print(f"{'front end':<56} {'float max |diff| vs source':>28} {'int8 top-1 = source':>20}")
    xc = np.load(calib)["x"]
    for name, (gm, want, softmax) in rebuilt.items():
        with torch.no_grad():
            got = gm(torch.from_numpy(x))
            got = (torch.softmax(got, 1) if softmax else got).numpy()
        graph = convert_torch(gm, xc)
        pred = run_graph(graph, quantize_input(graph, x)).reshape(len(x), -1).argmax(1)
        print(f"{name:<56} {float(np.abs(got - want).max()):>28.2e} "
              f"{float((pred == want.argmax(1)).mean()) * 100:>19.1f}%")
    r = tflite_parity(os.path.join(folder, "frontnet.tflite"), x)
    print(f"TF-Lite int8 (.tflite) vs the TF-Lite interpreter (reference kernels): int8 logits differ by at most "
          f"{r['logits_max']} steps, top-1 agreement {r['top1'] * 100:.1f}%; op by op on TF-Lite's inputs, "
          f"largest difference per op {r['per_op']}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/frontends")
