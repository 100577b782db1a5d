#!/usr/bin/env python3
"""A FUSE file system passing everything through to a directory, whose fsyncs are slow.

The stand-in for a disk whose final flush takes a while (a busy SAN, a slow USB disk):
reads and writes go straight to BACKING, and every fsync and fsyncdir first sleeps
SECONDS. Used through tests/integration/common/fuse.rs.

Usage: slow_sync_fs.py MOUNTPOINT BACKING SECONDS
"""
import errno
import os
import sys
import time

from fusepy import FUSE, FuseOSError, Operations  # Debian: python3-fusepy


class SlowSync(Operations):
    def __init__(self, backing, seconds):
        self.backing = backing
        self.seconds = seconds

    def _real(self, path):
        return os.path.join(self.backing, path.lstrip("/"))

    def __call__(self, op, *args):
        try:
            return super().__call__(op, *args)
        except OSError as e:
            raise FuseOSError(e.errno or errno.EIO)

    def getattr(self, path, fh=None):
        st = os.lstat(self._real(path))
        keys = ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_blocks",
                "st_atime", "st_mtime", "st_ctime")
        return {k: getattr(st, k) for k in keys}

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._real(path))

    def statfs(self, path):
        st = os.statvfs(self._real(path))
        keys = ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files",
                "f_ffree", "f_favail", "f_flag", "f_namemax")
        return {k: getattr(st, k) for k in keys}

    def create(self, path, mode, fi=None):
        return os.open(self._real(path), os.O_CREAT | os.O_EXCL | os.O_RDWR, mode)

    def open(self, path, flags):
        return os.open(self._real(path), flags)

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def write(self, path, data, offset, fh):
        return os.pwrite(fh, data, offset)

    def truncate(self, path, length, fh=None):
        if fh is None:
            os.truncate(self._real(path), length)
        else:
            os.ftruncate(fh, length)

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        os.close(fh)

    def fsync(self, path, datasync, fh):
        time.sleep(self.seconds)
        os.fsync(fh)

    def fsyncdir(self, path, datasync, fh):
        time.sleep(self.seconds)

    def rename(self, old, new):
        os.rename(self._real(old), self._real(new))

    def link(self, target, source):
        os.link(self._real(source), self._real(target))

    def unlink(self, path):
        os.unlink(self._real(path))

    def chmod(self, path, mode):
        os.chmod(self._real(path), mode)

    def chown(self, path, uid, gid):
        os.chown(self._real(path), uid, gid)

    def utimens(self, path, times=None):
        os.utime(self._real(path), times)


if __name__ == "__main__":
    mountpoint, backing, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    FUSE(SlowSync(backing, seconds), mountpoint, foreground=True, nothreads=False)
