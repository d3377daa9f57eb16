# Run by tests/test_powercut_restart.py on a qemu board whose /flash is a host file, once per boot:
# report which model survived the last power cut, then train and save it with
# mcutrain_util.save_atomic() forever, until the power goes: the host kills qemu, or the board's
# Flash driver stops it at the _cut-th write from here (qemu_flash.cut; _cut is set by the host). Each save is announced with the
# CRC32 of the bytes it writes ("saving"), and confirmed when save_atomic() has returned ("saved").
import binascii, os, mcutrain, mcutrain_util, qemu_flash

PATH = '/flash/model.mct'


class Crc:
    crc = 0

    def write(self, data):
        self.crc = binascii.crc32(data, self.crc)
        return len(data)


def crc_of(model):
    w = Crc()
    model.save(w)
    return w.crc


def exists(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False


try:
    m = mcutrain_util.load(PATH)          # raises if neither file holds a whole model
    print('loaded', crc_of(m), sorted(os.listdir('/flash')))
except (OSError, ValueError) as e:
    # No model on /flash (the first boot, or a cut before the first save completed): the original.
    m = mcutrain.Model(open('/rom/model.mct', 'rb').read())
    print('fresh', [(n, os.stat('/flash/' + n)[6]) for n in os.listdir('/flash')], repr(e))
xs = open('/rom/inputs.bin', 'rb').read()
size = m.input_shape[0] * m.input_shape[1] * m.input_shape[2]
i = 0
qemu_flash.cut(_cut)
while True:
    m.train_step(xs[(i % 12) * size:(i % 12 + 1) * size], i % m.n_classes, 0.05)
    crc = crc_of(m)
    print('saving', crc)
    mcutrain_util.save_atomic(m, PATH)
    print('saved', crc, qemu_flash.writes())
    i += 1
