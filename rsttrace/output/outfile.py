"""A file written whole or not at all: the results of `scenarios run -o`,
`matrix -o` and the benchmarks, documents made at the end of a run. A
regular file is written to a temporary file beside it, renamed into place
by commit(); anything else (a terminal, /dev/null, a FIFO, a socket) is
written to directly, since renaming over it would replace the device or
pipe with a regular file. (`trace -o`, a capture that must survive a
kill, is written as it goes instead: rsttrace.output.capture.)

The path is opened by rsttrace.output.safe_open: trusted symlinks are
followed (the link stays, what it points to is replaced), another user's
symlink or file in a world-writable directory is refused.
"""

import os
import stat
import sys

from rsttrace.errors import RsttraceError
from rsttrace.output import safe_open


def cannot_write(path, e):
    return RsttraceError("cannot write %s (%s)" % (path, e.strerror or e),
                         "choose a writable path with -o")


class OutputFile:
    def __init__(self, path, binary=False):
        self.path = path
        self.binary = binary        # bytes (trace -w), else text
        self.target = None          # safe_open.Target of the file
        self.tmp = None             # the temporary file's name, beside it
        self.stream = None

    def open(self):
        if not self.path or self.path == "-":
            self.stream = sys.stdout.buffer if self.binary else sys.stdout
            return self.stream
        fd = None
        try:
            self.target = safe_open.resolve(self.path)
            safe_open.check(self.target)
            st = self.target.st
            if st is not None and not stat.S_ISREG(st.st_mode):
                self._close_dir()
                fd, self.target = safe_open.open_for_write(self.path)
            else:
                fd, self.tmp = safe_open.create_temporary(
                    self.target.dir_fd, self.target.name)
                if st is not None:
                    os.fchmod(fd, stat.S_IMODE(st.st_mode))
            self.stream = open(fd, "wb" if self.binary else "w")
        except BaseException as e:
            if fd is not None and self.stream is None:
                os.close(fd)
            self._abandon()
            if isinstance(e, OSError):
                raise cannot_write(self.path, e)
            raise
        return self.stream

    def commit(self):
        """The run ended: the file takes its place."""
        self._close(lambda tmp: os.replace(
            tmp, self.target.name, src_dir_fd=self.target.dir_fd,
            dst_dir_fd=self.target.dir_fd))

    def discard(self):
        """The run failed: a regular file is left as it was."""
        self._close(lambda tmp: os.unlink(tmp, dir_fd=self.target.dir_fd))

    def discard_quietly(self):
        """discard() after a failure, which is the one reported. On a full
        disk close() fails too, on its flush, but closes the file all the
        same (io's close() always does); discard() stopped there, so it is
        asked again, and this time it removes the temporary file."""
        for _ in range(2):
            try:
                self.discard()
                return
            except OSError:
                pass

    def _close(self, finish_tmp):
        if self.stream is None or self.stream in (
                sys.stdout, getattr(sys.stdout, "buffer", None)):
            return
        try:
            self.stream.close()
            self.stream = None
            if self.tmp:
                finish_tmp(self.tmp)
                self.tmp = None
        finally:
            if self.stream is None:
                self._close_dir()

    def _abandon(self):
        """open() failed half-way: nothing of it is left."""
        if self.tmp:
            try:
                os.unlink(self.tmp, dir_fd=self.target.dir_fd)
            except OSError:
                pass
            self.tmp = None
        self._close_dir()

    def _close_dir(self):
        if self.target is not None:
            os.close(self.target.dir_fd)
            self.target = None
