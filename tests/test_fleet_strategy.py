"""The server's rule over update blobs (host_tools/fleet/strategy.py): FedAvg of honest clients is
the mean of their int values re-quantized; a hostile reply is refused or clipped and cannot move
the fleet; a restarted server resumes from its checkpoint."""
import math

import numpy as np
import pytest

pytest.importorskip("flwr", reason="Flower is not installed: make venv installs requirements.txt")
from flwr.app import MetricRecord, RecordDict  # noqa: E402

from tests.support.graphgen import random_input, random_model  # noqa: E402
from host_tools.fleet import blob as fblob  # noqa: E402
from host_tools.fleet import faults  # noqa: E402
from host_tools.fleet.client import CoreClient, local_order  # noqa: E402
from host_tools.fleet.strategy import SparseFleet, blob_record, record_blob  # noqa: E402


def _fleet(seed, n_clients=5, n_images=12):
    rng, data, m = random_model(seed, {"update_rule": "nearest"}, n_bias_update=2)
    clients = []
    for _ in range(n_clients):
        x = np.stack([random_input(rng, m) for _ in range(n_images)])
        clients.append(CoreClient(data, x, rng.integers(0, m.n_classes, n_images)))
    return data, m, clients


def _replies(clients, global_blob, rnd, lr=0.5):
    out = []
    for pid, c in enumerate(clients):
        blob = c.round(global_blob, local_order(len(c.y), 10, rnd * 100 + pid), lr)
        out.append((blob, len(c.y) + pid))
    return out


def _content(blob, n):
    return RecordDict({"arrays": blob_record(blob), "metrics": MetricRecord({"num-examples": n})})


def _ints(model, record):
    return np.concatenate([v.astype(np.int64) for v in fblob.read(model, record_blob(record))])


def test_fedavg_is_the_weighted_mean_of_the_clients_ints():
    for seed in range(4):
        data, m, clients = _fleet(seed)
        server = SparseFleet(data)
        replies = _replies(clients, fblob.write(m, fblob.trained_values(m)), 1)
        record, metrics = server.aggregate(1, [_content(b, n) for b, n in replies])
        assert metrics["accepted"] == len(clients) and metrics["rejected"] == 0
        ints = np.stack([np.concatenate([v.astype(np.int64) for v in fblob.read(m, b)]) for b, _ in replies])
        w = np.array([n for _, n in replies], dtype=np.float64)
        mean = (w[:, None] * ints).sum(0) / w.sum()
        got = _ints(m, record)
        clear = np.abs(mean - np.floor(mean) - 0.5) > 1e-6       # not a tie of the rounding
        assert np.array_equal(got[clear], np.rint(mean[clear]))
        assert np.all(np.abs(got - mean) <= 0.5 + 1e-6)


@pytest.mark.parametrize("kind", faults.HOSTILE)
def test_one_hostile_client_cannot_poison_the_fleet(kind):
    data, m, clients = _fleet(7)
    start = fblob.write(m, fblob.trained_values(m))
    replies = _replies(clients, start, 1)
    honest = SparseFleet(data)
    honest_record, _ = honest.aggregate(1, [_content(b, n) for b, n in replies[1:]])
    server = SparseFleet(data)
    bad = faults.hostile_update(kind, replies[0][0], replies[0][1], 1)
    record, metrics = server.aggregate(1, [_content(*bad)] + [_content(b, n) for b, n in replies[1:]])
    got, ref = _ints(m, record), _ints(m, honest_record)
    if kind in ("garbage", "foreign", "corrupt", "nan", "count"):
        assert metrics["rejected"] == 1 and server.rejected
        assert np.array_equal(got, ref)
    else:
        # accepted but clipped to clip_factor x the median norm (at most the largest honest
        # one): the mean of the clipped deltas moves the fleet no further than that
        assert metrics["accepted"] == len(clients)
        state = SparseFleet(data).state
        sent = np.concatenate(state.dequantize(state.quantize()))
        new = np.concatenate(server.state.real)
        norms = [np.linalg.norm(np.concatenate(state.dequantize(fblob.read(m, b))) - sent) for b, _ in replies[1:]]
        assert np.linalg.norm(new - sent) <= server.clip_factor * max(norms) * (1 + 1e-9)
        unclipped = SparseFleet(data, clip_factor=math.inf)
        unclipped.aggregate(1, [_content(*bad)] + [_content(b, n) for b, n in replies[1:]])
        assert np.linalg.norm(np.concatenate(unclipped.state.real) - sent) > np.linalg.norm(new - sent)


def test_a_reply_without_a_blob_or_count_is_refused():
    data, m, clients = _fleet(3, n_clients=2)
    server = SparseFleet(data)
    good = _replies(clients, fblob.write(m, fblob.trained_values(m)), 1)
    contents = [RecordDict({"metrics": MetricRecord({"num-examples": 5})}),
                RecordDict({"arrays": blob_record(good[0][0])}),
                _content(good[0][0], -3)] + [_content(b, n) for b, n in good]
    _, metrics = server.aggregate(1, contents)
    assert (metrics["accepted"], metrics["rejected"]) == (2, 3)


@pytest.mark.parametrize("rule", ("fedavg", "fedavgm"))
def test_a_restarted_server_resumes_from_its_checkpoint(tmp_path, rule):
    data, m, clients = _fleet(5, n_clients=3)
    ckpt = tmp_path / "global.npz"
    first = SparseFleet(data, rule=rule, checkpoint=ckpt)
    blob = record_blob(first.initial_record())
    for rnd in (1, 2):
        blob = record_blob(first.aggregate(rnd, [_content(b, n) for b, n in _replies(clients, blob, rnd)])[0])
    restarted = SparseFleet(data, rule=rule, checkpoint=ckpt)
    assert restarted.state.restore(ckpt) and restarted.state.round == 2
    assert record_blob(restarted.initial_record()) == blob
    replies = _replies(clients, blob, 3)
    a, _ = first.aggregate(3, [_content(b, n) for b, n in replies])
    b, _ = restarted.aggregate(3, [_content(b, n) for b, n in replies])
    assert record_blob(a) == record_blob(b)
    other = random_model(99, n_bias_update=2)[1]
    with pytest.raises(ValueError, match="another model"):
        SparseFleet(other).state.restore(ckpt)
