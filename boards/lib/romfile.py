# Board-side helper for scripts that read data files (send it with them: the runners and deploy
# give the board files by base name, so `import romfile` finds it next to the script).
# A file in ROMFS (memory-mapped Flash) is used in place, without a copy in RAM; a file elsewhere
# (a littlefs/FAT filesystem, the unix port's disk) cannot be, so it is read into RAM.


def load(name):
    f = open(name, 'rb')
    try:
        return memoryview(f)
    except TypeError:
        return f.read()
