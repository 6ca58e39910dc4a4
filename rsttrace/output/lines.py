"""A file descriptor written whole lines (or whole records) at a time.

Python's buffered files write out their buffer whenever it fills, which
may be in the middle of a line: a reader (`tail -f`, a process killed with
SIGKILL before its next flush) would see a cut line. LineFile takes bytes
that end at a line boundary and hands them to os.write() itself; when a
write stops part-way (a full disk), a regular file is cut back to the last
whole line before the error is raised.

One limit is the kernel's: a write() that crosses a page boundary may be
ended at that boundary by SIGKILL (mm/filemap.c generic_perform_write()
checks fatal_signal_pending() between folios), so a kill -9 landing inside
a write can leave a cut last line; `rsttrace report` skips such a line
with a warning. Binary output (a pcapng capture, `trace -w`) is written the
same way with its records' ends given, so that its file holds whole blocks.
"""

import errno
import os
import stat


class LineFile:
    """Whole lines to `fd`. `size` counts the bytes written through it."""

    def __init__(self, fd, owned=True):
        self.fd = fd
        self.owned = owned          # close() closes fd (not so stdout)
        self.regular = stat.S_ISREG(os.fstat(fd).st_mode)
        self.size = 0

    def write(self, data, ends=None):
        """Write `data` (bytes ending with a newline; or whole records
        ending at the offsets `ends`, ascending) in full, or raise OSError
        with whole lines (records) only written (`size` counts them)."""
        done = 0
        try:
            while done < len(data):
                n = os.write(self.fd, data[done:])
                if n <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                done += n
        except OSError:
            whole = data.rfind(b"\n", 0, done) + 1 if ends is None else \
                max([end for end in ends if end <= done], default=0)
            if whole < done and self.regular:
                try:
                    self._cut_back(done - whole)
                except OSError:     # the first error is the one to tell
                    pass
            self.size += whole
            raise
        self.size += done

    def _cut_back(self, extra):
        """Remove the last `extra` bytes written (part of a line)."""
        end = os.lseek(self.fd, 0, os.SEEK_CUR) - extra
        os.ftruncate(self.fd, end)
        os.lseek(self.fd, end, os.SEEK_SET)

    def isatty(self):
        return os.isatty(self.fd)

    def close(self):
        if self.fd is not None and self.owned:
            os.close(self.fd)
        self.fd = None
