"""The long training run of docs/reliability.md on one board: `make reliability`.

    python fuzz/longrun.py --board unix --steps 10000

Prints the heap (free bytes after gc.collect()) and the arena peak at 6 marks; exit status 1 if
the heap after the last step differs from the heap after the first, or the arena peak moved.
"""
import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from host_tools.boards import check  # noqa: E402
from host_tools.model import mct_format  # noqa: E402
from tests.support.board_models import board_graph, long_run  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="unix")
    ap.add_argument("--steps", type=int, default=10000)
    ap.add_argument("--model", type=Path, help="a .mct file (default: the board tests' model)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mct-longrun-") as tmp:
        tmp = Path(tmp)
        if args.model:
            (tmp / "model.mct").write_bytes(args.model.read_bytes())
        else:
            mct_format.write(board_graph(), tmp / "model.mct")
        m = mct_format.read(tmp / "model.mct")
        xs, ys = check.make_inputs(m, 12)
        (tmp / "inputs.bin").write_bytes(np.asarray(xs).tobytes())
        (tmp / "labels.bin").write_bytes(bytes(int(y) for y in ys))
        figures, out = long_run(args.board, args.steps, tmp)
    print(f"{args.board}, {args.steps} steps:")
    print(out.strip())
    ok = figures and figures[0][1] == figures[-1][1] and figures[0][2] == figures[-1][2]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
