"""python -m host_tools.fleet: a fleet of boards and C-core clients learning together over Flower.

    python -m host_tools.fleet MODEL [--clients 100] [--rounds 10] [--boards unix,qemu-m3] ...

Splits Fashion-MNIST over the clients (Dirichlet alpha over classes), runs Flower's simulation
engine, and prints `fleet accuracy before X after Y (N clients, R rounds, B bytes per client per
round)`. The first clients are the boards named by --boards; the others run the C core.
"""
import argparse
import sys
from pathlib import Path

from host_tools.errors import UserError


def add_run_arguments(p, clients, rounds):
    """The options every fleet run shares (the simulation, the deployment, bench-fleet): the split
    and the rounds."""
    p.add_argument("--clients", type=int, default=clients)
    p.add_argument("--per-client", type=int, default=60, help="images per client on average")
    p.add_argument("--alpha", type=float, default=0.5, help="Dirichlet concentration over classes")
    p.add_argument("--rounds", type=int, default=rounds)
    p.add_argument("--steps", type=int, default=40, help="local training steps per round (E)")
    p.add_argument("--lr", type=float, default=0.05)


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m host_tools.fleet", description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="the .mct every client starts from (e.g. build/demo/fashion.mct)")
    add_run_arguments(p, clients=100, rounds=10)
    p.add_argument("--rule", default="fedavg", choices=("fedavg", "fedavgm"))
    p.add_argument("--fraction", type=float, default=1.0, help="of the clients trained each round")
    p.add_argument("--boards", default="", help="comma-separated boards of the first clients")
    p.add_argument("--crash", type=float, default=0.0, help="fraction of clients crashing mid-round")
    p.add_argument("--checkpoint", help="the server's checkpoint (a restarted run resumes from it)")
    p.add_argument("--cpus", type=int, default=2, help="CPUs of the simulation engine")
    p.add_argument("--out", default="build/fleet", help="directory of the split, config and result")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-v", "--verbose", action="store_true", help="Flower's log")
    return p.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    try:
        from host_tools.fleet import data as fdata
        from host_tools.fleet import sim
        from host_tools.fleet.apps import FleetConfig
    except ImportError as e:
        raise UserError(f"{e}: the fleet needs Flower (make venv installs it)") from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    split_path = out / f"split-{args.clients}-{args.per_client}-{args.alpha}-{args.seed}.npz"
    if not split_path.is_file():
        fdata.save(fdata.make_split(args.clients, args.per_client, args.alpha, seed=args.seed), split_path)
    boards = [b for b in args.boards.split(",") if b]
    if len(boards) > args.clients:
        raise UserError(f"{len(boards)} boards for {args.clients} clients")
    cfg = FleetConfig(model=str(Path(args.model).resolve()), data=str(split_path.resolve()),
                      result=str((out / "result.json").resolve()), rounds=args.rounds, steps=args.steps,
                      lr=args.lr, rule=args.rule, fraction=args.fraction,
                      boards={str(i): b for i, b in enumerate(boards)},
                      workdir=str((out / "boards").resolve()), crash=args.crash,
                      checkpoint=str(Path(args.checkpoint).resolve()) if args.checkpoint else None)
    result = sim.run(cfg, out / "config.json", cpus=args.cpus, verbose=args.verbose)
    print(summary(result))
    return 0


def summary(result) -> str:
    acc = {int(k): v for k, v in result["accuracy"].items()}
    rounds = result["rounds"]
    lines = [f"round {r['round']}: accuracy {acc.get(r['round'], float('nan')):.1f} %, "
             f"{r['accepted']} updates ({r['boards']} from boards), {r['failed']} failed, "
             f"{r['rejected']} rejected, {r['seconds']:.1f} s" for r in rounds]
    boards = ", ".join(f"client {k} on {v}" for k, v in result["boards"].items()) or "none"
    lines.append(f"boards: {boards}; the other clients ran the C core (host_tools.ccore)")
    lines.append(f"fleet accuracy before {acc[min(acc)]:.1f} after {acc[max(acc)]:.1f} "
                 f"({result['clients']} clients, {max(acc)} rounds, {result['blob_bytes']} bytes per client "
                 f"per round)")
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
