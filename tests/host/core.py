"""The C core on the host, through ctypes: built from c_src/ with tests/host/harness.c."""
import ctypes
import os
import subprocess
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "build" / "host" / "libmcutrain_host.so"


def build(sanitize=None):
    """The core as a shared library. sanitize (default: the MCT_SANITIZE environment variable): built
    with -fsanitize=address,undefined, which a python process can load only with libasan preloaded
    (LD_PRELOAD, as `make sanitize` does)."""
    if sanitize is None:
        sanitize = os.environ.get("MCT_SANITIZE", "") not in ("", "0")
    srcs = sorted(str(p) for p in (ROOT / "c_src").glob("*.c")) + [str(ROOT / "tests/host/harness.c")]
    out = LIB if not sanitize else LIB.with_name("libmcutrain_host_asan.so")
    newest = max(os.path.getmtime(s) for s in srcs + [str(p) for p in (ROOT / "c_src").glob("*.h")])
    if out.exists() and os.path.getmtime(out) >= newest:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [os.environ.get("CC", "cc"), "-std=c99", "-O2", "-g", "-fPIC", "-shared", "-ffp-contract=off",
           "-Wall", "-Wextra", "-Wno-sign-compare", "-Wdouble-promotion", "-Wfloat-conversion", "-Werror",
           "-I", str(ROOT / "c_src"), "-o", str(out) + ".tmp"] + srcs
    if sanitize:
        cmd[1:1] = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]
    subprocess.run(cmd, check=True)
    os.replace(str(out) + ".tmp", out)
    return out


class CoreError(Exception):
    def __init__(self, code, index, a, b):
        super().__init__(f"mct error {code} (index {index}, {a}, {b})")
        self.code, self.index, self.a, self.b = code, index, a, b


class CoreModel:
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

    def predict(self, x, n_classes):
        self.forward(x, n_classes)
        return self.logits32(n_classes)[1]

    def train_step(self, x, label, lr):
        loss = ctypes.c_float()
        x = bytes(np.asarray(x, dtype=np.int8).tobytes())
        r = self.lib().h_train(self.h, x, len(x), label, lr, ctypes.byref(loss))
        if r:
            raise CoreError(r, 0, 0, 0)
        return loss.value

    def save(self) -> bytes:
        n = self.lib().h_file_size(ctypes.c_void_p(self.h))
        out = ctypes.create_string_buffer(n)
        self.lib().h_save(ctypes.c_void_p(self.h), out)
        return out.raw

    def mem(self):
        out = (ctypes.c_uint32 * 5)()
        self.lib().h_mem(ctypes.c_void_p(self.h), out)
        return dict(zip(("arena", "arena_peak", "saved", "trained", "workspace"), list(out)))

    def seed(self, seed):
        self.lib().h_seed(ctypes.c_void_p(self.h), ctypes.c_uint32(seed))

    def counters(self):
        out = (ctypes.c_uint32 * 3)()
        self.lib().h_counters(ctypes.c_void_p(self.h), out)
        return dict(zip(("steps", "skipped", "skipped_updates"), list(out)))
