"""The Flower apps of a fleet: `client_app` (one client per Flower node: a board or the C core,
with its share of the data) and `server_app` (SparseFleet over update blobs).

Both read a FleetConfig from the JSON file named by the run config key `fleet-config` (Flower's
deployment engine: `flwr run ... --run-config "fleet-config='...'"`) or by the environment
variable MCUTRAIN_FLEET_CONFIG (the simulation engine, host_tools.fleet.sim).
"""
import atexit
import functools
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Optional

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from host_tools.fleet import data as fdata
from host_tools.fleet import faults
from host_tools.fleet.board import BoardSession
from host_tools.fleet.client import CoreClient, accuracy, local_order
from host_tools.fleet.strategy import SparseFleet, blob_record, record_blob

ENV = "MCUTRAIN_FLEET_CONFIG"


@dataclass
class FleetConfig:
    model: str                      # the .mct file every client starts from
    data: str                       # the split (host_tools.fleet.data.save)
    result: str                     # the server writes its history here (JSON)
    rounds: int = 10
    steps: int = 40                 # E: local training steps per round
    lr: float = 0.05
    rule: str = "fedavg"            # host_tools.fleet.strategy.RULES
    fraction: float = 1.0           # of the clients sampled each round
    boards: Dict[str, str] = field(default_factory=dict)    # partition id -> board (unix, qemu-m3, ...)
    workdir: str = "build/fleet/boards"
    checkpoint: Optional[str] = None
    crash: float = 0.0              # faults.crashes: this fraction of clients fails mid-round
    hostile: Dict[str, str] = field(default_factory=dict)   # partition id -> faults.HOSTILE kind
    board_resets: Dict[str, int] = field(default_factory=dict)  # partition id -> round its board resets in

    def save(self, path):
        Path(path).write_text(json.dumps(asdict(self), indent=1))


def read_config(context: Context) -> FleetConfig:
    path = context.run_config.get("fleet-config") or os.environ.get(ENV)
    if not path:
        raise RuntimeError(f"no fleet configuration: set the run config 'fleet-config' or ${ENV}")
    return FleetConfig(**json.loads(Path(path).read_text()))


# --- clients --------------------------------------------------------------------------------

_clients = {}       # per process: partition id -> its client (a board keeps running across rounds)


@atexit.register
def _close_boards():
    for client in _clients.values():
        if isinstance(client, BoardSession):
            client.close()


@functools.lru_cache(maxsize=2)
def _split(path):
    return fdata.load(path)


def _client(cfg: FleetConfig, pid: int):
    key = (cfg.data, pid)
    if key not in _clients:
        split = _split(cfg.data)
        x, y = split.train_x[pid], split.train_y[pid]
        board = cfg.boards.get(str(pid))
        if board:
            _clients[key] = BoardSession(board, cfg.model, x, y, Path(cfg.workdir) / f"client{pid}")
        else:
            _clients[key] = CoreClient(Path(cfg.model).read_bytes(), x, y)
        _clients[key].n = len(y)
    return _clients[key]


client_app = ClientApp()


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    cfg = read_config(context)
    pid = int(context.node_config["partition-id"])
    rnd = int(msg.content["config"]["server-round"]) + int(msg.content["config"].get("round-offset", 0))
    client = _client(cfg, pid)
    order = local_order(client.n, cfg.steps, seed=rnd * 100003 + pid)
    is_board = isinstance(client, BoardSession)
    if is_board and cfg.board_resets.get(str(pid)) == rnd:
        faults.reset_mid_round(client, record_blob(msg.content["arrays"]), order, cfg.lr)
    blob = client.round(record_blob(msg.content["arrays"]), order, cfg.lr)
    if faults.crashes(cfg.crash, rnd, pid, int(context.node_config["num-partitions"])):
        raise faults.ClientCrash(f"client {pid} crashed in round {rnd} before it replied")
    n = client.n
    if str(pid) in cfg.hostile:
        blob, n = faults.hostile_update(cfg.hostile[str(pid)], blob, n, rnd)
    return Message(RecordDict({"arrays": blob_record(blob),
                               "metrics": MetricRecord({"num-examples": n, "board": int(is_board)})}),
                   reply_to=msg)


# --- server ---------------------------------------------------------------------------------

class TimedFleet(SparseFleet):
    """SparseFleet that records each round's wall time, failures, rejections and board replies."""

    def __init__(self, *args, round_offset=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.round_offset, self.history, self._t0 = round_offset, [], None

    def configure_train(self, server_round, arrays, config, grid):
        self._t0 = time.monotonic()
        config["round-offset"] = self.round_offset
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round, replies):
        replies = list(replies)
        boards = sum(1 for m in replies if not m.has_error() and "metrics" in m.content
                     and m.content["metrics"].get("board") == 1)
        arrays, metrics = super().aggregate_train(self.round_offset + server_round, replies)
        self.history.append({"round": self.round_offset + server_round, "seconds": time.monotonic() - self._t0,
                             "boards": boards, **{k: int(v) for k, v in metrics.items()}})
        return arrays, metrics


server_app = ServerApp()


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = read_config(context)
    model_data = Path(cfg.model).read_bytes()
    split = fdata.load(cfg.data)
    strategy = TimedFleet(model_data, rule=cfg.rule, checkpoint=cfg.checkpoint, fraction_train=cfg.fraction,
                          min_train_nodes=max(1, round(cfg.fraction * split.n_clients)),
                          min_available_nodes=split.n_clients)
    resumed = bool(cfg.checkpoint) and strategy.state.restore(cfg.checkpoint)
    strategy.round_offset = strategy.state.round
    accuracies = {}

    def evaluate(server_round, arrays):
        acc = accuracy(model_data, record_blob(arrays), split.global_x, split.global_y)
        accuracies[strategy.round_offset + server_round] = acc
        return MetricRecord({"accuracy": acc})

    strategy.start(grid, strategy.initial_record(), num_rounds=cfg.rounds - strategy.round_offset,
                   train_config=ConfigRecord(), evaluate_fn=evaluate)
    Path(cfg.result).write_text(json.dumps({
        "resumed_from": strategy.round_offset if resumed else None, "accuracy": accuracies,
        "rounds": strategy.history, "rejected": strategy.rejected,
        "blob_bytes": len(strategy.state.blob()), "model_bytes": len(model_data),
        "final_blob": strategy.state.blob().hex(),
        "clients": split.n_clients, "boards": cfg.boards}, indent=1))
