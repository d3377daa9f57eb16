"""A small fleet through Flower's ClientApp (host_tools/fleet/apps.py) and the server's rule:
3 clients, one of them the unix-port board, 2 rounds. The board's update is bit-identical to the
C core's doing the same round; a board reset mid-round fails that round only and the board
rejoins from its last saved model; a blob of another model is refused by the board with a message.

Flower's engines (simulation with Ray, SuperLink/SuperNodes) run in make demo-fleet and make
bench-fleet: starting them takes about a minute, too long for a test.
"""
import json
import time

import numpy as np
import pytest

pytest.importorskip("flwr", reason="Flower is not installed: make venv installs requirements.txt")
from flwr.app import ConfigRecord, Context, Error, Message, Metadata, RecordDict  # noqa: E402
from flwr.serverapp import Grid  # noqa: E402
from flwr.supercore.task_identity import TaskIdentity  # noqa: E402

from tests.support.graphgen import random_model  # noqa: E402
from host_tools.fleet import apps  # noqa: E402
from host_tools.fleet import blob as fblob  # noqa: E402
from host_tools.fleet import data as fdata  # noqa: E402
from host_tools.fleet.__main__ import summary  # noqa: E402
from host_tools.fleet.board import BoardFailed, BoardSession, board_available  # noqa: E402
from host_tools.fleet.client import CoreClient, local_order  # noqa: E402
from host_tools.fleet.strategy import SparseFleet, blob_record, record_blob  # noqa: E402

pytestmark = pytest.mark.skipif(not board_available("unix"), reason="no unix firmware: make firmware-unix")
BOARDS = [pytest.param(b, marks=pytest.mark.skipif(not board_available(b), reason=f"no {b} firmware: make firmware-{b}"))
          for b in ("unix", "qemu-m3")]


def _setup(tmp_path, seed=4, n_clients=3, n_images=16, board="unix", **cfg):
    rng, data, m = random_model(seed, {"update_rule": "master"}, n_bias_update=2)
    size = int(np.prod(m.input_shape))

    def images(n):
        return rng.integers(-128, 128, (n, size)).astype(np.int8), rng.integers(0, m.n_classes, n).astype(np.uint8)

    parts = [images(n_images) for _ in range(2 * n_clients)]
    gx, gy = images(40)
    split = fdata.Split([p[0] for p in parts[:n_clients]], [p[1] for p in parts[:n_clients]],
                        [p[0] for p in parts[n_clients:]], [p[1] for p in parts[n_clients:]], gx, gy)
    (tmp_path / "model.mct").write_bytes(data)
    fdata.save(split, tmp_path / "split.npz")
    config = apps.FleetConfig(model=str(tmp_path / "model.mct"), data=str(tmp_path / "split.npz"),
                              result=str(tmp_path / "result.json"), steps=10, lr=0.5, boards={"0": board},
                              workdir=str(tmp_path / "boards"), **cfg)
    config.save(tmp_path / "fleet.json")
    return data, m, split, config


def _context(tmp_path, pid):
    """A SuperNode's context (partition pid of 3); the ServerApp's: pid None."""
    node_config = {} if pid is None else {"partition-id": pid, "num-partitions": 3}
    return Context(run_id=1, node_id=0 if pid is None else pid + 1, node_config=node_config, state=RecordDict(),
                   run_config={"fleet-config": str(tmp_path / "fleet.json")})


def _train(tmp_path, pid, blob, rnd):
    """One round of client pid through Flower's ClientApp, as a SuperNode would call it."""
    md = Metadata(run_id=1, message_id=f"{rnd}-{pid}", src_node_id=0, dst_node_id=pid + 1, reply_to_message_id="",
                  group_id=str(rnd), created_at=time.time(), ttl=600.0, message_type="train")
    msg = Message(RecordDict({"arrays": blob_record(blob), "config": ConfigRecord({"server-round": rnd})}),
                  metadata=md)
    return apps.client_app(msg, _context(tmp_path, pid)).content


