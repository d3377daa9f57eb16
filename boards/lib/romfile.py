# Board-side helper for scripts that read data files (send it with them: the runners and deploy
# give the board files by base name, so `import romfile` finds it next to the script).
# A file in ROMFS (memory-mapped Flash) is used in place, without a copy in RAM; a file elsewhere
# (a littlefs/FAT filesystem, the unix port's disk) cannot be: load() reads it into RAM, Records
# reads one record at a time (a file larger than the board's RAM).
import os


def find(name):
    """name in the working directory, else in ROMFS (/rom): where `host_tools deploy --romfs` put it."""
    for path in (name, '/rom/' + name):
        try:
            os.stat(path)
            return path
        except OSError:
            pass
    raise OSError('no file %s here (%s) or in /rom' % (name, os.getcwd()))


def load(name):
    f = open(name, 'rb')
    try:
        return memoryview(f)
    except TypeError:
        return f.read()


class Records:
    """A file of records of `size` bytes one after another (int8 images, say): records[i] is a view
    into Flash when the file is in ROMFS, else record i read into one buffer (valid until the next)."""

    def __init__(self, name, size):
        self.file = open(name, 'rb')
        self.size = size
        try:
            self.view = memoryview(self.file)
        except TypeError:
            self.view = None
            self.buf = bytearray(size)

    def __getitem__(self, i):
        if self.view is not None:
            return self.view[i * self.size:(i + 1) * self.size]
        self.file.seek(i * self.size)
        self.file.readinto(self.buf)
        return self.buf
