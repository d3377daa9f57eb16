"""The device's C core (c_src/) on the host through ctypes, with host_tools/ccore/harness.c: the tests'
oracle and the scheme search's simulator train with the device's own code. Built on demand into
build/host/ with -ffp-contract=off, as on the device (atomic: parallel builds do not clash)."""
import ctypes
import os
import subprocess
from pathlib import Path

import numpy as np

from host_tools.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).resolve().with_name("harness.c")
SIMULATION = [Path(__file__).resolve().with_name(f) for f in ("requant.c", "conv_rows.c")]   # the converter's int8 simulation
SIMULATION_H = Path(__file__).resolve().with_name("widest.h")
LIB = ROOT / "build" / "host" / "libmcutrain_host.so"


def build(sanitize=None) -> Path:
    """The core as a shared library, rebuilt when a source is newer. sanitize (default: the
    MCT_SANITIZE environment variable): built with -fsanitize=address,undefined, which a python
    process can load only with libasan preloaded (LD_PRELOAD, as `make sanitize` does)."""
    if sanitize is None:
        sanitize = os.environ.get("MCT_SANITIZE", "") not in ("", "0")
    c_src = ROOT / "c_src"
    if not c_src.is_dir():
        raise UserError(f"the C core sources are not at {c_src}: run host_tools from an mcutrain checkout")
    srcs = sorted(c_src.glob("*.c")) + [HARNESS] + SIMULATION
    out = LIB if not sanitize else LIB.with_name("libmcutrain_host_asan.so")
    newest = max(os.path.getmtime(p) for p in srcs + sorted(c_src.glob("*.h")) + [SIMULATION_H])
    if out.exists() and os.path.getmtime(out) >= newest:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    cmd = [os.environ.get("CC", "cc"), "-std=c99", "-O2", "-g", "-fPIC", "-shared", "-ffp-contract=off",
           "-Wall", "-Wextra", "-Wno-sign-compare", "-Wdouble-promotion", "-Wfloat-conversion", "-Werror",
           "-I", str(c_src), "-o", str(tmp)] + [str(p) for p in srcs]
    if sanitize:
        cmd[1:1] = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise UserError("no C compiler (cc) to build the C core for the host: install gcc or set CC") from None
    except subprocess.CalledProcessError as e:
        raise UserError(f"building the C core failed:\n{e.stderr.strip()}") from None
    os.replace(tmp, out)
    return out


def _ptr(a):
    return a.ctypes.data_as(ctypes.c_void_p)


class CoreError(UserError):
    """An error code of the C core (mcutrain.h MCT_E_*), with the index and details it reports."""

    def __init__(self, code, index, a, b):
        super().__init__(f"the C core returned mct error {code} (index {index}, {a}, {b})")
        self.code, self.index, self.a, self.b = code, index, a, b


