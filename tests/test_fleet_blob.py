"""The update blob (c_src/mct_update_blob.c) against its numpy reference (host_tools/fleet/blob.py):
the same bytes from a trained model, the same checks with the same messages, and a refused blob
leaves the model as it was."""
import struct
import zlib

import numpy as np
import pytest

from tests.support.graphgen import random_input, random_model
from host_tools.model import mct_format
from host_tools.ccore.core import CoreModel
from host_tools.fleet import blob as fblob

RULES = ("master", "frac8", "stochastic", "nearest")


def _trained(seed, rule="master", steps=8):
    rng, data, m = random_model(seed, {"update_rule": rule}, n_bias_update=2)
    core = CoreModel(data)
    x = np.stack([random_input(rng, m) for _ in range(steps)])
    core.train(x, rng.integers(0, m.n_classes, steps), np.arange(steps), 0.5)
    return rng, data, m, core, x


@pytest.mark.parametrize("rule", RULES)
def test_core_blob_is_the_reference_blob(rule):
    for seed in range(6):
        _, data, m, core, _ = _trained(seed, rule)
        saved = mct_format.load(core.save())
        assert core.update_blob() == fblob.write(saved, fblob.trained_values(saved))
        # the model id leaves out the trained values: the same before training and after saving
        assert core.model_id() == fblob.model_id(m) == fblob.model_id(saved)
        values = fblob.read(m, core.update_blob())
        assert all(np.array_equal(v, t) for v, t in zip(values, fblob.trained_values(saved)))


@pytest.mark.parametrize("rule", ("nearest", "stochastic"))
def test_loaded_blob_continues_training_exactly(rule):
    """A model given another's blob is that model: the same file, the same next steps (rules
    without a shadow, whose whole state is the blob)."""
    for seed in range(5):
        rng, data, m, a, x = _trained(seed, rule)
        b = CoreModel(data)
        b.load_update(a.update_blob())
        assert b.save() == a.save()
        if rule == "stochastic":
            continue    # the random stream's position is the model's, not the blob's
        labels = rng.integers(0, m.n_classes, len(x))
        a.train(x, labels, np.arange(len(x)), 0.25)
        b.train(x, labels, np.arange(len(x)), 0.25)
        assert b.save() == a.save()


def _fix_crc(b):
    b[12:16] = struct.pack("<I", zlib.crc32(bytes(b[16:])) & 0xFFFFFFFF)
    return bytes(b)


def _bad_blobs(m, good, other):
    e0 = fblob.layout(m)[0]
    entry = fblob.HEADER.size
    values_at = entry + fblob.ENTRY.size + 4 * e0.channels

    def flip(pos):          # one byte changed, the CRC made right again
        b = bytearray(good)
        b[pos] ^= 0x01
        return _fix_crc(b)

    bad = {
        "truncated": good[:10],
        "bad magic": b"XXXX" + good[4:],
        "version": _fix_crc(bytearray(good[:4]) + b"\x02\x00" + good[6:]),
        "header says": good + b"\0\0\0\0",
        "CRC32": good[:-1] + bytes([good[-1] ^ 1]),
        "another model": other,
        "not this model's trained tensor": flip(entry),
        "scale": flip(entry + fblob.ENTRY.size),
    }
    if e0.dtype == mct_format.DT_INT8:
        b = bytearray(good)
        b[values_at] = 0x80        # -128: outside the trained int8 range
        bad["outside the trained range"] = _fix_crc(b)
    return bad


def test_bad_blobs_are_refused_by_core_and_reference_alike():
    checked = set()
    for seed in range(5):
        _, data, m, core, _ = _trained(seed)
        other = _trained(seed + 100)[3].update_blob()
        before = core.save()
        for what, bad in _bad_blobs(m, core.update_blob(), other).items():
            with pytest.raises(ValueError, match=what) as from_core:
                core.load_update(bad)
            with pytest.raises(ValueError) as from_reference:
                fblob.read(m, bad)
            assert str(from_core.value) == str(from_reference.value)
            assert core.save() == before        # nothing was written
            checked.add(what)
    assert "outside the trained range" in checked


def test_foreign_blob_message_names_both_models():
    _, data, m, core, _ = _trained(1)
    other = _trained(2)[3]
    with pytest.raises(ValueError, match=f"another model \\(model id {other.model_id():08x}, "
                                         f"this model's is {core.model_id():08x}\\)"):
        core.load_update(other.update_blob())
