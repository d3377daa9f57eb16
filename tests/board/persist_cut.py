# Power cuts during mcutrain_util.save_atomic(), at every block write, on LittleFS (vfs.VfsLfs2)
# on a RAM block device: after each cut the filesystem is mounted afresh and mcutrain_util.load()
# must give the old or the new model, whole. Needs model.mct and inputs.bin; prints one summary.
# (A cut lands between two block writes; a write itself is not torn: LittleFS's own assumption.)
import vfs, os, gc
import mcutrain, mcutrain_util


EIO = 5


class RAMBlockDev:
    """A view of `data` (bytearray) as a block device, whose power goes after `budget` block
    writes: from then on every read and write fails (-EIO, as a device that no longer answers),
    for good, so that a file closed later by the GC through the old mount cannot touch the data.
    The next mount takes a new view of the same data (the power is back)."""

    def __init__(self, data, block_size, budget=None):
        self.bs = block_size
        self.data = data
        self.budget = budget    # block writes left before the power goes; None: no cut
        self.dead = False
        self.writes = 0

    def readblocks(self, n, buf, off=0):
        if self.dead:
            return -EIO
        a = n * self.bs + off
        buf[:] = memoryview(self.data)[a:a + len(buf)]
        return 0

    def writeblocks(self, n, buf, off=0):
        if self.budget is not None:
            if self.budget == 0:
                self.dead = True
            self.budget -= 1
        if self.dead:
            return -EIO
        self.writes += 1
        a = n * self.bs + off
        self.data[a:a + len(buf)] = buf
        return 0

    def ioctl(self, op, arg):
        if op == 4:
            return len(self.data) // self.bs
        if op == 5:
            return self.bs
        if op == 6:
            return -EIO if self.dead else 0
        return None


class Sink:
    def __init__(self):
        self.data = bytearray()

    def write(self, b):
        self.data.extend(b)
        return len(b)


def saved(model):
    s = Sink()
    model.save(s)
    return bytes(s.data)


xs = open('inputs.bin', 'rb').read()
m = mcutrain.Model(open('model.mct', 'rb').read())
size = m.input_shape[0] * m.input_shape[1] * m.input_shape[2]
for i in range(3):
    m.train_step(xs[i * size:(i + 1) * size], i % m.n_classes, 0.05)
old = saved(m)
for i in range(3, 6):
    m.train_step(xs[i * size:(i + 1) * size], i % m.n_classes, 0.05)
new = saved(m)
BS = 512


def sweep(fs_type, blocks, old_model):
    """Save old_model whole, then cut the power at every block write of saving m."""
    flash = bytearray(BS * blocks)
    dev = RAMBlockDev(flash, BS)
    fs_type.mkfs(dev)
    vfs.mount(fs_type(dev), '/p')
    mcutrain_util.save_atomic(old_model, '/p/m.mct')
    vfs.umount('/p')
    before = bytes(flash)
    # how many block writes a whole save takes
    dev = RAMBlockDev(flash, BS)
    vfs.mount(fs_type(dev), '/p')
    mcutrain_util.save_atomic(m, '/p/m.mct')
    total = dev.writes
    vfs.umount('/p')
    counts = {'old': 0, 'new': 0, 'bad': 0}
    for cut in range(total + 1):
        flash[:] = before
        dev = RAMBlockDev(flash, BS)
        vfs.mount(fs_type(dev), '/p')
        dev.budget = cut
        try:
            mcutrain_util.save_atomic(m, '/p/m.mct')
        except OSError:
            pass                # the power went
        try:
            vfs.umount('/p')    # the device no longer answers
        except OSError:
            pass
        gc.collect()
        # power back: mount what the data holds now
        vfs.mount(fs_type(RAMBlockDev(flash, BS)), '/p')
        try:
            got = saved(mcutrain_util.load('/p/m.mct'))
            counts['old' if got == old else 'new' if got == new else 'bad'] += 1
        except Exception as e:
            counts['bad'] += 1
        vfs.umount('/p')
    print(fs_type.__name__, 'cuts', total + 1, 'old', counts['old'] > 0, 'new', counts['new'] > 0,
          'bad', counts['bad'])


old_model = mcutrain.Model(old)
# LittleFS everywhere (the qemu boards, rp2, stm32, esp32); FAT where the port has it (unix here)
for name, blocks in (('VfsLfs2', 48), ('VfsFat', 128)):
    if hasattr(vfs, name):
        sweep(getattr(vfs, name), blocks, old_model)