class CoreModel:
    """One model loaded by the C core, with its own workspace (as on the device)."""
    _lib = None

    @classmethod
    def lib(cls):
        if cls._lib is None:
            lib = ctypes.CDLL(str(build()))
            lib.h_load.restype = ctypes.c_void_p
            lib.h_load.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_int)]
            for name in ("h_free", "h_set_qas", "h_forward", "h_train", "h_act", "h_file_size", "h_save", "h_mem",
                         "h_counters", "h_seed", "h_logits32"):
                getattr(lib, name).argtypes = None
            lib.h_train.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32,
                                    ctypes.c_float, ctypes.POINTER(ctypes.c_float)]
            lib.h_forward.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p]
            lib.h_file_size.restype = ctypes.c_uint32
            P = ctypes.c_void_p
            lib.h_train_many.argtypes = [P, P, ctypes.c_size_t, P, P, ctypes.c_uint32, P, P]
            lib.h_predict.argtypes = [P, P, ctypes.c_size_t, ctypes.c_uint32, P]
            lib.h_blob_size.argtypes = [P]
            lib.h_blob_size.restype = ctypes.c_uint32
            lib.h_blob_write.argtypes = [P, P, ctypes.c_size_t]
            lib.h_blob_load.argtypes = [P, ctypes.c_char_p, ctypes.c_size_t, P]
            lib.h_model_id.argtypes = [P]
            lib.h_model_id.restype = ctypes.c_uint32
            cls._lib = lib
        return cls._lib

    def __init__(self, data: bytes, qas=True):
        self.data = ctypes.create_string_buffer(bytes(data), len(data))   # stays alive: used in place
        err = (ctypes.c_int * 4)()
        self.h = self.lib().h_load(self.data, len(data), err)
        if not self.h:
            raise CoreError(*err)
        self.lib().h_set_qas(ctypes.c_void_p(self.h), int(qas))
        self.n_classes = None

    def __del__(self):
        if getattr(self, "h", None):
            self.lib().h_free(ctypes.c_void_p(self.h))

    def forward(self, x, n_classes):
        out = ctypes.create_string_buffer(n_classes)
        x = bytes(np.asarray(x, dtype=np.int8).tobytes())
        r = self.lib().h_forward(self.h, x, len(x), out)
        if r:
            raise CoreError(r, 0, 0, 0)
        return np.frombuffer(out.raw, dtype=np.int8).copy()

    def logits32(self, n_classes):
        """(the unclamped int32 logits of the last forward, the class predict gives)."""
        out = (ctypes.c_int32 * n_classes)()
        best = self.lib().h_logits32(ctypes.c_void_p(self.h), out)
        return np.asarray(list(out), dtype=np.int64), best

    def train_step(self, x, label, lr):
        loss = ctypes.c_float()
        x = bytes(np.asarray(x, dtype=np.int8).tobytes())
        r = self.lib().h_train(self.h, x, len(x), label, lr, ctypes.byref(loss))
        if r:
            raise CoreError(r, 0, 0, 0)
        return loss.value

    def train(self, x, labels, order, lr):
        """SGD steps on x[order[i]] (x int8 [N, size]); lr: one float or one per step. The losses
        (a step the core skips for a non-finite loss is not an error here)."""
        x = np.ascontiguousarray(x, dtype=np.int8)
        labels = np.ascontiguousarray(labels, dtype=np.uint32)
        order = np.ascontiguousarray(order, dtype=np.uint32)
        lrs = np.ascontiguousarray(np.broadcast_to(np.float32(lr), order.shape), dtype=np.float32)
        losses = np.zeros(len(order), dtype=np.float32)
        r = self.lib().h_train_many(self.h, _ptr(x), x.shape[1], _ptr(labels), _ptr(order), len(order),
                                    _ptr(lrs), _ptr(losses))
        if r:
            raise CoreError(r, 0, 0, 0)
        return losses

    def predict(self, x):
        """The predicted class of each image of x (int8 [N, size])."""
        x = np.ascontiguousarray(x, dtype=np.int8)
        pred = np.zeros(len(x), dtype=np.int32)
        r = self.lib().h_predict(self.h, _ptr(x), x.shape[1], len(x), _ptr(pred))
        if r:
            raise CoreError(r, 0, 0, 0)
        return pred

    def save(self) -> bytes:
        n = self.lib().h_file_size(ctypes.c_void_p(self.h))
        out = ctypes.create_string_buffer(n)
        self.lib().h_save(ctypes.c_void_p(self.h), out)
        return out.raw

    def mem(self):
        out = (ctypes.c_uint32 * 5)()
        self.lib().h_mem(ctypes.c_void_p(self.h), out)
        return dict(zip(("arena", "arena_peak", "saved", "trained", "workspace"), list(out)))

    def mem_info(self):
        """arena, trained copies, workspace: what mem_info() reports on the device."""
        mem = self.mem()
        return {k: mem[k] for k in ("arena", "trained", "workspace")}

    def seed(self, seed):
        self.lib().h_seed(ctypes.c_void_p(self.h), ctypes.c_uint32(seed))

    def counters(self):
        out = (ctypes.c_uint32 * 3)()
        self.lib().h_counters(ctypes.c_void_p(self.h), out)
        return dict(zip(("steps", "skipped", "skipped_updates"), list(out)))

    def model_id(self) -> int:
        return self.lib().h_model_id(self.h)

    def update_blob(self) -> bytes:
        """The trained tensors as an update blob (what Model.update_blob() returns on a board)."""
        out = ctypes.create_string_buffer(self.lib().h_blob_size(self.h))
        r = self.lib().h_blob_write(self.h, out, len(out))
        if r:
            raise CoreError(r, 0, 0, 0)
        return out.raw

    def load_update(self, blob: bytes):
        """Load an update blob in place; a refused one raises the binding's ValueError."""
        from host_tools.fleet.blob import core_blob_error
        err = np.zeros(4, dtype=np.int32)
        r = self.lib().h_blob_load(self.h, bytes(blob), len(blob), _ptr(err))
        if r:
            raise core_blob_error(r, *(int(v) for v in err), own_id=self.model_id())
