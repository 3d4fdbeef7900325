"""The emulated board's flash as MicroPython sees it, mounted at / by board_boot.py: the
VfsPosix of its flash folder, with sizes in ilistdir and a flash size in statvfs. MicroPython
code only.

A module of its own in the board's firmware image like board_boot.py: the mounted Flash keeps its
functions, and so this module, alive for the board's life; the boot's module goes.
"""

import vfs


# a wrapper, not a VfsPosix subclass: the VFS layer hands a subclass instance to VfsPosix's
# C import_stat as if it were the native object, and imports from /lib fail
class Flash:
    def __init__(self, root, size):
        self.fs = vfs.VfsPosix(root)
        self.root = root.rstrip("/")
        self.size = size  # bytes statvfs reports; 0: the host disk's

    def rename(self, old, new):
        # VfsPosix(root).rename joins both paths to the root in one buffer, so the first is
        # overwritten and every rename fails with ENOENT (unix port 1.29): rename host paths
        # through a root-less VfsPosix instead. A relative path is relative to the process's
        # cwd, which VfsPosix.chdir keeps inside the flash folder, so it passes as it is.
        # The root-less VfsPosix is made per call: the board's heap is the application's.
        root = self.root
        vfs.VfsPosix().rename(*[root + p if p[:1] == "/" else p for p in (old, new)])

    def __getattr__(self, name):
        return getattr(self.fs, name)

    def __str__(self):
        # what vfs.mount() lists (mpremote df prints it in a 10-character column)
        return str(self.fs)

    def ilistdir(self, path):
        base = path.rstrip("/") + "/"
        for entry in self.fs.ilistdir(path):
            size = 0 if entry[1] == 0x4000 else self.fs.stat(base + entry[0])[6]
            yield (entry[0], entry[1], entry[2], size)

    def used(self, path):
        return sum(e[3] if e[1] != 0x4000 else self.used(path + e[0] + "/") for e in self.ilistdir(path))

    def statvfs(self, path):
        st = self.fs.statvfs(path)
        if not self.size:
            return st
        bsize = st[0]
        blocks, used = self.size // bsize, (self.used("/") + bsize - 1) // bsize
        free = max(0, blocks - used)
        return (bsize, bsize, blocks, free, free) + tuple(st[5:])
