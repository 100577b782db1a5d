#!/usr/bin/env python3
"""A FUSE file system holding one file, `blob`, whose reads never return.

The stand-in for a hung NFS or SAN mount: the file is regular, has the size given, and
every read blocks until the reader is interrupted or killed, as on NFS. (The kernel
waits for a FUSE answer once the server has the request, even for a killed reader; so
the server answers EINTR when the kernel says the reader was interrupted.) Used through tests/integration/common/hung.rs.

Usage: hung_fs.py MOUNTPOINT SIZE
"""
import errno
import stat
import sys
import time

import fusepy  # Debian: python3-fusepy
from fusepy import FUSE, FuseOSError, Operations


class Hung(Operations):
    def __init__(self, size):
        self.size = size

    def getattr(self, path, fh=None):
        if path == "/":
            return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2}
        if path == "/blob":
            return {"st_mode": stat.S_IFREG | 0o444, "st_nlink": 1, "st_size": self.size}
        raise FuseOSError(errno.ENOENT)

    def readdir(self, path, fh):
        return [".", "..", "blob"]

    def open(self, path, fi):
        # Past the page cache: a read waits for its answer alone (killably), and no
        # later open waits on the page lock a pending read holds (which nothing kills).
        fi.direct_io = True
        return 0

    def read(self, path, size, offset, fi):
        while not fusepy._libfuse.fuse_interrupted():
            time.sleep(0.05)
        raise FuseOSError(errno.EINTR)


if __name__ == "__main__":
    FUSE(Hung(int(sys.argv[2])), sys.argv[1], foreground=True, ro=True, nothreads=False, raw_fi=True, intr=True)
