"""The server's rule for int8 sparse updates: Flower's FedAvg strategy, aggregating update blobs.

The global state is a float copy of the trained tensors in real units (int value x its scale),
the server's master: clients start each round from its int8/int32 quantization, with the model's
own scales (the QAS scales every board trains with), so every board loads it without loss of
meaning, and the sub-integer progress of a round is kept on the server, not rounded away.

Each client's blob is checked as a board checks it (host_tools.fleet.blob.read: format, CRC, model
id, layout, scales, range); a reply that fails, or whose sample count is not a finite number in
[1, max_examples], is rejected and logged. The accepted updates (deltas from what was sent, real
units) are clipped to clip_factor x their median L2 norm, their weights to clip_factor x the
median count, then averaged:
  fedavg    state += weighted mean delta
  fedavgm   velocity = momentum * velocity + mean delta; state += server_lr * velocity
After each round the state is written to `checkpoint` (atomically); a restarted server resumes it.
"""
import math
import os
from logging import INFO, WARNING
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, MetricRecord
from flwr.common import log
from flwr.serverapp.strategy import FedAvg

from host_tools.model import mct_format as fmt
from host_tools.fleet import blob as fblob

RULES = ("fedavg", "fedavgm")


def blob_record(data: bytes) -> ArrayRecord:
    """A blob as Flower carries it: one uint8 array."""
    return ArrayRecord({"blob": Array(np.frombuffer(bytes(data), dtype=np.uint8).copy())})


def record_blob(record) -> bytes:
    """The blob of a record made by blob_record (ValueError when it is not one)."""
    if not isinstance(record, ArrayRecord) or list(record.keys()) != ["blob"]:
        raise ValueError("the reply carries no single 'blob' array")
    arr = record["blob"].numpy()
    if arr.dtype != np.uint8 or arr.ndim != 1:
        raise ValueError(f"the reply's blob is {arr.dtype} {arr.shape}, not a uint8 vector")
    return arr.tobytes()


class GlobalState:
    """The trained tensors in real units (float64), their scales per element, and the round."""

    def __init__(self, model: fmt.Model):
        self.model = model
        self.entries = fblob.layout(model)
        self.scales = [np.repeat(e.scales.astype(np.float64), e.count // e.channels) for e in self.entries]
        self.real = self.dequantize(fblob.trained_values(model))
        self.velocity = [np.zeros_like(r) for r in self.real]
        self.round = 0

    def dequantize(self, values):
        return [v.astype(np.float64) * s for v, s in zip(values, self.scales)]

    def quantize(self):
        """Round to the nearest int of each element's scale, clamped to the trained range."""
        out = []
        for e, r, s in zip(self.entries, self.real, self.scales):
            lim = fblob.LIMITS[e.dtype]
            out.append(np.clip(np.rint(r / s), -lim, lim).astype(fmt.DTYPES[e.dtype]))
        return out

    def blob(self) -> bytes:
        return fblob.write(self.model, self.quantize())

    def save(self, path):
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, round=self.round, model_id=fblob.model_id(self.model),
                 **{f"real_{i}": r for i, r in enumerate(self.real)},
                 **{f"velocity_{i}": v for i, v in enumerate(self.velocity)})
        os.replace(tmp, path)

    def restore(self, path) -> bool:
        """Resume from a checkpoint of this model; False when there is none."""
        if not Path(path).is_file():
            return False
        with np.load(path) as f:
            if int(f["model_id"]) != fblob.model_id(self.model):
                raise ValueError(f"checkpoint {path} is of another model")
            self.real = [f[f"real_{i}"] for i in range(len(self.entries))]
            self.velocity = [f[f"velocity_{i}"] for i in range(len(self.entries))]
            self.round = int(f["round"])
        return True


class SparseFleet(FedAvg):
    """FedAvg (or FedAvgM) over update blobs; see the module's docstring."""

    def __init__(self, model_data: bytes, rule="fedavg", server_lr=1.0, momentum=0.9, clip_factor=3.0,
                 max_examples=100000, checkpoint=None, **kwargs):
        super().__init__(fraction_evaluate=0.0, **kwargs)
        if rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}: one of {RULES}")
        self.rule, self.server_lr, self.momentum = rule, server_lr, momentum
        self.clip_factor, self.max_examples = clip_factor, max_examples
        self.state = GlobalState(fmt.load(model_data))
        self.checkpoint = checkpoint
        self.rejected = []          # (round, reason) of every refused reply

    def initial_record(self) -> ArrayRecord:
        return blob_record(self.state.blob())

    def _client_update(self, content):
        """(values, weight) of one reply, or raise ValueError naming what is wrong with it."""
        data = record_blob(content.get("arrays"))
        metrics = content.get("metrics")
        n = metrics.get(self.weighted_by_key) if metrics is not None else None
        if not isinstance(n, (int, float)) or not math.isfinite(n) or not 1 <= n <= self.max_examples:
            raise ValueError(f"sample count {n!r} is not a number in [1, {self.max_examples}]")
        return fblob.read(self.state.model, data), float(n)

    def aggregate_train(self, server_round, replies):
        valid, failed = self._check_and_log_replies(replies, is_train=True, validate=False)
        return self.aggregate(server_round, [msg.content for msg in valid], len(failed))

    def aggregate(self, server_round, contents, n_failed=0):
        """The next global blob (as a record) and the round's counts, from the replies' contents."""
        sent = self.state.dequantize(self.state.quantize())      # what the clients started from
        deltas, weights = [], []
        for content in contents:
            try:
                values, n = self._client_update(content)
            except (ValueError, KeyError, TypeError) as e:
                self.rejected.append((server_round, str(e)))
                log(WARNING, "round %d: an update rejected: %s", server_round, e)
                continue
            deltas.append([r - s for r, s in zip(self.state.dequantize(values), sent)])
            weights.append(n)
        metrics = MetricRecord({"accepted": len(deltas), "rejected": len(contents) - len(deltas), "failed": n_failed})
        if deltas:
            self._apply(deltas, np.array(weights))
        self.state.round = server_round
        if self.checkpoint:
            self.state.save(self.checkpoint)
        return blob_record(self.state.blob()), metrics

    def _apply(self, deltas, weights):
        norms = np.array([math.sqrt(sum(float(np.dot(d, d)) for d in ds)) for ds in deltas])
        limit = self.clip_factor * float(np.median(norms))
        shrink = np.where(norms > limit, limit / np.maximum(norms, 1e-300), 1.0)
        weights = np.minimum(weights, self.clip_factor * float(np.median(weights)))
        w = weights * shrink / weights.sum()
        mean = [sum(wi * ds[i] for wi, ds in zip(w, deltas)) for i in range(len(deltas[0]))]
        if self.rule == "fedavgm":
            self.state.velocity = [self.momentum * v + m for v, m in zip(self.state.velocity, mean)]
            mean = [self.server_lr * v for v in self.state.velocity]
        self.state.real = [r + m for r, m in zip(self.state.real, mean)]
        log(INFO, "aggregated %d updates, %d clipped", len(deltas), int(np.sum(norms > limit)))
