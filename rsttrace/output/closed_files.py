"""What happens to a rotated capture file once it is closed (`trace -C`):
gzip with --compress, removal of the oldest beyond -W COUNT. Done by one
worker thread, in the order the files were closed, so that compressing a
large file never holds up the tracing loop (zlib lets go of the GIL).

A file is only ever compressed once closed, never the one being written.
The .gz is written under a hidden temporary name and linked into place
when whole (link() never replaces an existing name), then the original is
removed: at every moment FILE.N or FILE.N.gz (or both) holds the whole
file. Files are removed only when they are still the files rsttrace wrote
(checked by inode), so a name someone replaced is left alone.
"""

import concurrent.futures
import gzip
import os
import shutil
import stat

from rsttrace.errors import RsttraceError
from rsttrace.output import rotation, safe_open


class ClosedFiles:
    def __init__(self, dir_fd, name, shown_dir, compress, keep, warn):
        self.dir_fd = dir_fd
        self.name = name            # the capture's first file, in dir_fd
        self.shown_dir = shown_dir
        self.compress = compress
        self.keep = keep            # -W COUNT, or None
        self.warn = warn
        self.files = {}             # number -> (entry, lstat) it now has
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="rsttrace-closed")
        self._jobs = []

    def closed(self, number, st):
        """File `number` (its lstat `st`) was closed; file number + 1 is
        being written now."""
        self._jobs = [j for j in self._jobs if not j.done()]
        self._jobs.append(self._pool.submit(self._job, number, st))

    def finish(self):
        """Wait for every file closed so far to be done with."""
        self._pool.shutdown(wait=True)

    def _shown(self, entry):
        return os.path.join(self.shown_dir, entry)

    def _job(self, number, st):
        self.files[number] = (rotation.member(self.name, number), st)
        oldest_kept = number + 2 - self.keep if self.keep else 0
        if self.compress and number >= oldest_kept:
            self._trying("compress", self._gzip, number)
        for n in sorted(self.files):
            if n < oldest_kept:
                self._trying("remove (-W)", self._remove, n)

    def _trying(self, doing, fn, number):
        """fn(number); a failure is a warning (the file stays as it is),
        never an exception in a thread nobody reads."""
        try:
            fn(number)
        except BaseException as e:
            why = str(e) if isinstance(e, RsttraceError) else \
                getattr(e, "strerror", None) or repr(e)
            self.warn("could not %s %s, left as it is: %s" % (
                doing, self._shown(self.files[number][0]), why))

    def _gzip(self, number):
        entry, st = self.files[number]
        gz = rotation.member(self.name, number, compressed=True)
        src = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                      dir_fd=self.dir_fd)
        with open(src, "rb") as f:
            now = os.fstat(f.fileno())
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                self.warn("%s changed after it was written: not compressed"
                          % self._shown(entry))
                return
            tmp_fd, tmp = safe_open.create_temporary(self.dir_fd, gz)
            try:
                with open(tmp_fd, "wb") as raw:
                    os.fchmod(raw.fileno(), stat.S_IMODE(st.st_mode))
                    with gzip.GzipFile(entry, "wb", fileobj=raw,
                                       mtime=int(now.st_mtime)) as out:
                        shutil.copyfileobj(f, out, 1 << 20)
                try:
                    os.link(tmp, gz, src_dir_fd=self.dir_fd,
                            dst_dir_fd=self.dir_fd, follow_symlinks=False)
                except FileExistsError:
                    safe_open.judged(self.dir_fd, gz, self._shown(gz))
                    raise
            finally:
                safe_open.unlink_same(self.dir_fd, tmp, None)
        self.files[number] = (gz, os.stat(gz, dir_fd=self.dir_fd,
                                          follow_symlinks=False))
        safe_open.unlink_same(self.dir_fd, entry, st)

    def _remove(self, number):
        entry, st = self.files[number]
        if not safe_open.unlink_same(self.dir_fd, entry, st):
            self.warn("%s changed after it was written: not removed (-W)"
                      % self._shown(entry))
        del self.files[number]
