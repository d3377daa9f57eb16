"""A fleet client's round: load the global trained tensors, train E local steps, return the blob.

CoreClient runs the device's C core through ctypes (bit-identical to a board, for scale);
host_tools.fleet.board.BoardSession runs the same round on an emulated board. Both take the
same local order of images, so a board and a core client given the same data return the same
blob.
"""
import numpy as np

from host_tools.ccore.core import CoreModel


def local_order(n_images: int, steps: int, seed: int) -> np.ndarray:
    """The images of E local steps: passes over a fresh permutation of the client's images."""
    rng = np.random.default_rng(seed)
    reps = -(-steps // n_images)
    return np.concatenate([rng.permutation(n_images) for _ in range(reps)])[:steps].astype(np.uint32)


class CoreClient:
    """A client on the C core: one model with its workspace, and its local images."""

    def __init__(self, model_data: bytes, train_x, train_y):
        self.core = CoreModel(model_data)
        self.x, self.y = np.ascontiguousarray(train_x, np.int8), np.ascontiguousarray(train_y, np.uint32)

    def round(self, global_blob: bytes, order, lr) -> bytes:
        self.core.load_update(global_blob)
        self.core.train(self.x, self.y, order, lr)
        return self.core.update_blob()


def accuracy(model_data: bytes, blob: bytes, x, y) -> float:
    """Accuracy (%) of the model with these trained tensors on int8 images x."""
    core = CoreModel(model_data)
    core.load_update(blob)
    return 100.0 * float(np.mean(core.predict(x) == y))
