"""A fleet on Flower's deployment engine, on this machine: one SuperLink and one SuperNode per
client as separate processes, on loopback only, then `flwr run` of the fleet's Flower App
(host_tools/fleet/flower_app). On many machines the same commands run there instead: a SuperLink
on one, `flower-supernode --superlink HOST:PORT --node-config 'partition-id=K num-partitions=N'`
next to each board (docs/fleet.md).

    python -m host_tools.fleet.deployment MODEL [--clients 4] [--rounds 3] [--boards unix,qemu-m3]
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from host_tools.fleet import data as fdata
from host_tools.fleet.__main__ import add_run_arguments, summary
from host_tools.fleet.apps import FleetConfig
from host_tools.fleet.board import stop_leftovers

APP = Path(__file__).resolve().parent / "flower_app"
HOST = "127.0.0.1"


def _stop(procs):
    """End each process and what it started (its session: SuperExec, ClientApp processes)."""
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def _wait_for(port, proc, timeout=180):
    """Until something listens on HOST:port (the SuperLink takes a while to start)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the SuperLink exited (status {proc.returncode})")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"no SuperLink on {HOST}:{port} after {timeout} s")


def run(cfg: FleetConfig, out: Path, port=9180, timeout=3600) -> dict:
    """SuperLink on HOST:port, SuperNodes on HOST:port+1.., `flwr run`; the server's history."""
    out.mkdir(parents=True, exist_ok=True)
    n = fdata.load(cfg.data).n_clients
    config_path = (out / "fleet.json").resolve()
    cfg.save(config_path)
    Path(cfg.result).unlink(missing_ok=True)
    home = out / "flwr-home"                    # the flwr CLI's connection to this SuperLink
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(f'[superlink]\ndefault = "fleet"\n\n[superlink.fleet]\n'
                                      f'address = "{HOST}:{port}"\ninsecure = true\n')
    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ, FLWR_HOME=str(home.resolve()), PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    procs = []
    try:
        with open(out / "superlink.log", "w") as log:
            procs.append(subprocess.Popen(["flower-superlink", "--insecure", "--host", HOST, "--port", str(port)],
                                          env=env, stdout=log, stderr=subprocess.STDOUT, cwd=out,
                                          start_new_session=True))
        _wait_for(port, procs[0])
        for k in range(n):
            with open(out / f"supernode{k}.log", "w") as log:
                procs.append(subprocess.Popen(
                    ["flower-supernode", "--insecure", "--superlink", f"{HOST}:{port}", "--host", HOST,
                     "--port", str(port + 1 + k), "--node-config", f"partition-id={k} num-partitions={n}"],
                    env=env, stdout=log, stderr=subprocess.STDOUT, cwd=out, start_new_session=True))
        with open(out / "flwr-run.log", "w") as log:
            subprocess.run(["flwr", "run", str(APP), "fleet", "--stream", "--run-config",
                            f"fleet-config='{config_path}'"], env=env, stdout=log, stderr=subprocess.STDOUT,
                           timeout=timeout, cwd=out)
    finally:
        _stop(procs[::-1])
        stop_leftovers(cfg.workdir)
    if not Path(cfg.result).is_file():
        raise RuntimeError(f"the fleet's server wrote no result: see {out}/*.log")
    return json.loads(Path(cfg.result).read_text())


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m host_tools.fleet.deployment", description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    add_run_arguments(p, clients=4, rounds=3)
    p.add_argument("--boards", default="unix,qemu-m3", help="comma-separated boards of the first SuperNodes")
    p.add_argument("--port", type=int, default=9180, help="the SuperLink's; SuperNodes take the next ones")
    p.add_argument("--out", type=Path, default=Path("build/fleet/deployment"))
    args = p.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    split = out / "split.npz"
    fdata.save(fdata.make_split(args.clients, args.per_client, args.alpha), split)
    boards = [b for b in args.boards.split(",") if b]
    cfg = FleetConfig(model=str(Path(args.model).resolve()), data=str(split), result=str(out / "result.json"),
                      rounds=args.rounds, steps=args.steps, lr=args.lr,
                      boards={str(i): b for i, b in enumerate(boards)}, workdir=str(out / "boards"))
    print(summary(run(cfg, out, args.port)))


if __name__ == "__main__":
    main()
