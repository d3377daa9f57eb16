"""The device's C core (c_src/) on the host through ctypes: the planner simulates training with
the device's own code. Built on demand into build/host/ with -ffp-contract=off, as on the device."""
import ctypes
import os
import subprocess
from pathlib import Path

import numpy as np

from host_tools.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
HARNESS = Path(__file__).resolve().with_name("ccore_harness.c")
LIB = ROOT / "build" / "host" / "libmcutrain_sim.so"

_lib = None


def build() -> Path:
    """The shared library, rebuilt when a source is newer (atomic: parallel builds do not clash)."""
    c_src = ROOT / "c_src"
    if not c_src.is_dir():
        raise UserError(f"the C core sources are not at {c_src}: run host_tools from an mcutrain checkout")
    srcs = sorted(c_src.glob("*.c")) + [HARNESS]
    newest = max(os.path.getmtime(p) for p in srcs + sorted(c_src.glob("*.h")))
    if LIB.exists() and os.path.getmtime(LIB) >= newest:
        return LIB
    LIB.parent.mkdir(parents=True, exist_ok=True)
    tmp = LIB.with_name(f"{LIB.name}.{os.getpid()}.tmp")
    cmd = [os.environ.get("CC", "cc"), "-std=c99", "-O2", "-fPIC", "-shared", "-ffp-contract=off",
           "-I", str(c_src), "-o", str(tmp)] + [str(p) for p in srcs]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise UserError("no C compiler (cc) to build the C core for the simulation: install gcc "
                        "or set CC") from None
    except subprocess.CalledProcessError as e:
        raise UserError(f"building the C core failed:\n{e.stderr.strip()}") from None
    os.replace(tmp, LIB)
    return LIB


def lib():
    global _lib
    if _lib is None:
        L = ctypes.CDLL(str(build()))
        P = ctypes.c_void_p
        L.sim_load.restype = P
        L.sim_load.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_int)]
        L.sim_free.argtypes = [P]
        L.sim_train.argtypes = [P, P, ctypes.c_size_t, P, P, ctypes.c_uint32, P, P]
        L.sim_predict.argtypes = [P, P, ctypes.c_size_t, ctypes.c_uint32, P]
        L.sim_mem.argtypes = [P, P]
        L.sim_file_size.argtypes = [P]
        L.sim_file_size.restype = ctypes.c_uint32
        L.sim_save.argtypes = [P, P]
        L.sim_blob_size.argtypes = [P]
        L.sim_blob_size.restype = ctypes.c_uint32
        L.sim_blob_write.argtypes = [P, P, ctypes.c_size_t]
        L.sim_blob_load.argtypes = [P, ctypes.c_char_p, ctypes.c_size_t, P]
        L.sim_model_id.argtypes = [P]
        L.sim_model_id.restype = ctypes.c_uint32
        _lib = L
    return _lib


def _ptr(a):
    return a.ctypes.data_as(ctypes.c_void_p)


class CoreModel:
    """One model loaded by the C core, with its own workspace (as on the device)."""

    def __init__(self, data: bytes):
        self.data = ctypes.create_string_buffer(bytes(data), len(data))   # used in place: kept alive
        err = (ctypes.c_int * 2)()
        self.h = lib().sim_load(self.data, len(data), err)
        if not self.h:
            raise UserError(f"the C core refuses the model (error {err[0]}, index {err[1]})")

    def __del__(self):
        if getattr(self, "h", None):
            lib().sim_free(self.h)
            self.h = None

    def train(self, x, labels, order, lr):
        """SGD steps on x[order[i]] (x int8 [N, size]); lr: one float or one per step. Losses."""
        x = np.ascontiguousarray(x, dtype=np.int8)
        labels = np.ascontiguousarray(labels, dtype=np.uint32)
        order = np.ascontiguousarray(order, dtype=np.uint32)
        lrs = np.ascontiguousarray(np.broadcast_to(np.float32(lr), order.shape), dtype=np.float32)
        losses = np.zeros(len(order), dtype=np.float32)
        r = lib().sim_train(self.h, _ptr(x), x.shape[1], _ptr(labels), _ptr(order), len(order),
                            _ptr(lrs), _ptr(losses))
        if r:
            raise UserError(f"the C core failed a training step (error {r})")
        return losses

    def predict(self, x):
        x = np.ascontiguousarray(x, dtype=np.int8)
        pred = np.zeros(len(x), dtype=np.int32)
        r = lib().sim_predict(self.h, _ptr(x), x.shape[1], len(x), _ptr(pred))
        if r:
            raise UserError(f"the C core failed a forward pass (error {r})")
        return pred

    def mem(self):
        out = np.zeros(3, dtype=np.uint32)
        lib().sim_mem(self.h, _ptr(out))
        return dict(zip(("arena", "trained", "workspace"), (int(v) for v in out)))

    def save(self) -> bytes:
        out = ctypes.create_string_buffer(lib().sim_file_size(self.h))
        lib().sim_save(self.h, out)
        return out.raw

    def model_id(self) -> int:
        return lib().sim_model_id(self.h)

    def update_blob(self) -> bytes:
        """The trained tensors as an update blob (what Model.update_blob() returns on a board)."""
        out = ctypes.create_string_buffer(lib().sim_blob_size(self.h))
        r = lib().sim_blob_write(self.h, out, len(out))
        if r:
            raise UserError(f"the C core cannot write an update blob (error {r})")
        return out.raw

    def load_update(self, blob: bytes):
        """Load an update blob in place; the core's check raises ValueError naming the problem."""
        from host_tools.fleet.blob import core_blob_error    # the binding's messages, host side
        err = np.zeros(4, dtype=np.int32)
        r = lib().sim_blob_load(self.h, bytes(blob), len(blob), _ptr(err))
        if r:
            raise core_blob_error(r, *(int(v) for v in err), own_id=self.model_id())
