"""Seed corpus for the fuzz targets: valid models made by the project's own writer.

    python fuzz/make_corpus.py OUT_DIR [--n 48]

Random graphs of tests/support/graphgen.py (every op kind, kernel, stride, padding, groups, zero point,
with and without trained tensors), the board tests' fixed graph, and the demo model when it was
built (build/demo/fashion.mct, from the PyTorch converter), else the demo network converted with
random weights when torch is available.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from host_tools.model import mct_format  # noqa: E402
from tests.support.graphgen import random_graph  # noqa: E402


def demo_model():
    built = ROOT / "build" / "demo" / "fashion.mct"
    if built.exists():
        return built.read_bytes()
    try:
        import torch
        from host_tools.frontends.torch_fx import convert_torch
        sys.path.insert(0, str(ROOT / "examples"))
        from fashion_net import FashionNet
    except ImportError:
        return None
    torch.manual_seed(0)
    x = np.random.default_rng(0).uniform(0, 1, size=(8, 1, 28, 28)).astype(np.float32)
    return mct_format.to_bytes(convert_torch(FashionNet().eval(), x, n_bias_update=2))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=48, help="random graphs")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = {}
    for seed in range(args.n):
        rng = np.random.default_rng(1000 + seed)
        kw = {}
        if seed % 4 == 1:
            kw["n_bias_update"] = 0
        if seed % 3 == 2:
            kw["with_add"] = False
        gr = random_graph(rng, **kw)
        if seed % 8 == 5:
            gr.train_classifier, gr.n_bias_update = False, 0       # nothing trained
        seeds[f"graph{seed:03d}.mct"] = mct_format.to_bytes(gr)
    try:
        from tests.support.board_models import fixed_graph
        seeds["fixed.mct"] = mct_format.to_bytes(fixed_graph(np.random.default_rng(1234)))
    except Exception as e:  # the board tests' helper may change; the seeds do not depend on it
        print(f"make_corpus: no fixed graph ({e})", file=sys.stderr)
    demo = demo_model()
    if demo is not None:
        seeds["fashion.mct"] = demo
    for name, data in seeds.items():
        mct_format.load(data)                 # every seed is valid
        (args.out / name).write_bytes(data)
    print(f"make_corpus: {len(seeds)} models in {args.out}, largest {max(map(len, seeds.values()))} bytes")


if __name__ == "__main__":
    main()
