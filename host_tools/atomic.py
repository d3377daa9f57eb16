"""Files the host tools write appear whole or not at all: written under a temporary name in the
same folder, flushed, then renamed over the target (a crash, Ctrl-C or a bad input midway leaves
the old file, or none, never half of a new one)."""
import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path, suffix: str = ""):
    """A temporary path next to `path` to write; renamed to `path` when the block ends without error,
    removed otherwise. suffix: the name's ending, for writers that choose a format by it (.npz, .png)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + "-", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)          # mkstemp's 0600 is not what a plain open() gives
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_bytes(data: bytes, path) -> None:
    """`path` holds exactly `data` afterwards, or is left as it was."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
