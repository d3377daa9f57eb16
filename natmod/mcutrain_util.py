# mcutrain_util: saving a trained model so that a power cut never loses it (board side).
#
#   import mcutrain, mcutrain_util
#   m = mcutrain_util.load('/flash/model.mct')          # or mcutrain.Model(...) the first time
#   ... m.train_step(x, label, lr) ...
#   mcutrain_util.save_atomic(m, '/flash/model.mct')
#
# save_atomic() writes the whole model to path + '.tmp' and then renames it over `path`. On
# LittleFS (vfs.VfsLfs2: rp2, stm32, esp32 defaults) the rename replaces the file atomically; on
# FAT MicroPython renames onto an existing name by deleting it first, so a cut between the two
# steps leaves only the complete '.tmp': load() falls back to it, and the next save_atomic()
# puts it back in place before it writes anything. Either way `path` or its '.tmp' holds the old
# or the new model, whole (every model file carries a CRC32, which mcutrain.Model checks).
# Works with the built-in module and with the native module (module=mcutrain_nat, say).
import os


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _complete(path):
    """Whole as written: the header's magic and file size agree with the file (a save writes the
    header first, so a cut one is shorter than its header says; the CRC is Model's to check)."""
    try:
        with open(path, 'rb') as f:
            head = f.read(12)
        return head[:4] == b'MCTR' and int.from_bytes(head[8:12], 'little') == os.stat(path)[6]
    except OSError:
        return False


def save_atomic(model, path):
    """model.save() into path + '.tmp', then rename it to path; returns the bytes written."""
    tmp = path + '.tmp'
    if not _exists(path) and _exists(tmp):
        if _complete(tmp):
            # a previous save was cut after its data was complete: keep that copy as the current one
            os.rename(tmp, path)
        else:
            os.remove(tmp)      # the very first save was cut while writing: nothing to keep
    with open(tmp, 'wb') as f:
        n = model.save(f)
    if hasattr(os, 'sync'):
        os.sync()
    os.rename(tmp, path)
    return n


def load(path, module=None, **kwargs):
    """The model at path, or at path + '.tmp' when a cut save left path missing or damaged."""
    if module is None:
        import mcutrain as module
    error = None
    for p in (path, path + '.tmp'):
        try:
            with open(p, 'rb') as f:
                data = f.read()
            return module.Model(data, **kwargs)
        except (OSError, ValueError) as e:
            error = e
    raise error
