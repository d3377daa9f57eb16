"""The writer: atomic files, host reader agreement, and what it refuses."""
import os

import numpy as np
import pytest

from host_tools.model import mct_format
from host_tools.errors import UserError
from tests.support.graphgen import random_graph


def test_write_is_atomic(tmp_path, monkeypatch):
    gr = random_graph(np.random.default_rng(0))
    path = tmp_path / "m.mct"
    mct_format.write(gr, path)
    old = path.read_bytes()
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)      # an ordinary file, not mkstemp's 0600

    def broken_fsync(fd):
        raise OSError("disk full")
    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        mct_format.write(random_graph(np.random.default_rng(1)), path)
    assert path.read_bytes() == old                           # the old file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.mct"]  # no temporary left behind


def test_invalid_graph_writes_nothing(tmp_path):
    gr = random_graph(np.random.default_rng(2))
    gr.n_bias_update = 99
    with pytest.raises(UserError, match="n_bias_update=99"):
        mct_format.write(gr, tmp_path / "m.mct")
    assert not (tmp_path / "m.mct").exists()


def test_reader_rejects_what_the_core_rejects():
    data = mct_format.to_bytes(random_graph(np.random.default_rng(3)))
    for bad, what in [(data[:10], "truncated"), (b"NOPE" + data[4:], "magic"),
                      (data[:30] + bytes([data[30] ^ 1]) + data[31:], "CRC")]:
        with pytest.raises(mct_format.FormatError, match=what):
            mct_format.load(bad)


def test_round_trip_keeps_every_tensor():
    gr = random_graph(np.random.default_rng(4), n_bias_update=1, weights=False)
    m = mct_format.load(mct_format.to_bytes(gr))
    convs = [op for op in gr.ops if op.kind in (1, 4)]
    # each conv and FC writes five tensors, weight first, in op order
    for op, w in zip(convs, m.tensors[0::5]):
        np.testing.assert_array_equal(w, np.asarray(op.weight).reshape(-1))
    assert m.to_bytes() == mct_format.to_bytes(gr)
    assert sum(m.trainable) == 3                              # classifier weight + bias, one conv bias
