"""`host_tools check MODEL`: the model on a board against the host reference."""

from host_tools.boards import runners as boards
from host_tools.boards.check import check_model

EPILOG = """example:
  host_tools check build/demo/fashion.mct --data build/demo/calib.npz --steps 5
  host_tools check model.mct --board qemu-m3
"""


HELP = "run a model on a board and compare it with the host reference"
DESCRIPTION = ("Run MODEL on a board (the unix port by default): its int8 forward "
               "must match the numpy reference bit for bit, and a few training steps "
               "must leave identical trained tensors.")


def add_arguments(p):
    p.add_argument("model", help="a .mct model file")
    p.add_argument("--board", default="unix", choices=boards.BOARDS)
    p.add_argument("--data", help=".npz with inputs 'x' (float in the model's input range, or int8) and labels 'y'; "
                                  "random inputs when absent")
    p.add_argument("--inputs", type=int, default=8, help="number of inputs to compare (default 8)")
    p.add_argument("--steps", type=int, default=3, help="training steps to compare (default 3)")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--timeout", type=float, default=600)


def command(args):
    r = check_model(args.model, args.board, args.inputs, args.steps, args.lr, args.data, args.timeout)
    print(f"forward: {r.forward_equal}/{r.forward_total} inputs bit-exact"
          + ("" if r.forward_equal == r.forward_total else f" (largest difference {r.max_step_diff} steps)"))
    if r.trains:
        same = "identical" if r.crc_board == r.crc_ref else "DIFFERENT"
        print(f"training: {len(r.losses_board)} steps, trained tensors {same} "
              f"(CRC board {r.crc_board:08x}, reference {r.crc_ref:08x})")
        for i, (a, b) in enumerate(zip(r.losses_board, r.losses_ref)):
            print(f"  step {i}: loss board {a:.6f}  reference {b:.6f}")
    else:
        print("training: the model has no trained tensors; forward only")
    print("check passed" if r.ok else "check FAILED")
    return 0 if r.ok else 1
