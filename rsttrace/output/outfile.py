"""Where `-o FILE` output goes: a regular file is written whole or not at
all (a temporary file beside it, renamed into place when the run ends);
anything else (a terminal, /dev/null, a FIFO, a socket) is written to
directly, since renaming over it would replace the device or pipe with a
regular file."""

import os
import stat
import sys

from rsttrace.errors import RsttraceError


class OutputFile:
    def __init__(self, path):
        self.path = path
        self.tmp = None
        self.target = None
        self.stream = None

    def open(self):
        if not self.path or self.path == "-":
            self.stream = sys.stdout
            return self.stream
        # Through symlinks: the link stays, what it points to is replaced.
        self.target = os.path.realpath(self.path)
        try:
            st = os.stat(self.target)
        except FileNotFoundError:
            st = None
        except OSError as e:
            raise self._error(e)
        try:
            if st is not None and not stat.S_ISREG(st.st_mode):
                self.stream = open(self.target, "w")
                return self.stream
            directory, name = os.path.split(self.target)
            self.tmp = os.path.join(directory, ".%s.rsttrace-partial" % name)
            self.stream = open(self.tmp, "w")
            if st is not None:
                os.chmod(self.tmp, stat.S_IMODE(st.st_mode))
        except OSError as e:
            self.tmp = None
            raise self._error(e)
        return self.stream

    def _error(self, e):
        return RsttraceError("cannot write %s (%s)" % (self.path,
                                                       e.strerror),
                             "choose a writable path with --output")

    def commit(self):
        """The run ended: the file takes its place."""
        self._close(lambda tmp: os.replace(tmp, self.target))

    def discard(self):
        """The run failed: a regular file is left as it was."""
        self._close(os.unlink)

    def _close(self, finish_tmp):
        if self.stream is None or self.stream is sys.stdout:
            return
        self.stream.close()
        self.stream = None
        if self.tmp:
            finish_tmp(self.tmp)
            self.tmp = None
