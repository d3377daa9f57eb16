# The board's side of a fleet client (MicroPython; host_tools/fleet/board.py drives it).
#
# Reads one command per line from the console, answers one line '@fleet ok ...' or
# '@fleet err ...'. The model is the one saved last (mcutrain_util.save_atomic) if there is one,
# else the file it was given: a board that reset rejoins from its last saved model.
#   L <hex>            load an update blob (the fleet's global trained tensors)
#   T <lr> <i,j,...>   one training step on each of these local images, in this order
#   B                  the trained tensors as an update blob (hex)
#   S                  save the model (save_atomic)
import sys
import mcutrain
import mcutrain_util

SAVED, GIVEN = sys.argv[1:3] if len(sys.argv) > 2 else ('/flash/model.mct', '/rom/fashion.mct')


def read(name):
    with open(name, 'rb') as f:
        return f.read()


try:
    model = mcutrain_util.load(SAVED)
except (OSError, ValueError):
    model = mcutrain.Model(read(GIVEN))
train, labels = read('train.bin'), read('train_labels.bin')
SIZE = len(train) // len(labels)      # bytes per image


def answer(ok, text):
    print('@fleet', 'ok' if ok else 'err', text)


answer(True, 'ready %d' % len(labels))
while True:
    line = sys.stdin.readline()
    if not line:
        break               # the host is gone
    line = line.strip()
    if not line:
        continue
    cmd, _, arg = line.partition(' ')
    try:
        if cmd == 'L':
            model.load_update(bytes.fromhex(arg))
            answer(True, '')
        elif cmd == 'T':
            lr, _, order = arg.partition(' ')
            total = 0.0
            for i in order.split(','):
                i = int(i)
                total += model.train_step(train[i * SIZE:(i + 1) * SIZE], labels[i], float(lr))
            answer(True, repr(total))
        elif cmd == 'B':
            answer(True, model.update_blob().hex())
        elif cmd == 'S':
            answer(True, str(mcutrain_util.save_atomic(model, SAVED)))
        else:
            answer(False, 'unknown command ' + cmd)
    except (ValueError, OSError) as e:
        answer(False, str(e))
