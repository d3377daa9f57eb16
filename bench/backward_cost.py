"""`make bench-backward`: instructions per training step of the demo model on qemu-m3 and qemu-m0
(no FPU: the float32 backward is soft-float there), float32 backward against the integer backward,
qemu -icount shift=0 through bench/mcu_cost.py. Writes the table into docs/numerics.md."""
import datetime
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.update_rules import DEMO, SCHEMES, convert, write_block  # noqa: E402
from host_tools.boards import runners as boards  # noqa: E402
from host_tools.model import mct_format  # noqa: E402

BEGIN, END = "<!-- bench-backward-cost:begin -->", "<!-- bench-backward-cost:end -->"
BOARDS = ("qemu-m3", "qemu-m0")
VARIANTS = (("master", "float"), ("stochastic", "float"), ("stochastic", "int"))


def main():
    files = [DEMO / n for n in ("train.bin", "train_labels.bin")]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        sys.exit(f"bench-backward: missing {', '.join(missing)}: run make demo first")
    graph = convert()
    rows = []
    for board in BOARDS:
        boards.build_firmware(board)
    with tempfile.TemporaryDirectory(prefix="mct-bench-") as tmp:
        for scheme, weights in SCHEMES.items():
            graph.weight_update = dict(weights)
            for rule, backward in VARIANTS:
                graph.update_rule, graph.backward = rule, backward
                model = Path(tmp) / "fashion.mct"
                model.write_bytes(mct_format.to_bytes(graph))
                for board in BOARDS:
                    res = boards.run_script(board, ROOT / "bench" / "mcu_cost.py", [model, *files], icount=True,
                                            timeout=900)
                    line = [ln for ln in res.output.splitlines() if ln.startswith("RESULT")]
                    if res.returncode or not line:
                        sys.exit(f"bench-backward: {board} failed:\n{res.output}")
                    fwd, step, workspace, arena, trained = map(int, line[0].split()[1:])
                    rows.append((scheme, rule, backward, board, fwd, step, trained))
                    print(f"{scheme:26s} {rule:10s} {backward:5s} {board}: forward {fwd:,} step {step:,} "
                          f"(backward + update {step - fwd:,}) trained {trained:,} B", flush=True)
    base = {(s, b): st - f for s, r, bw, b, f, st, _ in rows if (r, bw) == ("stochastic", "float")}
    table = ["| scheme | update rule | backward | board | instructions / inference | instructions / training step "
             "| step − inference | vs float32 backward | trained copies |", "|---|---|---|---|---|---|---|---|---|"]
    for scheme, rule, backward, board, fwd, step, trained in rows:
        table.append(f"| {scheme} | {rule} | {backward} | {board} | {fwd:,} | {step:,} | {step - fwd:,} | "
                     f"{(step - fwd) / base[(scheme, board)]:.2f} | {trained:,} B |")
    qemu = subprocess.run(["qemu-system-arm", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    stamp = (f"`make bench-backward` (bench/backward_cost.py), {datetime.date.today()}, {platform.machine()} host, "
             f"{qemu}, `-icount shift=0`; bench/mcu_cost.py: mean over 10 images, lr 0.05. 'step − inference' is "
             f"the loss, backward and updates; the last column compares it with the float32 backward and the "
             f"stochastic rule on the same board.")
    write_block(BEGIN, END, stamp, table)


if __name__ == "__main__":
    main()