class InProcessGrid(Grid):
    """Flower's Grid, in this process: each message goes to its node's ClientApp, called directly
    (as a SuperNode calls it); an exception becomes the error reply Flower's runtime sends."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path

    def set_run(self, run):
        pass

    @property
    def run(self):
        return None

    def create_message(self, *args, **kwargs):
        raise NotImplementedError

    def get_node_ids(self):
        return [1, 2, 3]

    def push_messages(self, messages):
        raise NotImplementedError

    def pull_messages(self, message_ids):
        raise NotImplementedError

    def send_and_receive(self, messages, *, timeout=None):
        replies = []
        for msg in messages:
            try:
                replies.append(apps.client_app(msg, _context(self.tmp_path, msg.metadata.dst_node_id - 1)))
            except Exception as e:     # what Flower's runtime does with a ClientApp's exception
                replies.append(Message(Error(code=0, reason=str(e)), reply_to=msg))
        return replies


@pytest.fixture
def server_identity():
    """The ServerApp's task identity, which Flower's runtime sets before it runs the ServerApp."""
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1
    yield
    TaskIdentity.run_id = TaskIdentity.node_id = TaskIdentity.task_id = None


@pytest.mark.usefixtures("server_identity")
def test_server_app_survives_a_board_reset_and_resumes_after_a_restart(tmp_path):
    """The ServerApp and ClientApps through a Grid: the board resets in round 2 (a failure, the
    round completes), rejoins in round 3; the server, stopped after round 3, resumes at round 4
    from its checkpoint."""
    data, m, split, cfg = _setup(tmp_path, rounds=3, board_resets={"0": 2},
                                 checkpoint=str(tmp_path / "global.npz"))
    apps.server_app(InProcessGrid(tmp_path), _context(tmp_path, None))
    first = json.loads((tmp_path / "result.json").read_text())
    assert [(r["accepted"], r["failed"], r["boards"]) for r in first["rounds"]] == [(3, 0, 1), (2, 1, 0), (3, 0, 1)]
    assert first["resumed_from"] is None and sorted(map(int, first["accuracy"])) == [0, 1, 2, 3]
    assert "3 clients, 3 rounds" in summary(first)
    cfg.rounds = 4
    cfg.save(tmp_path / "fleet.json")
    apps.server_app(InProcessGrid(tmp_path), _context(tmp_path, None))
    second = json.loads((tmp_path / "result.json").read_text())
    assert second["resumed_from"] == 3 and [r["round"] for r in second["rounds"]] == [4]
    # it went on from round 3's global tensors
    assert second["accuracy"]["3"] == first["accuracy"]["3"]


@pytest.fixture(autouse=True)
def _close_boards():
    yield
    for client in apps._clients.values():
        if isinstance(client, BoardSession):
            client.close()
    apps._clients.clear()


@pytest.mark.parametrize("board", BOARDS)
def test_three_clients_two_rounds_one_a_board(tmp_path, board):
    data, m, split, cfg = _setup(tmp_path, board=board)
    server = SparseFleet(data)
    blob = record_blob(server.initial_record())
    for rnd in (1, 2):
        replies = [_train(tmp_path, pid, blob, rnd) for pid in range(3)]
        assert [r["metrics"]["board"] for r in replies] == [1, 0, 0]
        # the board's update is the C core's for the same round, bit for bit
        core = CoreClient(data, split.train_x[0], split.train_y[0])
        expected = core.round(blob, local_order(len(split.train_y[0]), cfg.steps, rnd * 100003), cfg.lr)
        assert record_blob(replies[0]["arrays"]) == expected
        record, metrics = server.aggregate(rnd, replies)
        assert metrics["accepted"] == 3
        new = record_blob(record)
        assert new != blob
        blob = new


@pytest.mark.parametrize("board", BOARDS)
def test_board_reset_mid_round_rejoins_from_its_saved_model(tmp_path, board):
    data, m, split, cfg = _setup(tmp_path, board=board, board_resets={"0": 2})
    server = SparseFleet(data)
    blob = record_blob(server.initial_record())
    first = _train(tmp_path, 0, blob, 1)
    blob = record_blob(server.aggregate(1, [first, _train(tmp_path, 1, blob, 1)])[0])
    with pytest.raises(BoardFailed, match="reset in the middle"):
        _train(tmp_path, 0, blob, 2)
    # the server goes on with the others
    _, metrics = server.aggregate(2, [_train(tmp_path, 1, blob, 2)], n_failed=1)
    assert (metrics["accepted"], metrics["failed"]) == (1, 1)
    board = apps._clients[(cfg.data, 0)]
    assert not board.running
    board.start()
    # restarted, it holds what it saved at the end of round 1, not the pretrained model
    assert bytes.fromhex(board.command("B")) == record_blob(first["arrays"])
    assert _train(tmp_path, 0, blob, 3)["metrics"]["board"] == 1


def test_board_refuses_a_blob_of_another_model(tmp_path):
    data, m, split, cfg = _setup(tmp_path)
    other = random_model(40, n_bias_update=2)[2]
    board = BoardSession("unix", tmp_path / "model.mct", split.train_x[0], split.train_y[0], tmp_path / "b")
    board.start()
    with pytest.raises(BoardFailed, match="update blob is for another model"):
        board.command("L " + fblob.write(other, fblob.trained_values(other)).hex())
    with pytest.raises(BoardFailed, match="CRC32"):
        good = bytearray(fblob.write(m, fblob.trained_values(m)))
        good[-1] ^= 1
        board.command("L " + bytes(good).hex())
    board.close()


@pytest.mark.usefixtures("server_identity")
@pytest.mark.parametrize("kind", ["garbage", "extreme"])
def test_server_app_goes_on_with_a_hostile_client(tmp_path, kind):
    """Client 2 sends garbage (refused each round) or every value at its limit with a huge count
    (clipped): the rounds complete and the fleet ends where the clipped aggregate puts it."""
    data, m, split, cfg = _setup(tmp_path, rounds=2, hostile={"2": kind})
    apps.server_app(InProcessGrid(tmp_path), _context(tmp_path, None))
    result = json.loads((tmp_path / "result.json").read_text())
    rejected = 1 if kind == "garbage" else 0
    assert [(r["accepted"], r["rejected"]) for r in result["rounds"]] == [(3 - rejected, rejected)] * 2
    final = fblob.read(m, bytes.fromhex(result["final_blob"]))
    # not dragged to the limits the hostile client sent
    weights = np.concatenate([v for v in final if v.dtype == np.int8])
    assert np.mean(weights == 127) < 0.5
