"""Every board test script (tests/board/*.py with a .exp) on a unix firmware, optionally under a
wrapper (valgrind) or a sanitizer build: `make valgrind`, `make sanitize-board`.

    MCT_BOARD_FIRMWARE=path/to/micropython   another unix firmware (the ASan build)
    MCT_BOARD_WRAPPER="valgrind --error-exitcode=1 ..."   a command put before it

Runs each script with the files the pytest suite gives it, checks the exit status (valgrind's
error exit code, ASan's report) and the expected output. Exit status 1 if any fails.
"""
import os
import shlex
import stat
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from host_tools.boards import runners as boards  # noqa: E402
from host_tools.boards import check  # noqa: E402
from host_tools.model import mct_format  # noqa: E402
from tests.support.board_models import fixed_graph, normalise, numeric_models  # noqa: E402


def make_files(tmp: Path):
    numeric_models(tmp)                                   # model.mct, tiny_scale.mct, nan_table.mct
    frozen = fixed_graph(np.random.default_rng(5))
    frozen.n_bias_update, frozen.train_classifier = 0, False
    mct_format.write(frozen, tmp / "frozen.mct")
    mct_format.write(fixed_graph(np.random.default_rng(6), size=200, width=64), tmp / "huge.mct")
    m = mct_format.read(tmp / "model.mct")
    xs, ys = check.make_inputs(m, 12)
    (tmp / "inputs.bin").write_bytes(xs.tobytes())
    (tmp / "labels.bin").write_bytes(bytes(int(y) for y in ys))
    (tmp / "steps.txt").write_text(os.environ.get("MCT_LONGRUN_STEPS", "500") + "\n")


FILES = {
    "api_errors": ["model.mct", "frozen.mct", "huge.mct", "inputs.bin", "labels.bin"],
    "api_training": ["model.mct", "frozen.mct", "huge.mct", "inputs.bin", "labels.bin"],
    "reliability_hostile": ["model.mct", "huge.mct"],
    "reliability_numerics": ["model.mct", "tiny_scale.mct", "nan_table.mct", "fc_range.txt", "inputs.bin", "labels.bin"],
    "reliability_longrun": ["model.mct", "inputs.bin", "labels.bin", "steps.txt"],
}


def main():
    firmware = Path(os.environ.get("MCT_BOARD_FIRMWARE", boards.firmware_path("unix"))).resolve()
    wrapper = os.environ.get("MCT_BOARD_WRAPPER", "")
    failed = 0
    with tempfile.TemporaryDirectory(prefix="mct-boardscripts-") as tmp:
        tmp = Path(tmp)
        make_files(tmp)
        if wrapper:                                        # run_script runs one file: wrap it in a script
            shim = tmp / "micropython-wrapped"
            shim.write_text(f"#!/bin/sh\nexec {wrapper} {shlex.quote(str(firmware))} \"$@\"\n")
            shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
            firmware = shim
        for script, names in FILES.items():
            path = ROOT / "tests" / "board" / f"{script}.py"
            if not path.exists():
                continue
            res = boards.run_script("unix", path, [tmp / n for n in names], timeout=1800, heapsize="2M",
                                    firmware=firmware)
            exp = path.with_suffix(".py.exp")
            same = not exp.exists() or normalise(res.output) == normalise(exp.read_text())
            ok = res.returncode == 0 and same
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {script} (exit status {res.returncode})")
            if not ok:
                print(res.output[-6000:])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
