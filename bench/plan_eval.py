"""examples/fashion_new_classes.py simulated on the host with the device's C core (bit-exact with
the board): each given .mct trained on build/demo/train.bin (2 epochs, lr 0.05, file order), scored
on test.bin. Checks planned schemes on data the search never scored.

    .venv/bin/python bench/plan_eval.py build/demo/fashion.mct build/demo/fashion_plan.mct ...
"""
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import demo_images as images  # noqa: E402  (bench/, the script's folder)
from host_tools.model import mct_format  # noqa: E402
from host_tools.ccore.core import CoreModel  # noqa: E402
from host_tools.scheme.schemes import current_scheme  # noqa: E402



def main(paths, epochs=2, lr=0.05):
    (xtr, ytr), (xte, yte) = images("train"), images("test")
    for p in paths:
        data = Path(p).read_bytes()
        core = CoreModel(data)
        before = 100 * np.mean(core.predict(xte) == yte)
        t = time.time()
        core.train(xtr, ytr, np.tile(np.arange(len(xtr)), epochs), lr)
        after = 100 * np.mean(core.predict(xte) == yte)
        print(f"{p}: {current_scheme(mct_format.load(data)).describe()}; workspace "
              f"{core.mem()['workspace']} bytes; accuracy before {before:.1f} % after {after:.1f} % "
              f"({time.time() - t:.1f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
