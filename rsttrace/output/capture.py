"""Where `rsttrace trace` writes its events (standard output, or `-o
FILE`): as it goes, whole lines only, so that `tail -f FILE` follows the
run and FILE holds every event read before a crash or `kill -9`.

    -o FILE     FILE is truncated once the probes are attached (a run that
                fails to start leaves an existing FILE as it was, and
                removes a FILE it created), like tcpdump -w; the numbered
                files of an earlier rotated capture at the same name go
                with it, so FILE and its numbered files are always one
                capture. A device or FIFO is written to as it is.
    -C SIZE     a new file once one has passed SIZE bytes, at a line
                boundary: FILE, FILE.1, FILE.2... (rsttrace.output.rotation)
    -W COUNT    at most COUNT files: the oldest is removed
    --compress  each file gzipped once closed (rsttrace.output.closed_files)

Every name is opened by rsttrace.output.safe_open's rules: FILE through
trusted symlinks only; the numbered files are made new (O_EXCL, never
through a link) beside the file FILE names, and another user's entry
under one of their names in a sticky world-writable directory is refused.
Lines are written by rsttrace.output.lines (one os.write per batch); a
write error is an OutputError saying how many lines read were not written.

A binary capture (`-w FILE`, pcapng; Capture(path, binary=True)) is written
the same way, as it goes, in whole blocks (each write() is one), and never
rotated.
"""

import os
import stat
import sys

from rsttrace.errors import RsttraceError
from rsttrace.output import rotation, safe_open
from rsttrace.output.closed_files import ClosedFiles
from rsttrace.output.lines import LineFile
from rsttrace.output.outfile import cannot_write
from rsttrace.output.stream_errors import output_error

# What is written is written out once it holds this many pieces (lines, or
# parts of lines; about 300 KB of JSON lines), not only at the session's
# flush every batch: in a storm a batch is tens of megabytes, and joining,
# encoding and writing it after it has left the CPU's caches cost a third
# of the tracer's time per event (scripts/bench).
WRITE_EVERY = 256


class Capture:
    def __init__(self, path, rotate_bytes=None, keep=None, compress=False,
                 warn=None, binary=False):
        self.path = None if path in (None, "-") else path
        self.binary = binary        # whole records (bytes), not lines
        self.shown = self.path or "stdout"
        self.limit = rotate_bytes
        self.keep = keep
        self.compress = compress
        self.warn = warn or (lambda m: print("rsttrace: " + m,
                                             file=sys.stderr, flush=True))
        self.file = None            # LineFile being written
        self.target = None          # safe_open.Target of FILE
        self.number = 0             # of the file being written
        self.closed_files = None
        self.begun = False
        self._pending = []

    # -- life cycle -----------------------------------------------------

    def open(self):
        """Check and open FILE before the tracer starts (a bad path fails
        first); nothing is truncated or removed yet."""
        if self.path is None:
            sys.stdout.flush()
            self.file = LineFile(sys.stdout.fileno(), owned=False)
            return self
        try:
            fd, self.target = safe_open.open_for_write(self.path)
            self.file = LineFile(fd)
            if self.limit is not None and not self.file.regular:
                raise RsttraceError("-C rotates regular files, and %s is not "
                                    "one" % self.path, "give a file name")
            if self.file.regular and not self.binary:
                self._earlier_files()           # refused before anything
        except BaseException as e:
            self.discard()
            if isinstance(e, OSError):
                raise cannot_write(self.path, e)
            raise
        return self

    def begin(self):
        """The tracer runs: FILE starts empty, an earlier capture's
        numbered files go."""
        self.begun = True
        if self.target is None or not self.file.regular:
            return
        try:
            os.ftruncate(self.file.fd, 0)
            # (a binary capture is never rotated: it has no numbered files)
            gone = [] if self.binary else [
                entry for entry in self._earlier_files()
                if safe_open.unlink_same(self.target.dir_fd, entry, None)]
        except OSError as e:
            raise cannot_write(self.path, e)
        if gone:
            gone.sort(key=lambda e: rotation.parse(
                self.target.name, safe_open.temporary_of(e) or e))
            self.warn("removed %d files of an earlier capture at %s (%s)"
                      % (len(gone), self.path, ", ".join(gone[:4]) +
                         (", ..." if len(gone) > 4 else "")))
        if self.limit is not None:
            self.closed_files = ClosedFiles(
                self.target.dir_fd, self.target.name, self._dir_shown(),
                self.compress, self.keep, self.warn)

    def close(self):
        """Write what is left; close; wait for the last compression."""
        try:
            self.flush()
        finally:
            self.discard()

    def discard(self):
        """Close without writing what is left. Before begin(), a FILE this
        run created is removed (an existing one was never touched)."""
        if self.file is not None:
            self.file.close()
            self.file = None
        if self.target is not None and self.target.created and \
                not self.begun:
            safe_open.unlink_same(self.target.dir_fd, self.target.name,
                                  self.target.st)
        if self.closed_files is not None:
            self.closed_files.finish()
            self.closed_files = None
        if self.target is not None:
            os.close(self.target.dir_fd)
            self.target = None

    # -- the stream the writers write to ------------------------------------

    def write(self, text):
        """A line's text (lines may come in parts), or in a binary capture
        one whole record (bytes)."""
        pending = self._pending
        pending.append(text)
        # at the end of a line (or record): a write error then leaves
        # whole lines pending, never part of one
        if len(pending) >= WRITE_EVERY and self.begun and (
                self.binary or text[-1:] == "\n"):
            self.flush()

    def isatty(self):
        return self.file.isatty()

    def flush(self):
        """Write every whole line written since the last flush."""
        if not self._pending:
            return
        if self.binary:
            return self._flush_records()
        text = "".join(self._pending)
        cut = text.rfind("\n") + 1
        self._pending = [text[cut:]] if cut < len(text) else []
        data = text[:cut].encode("utf-8", "backslashreplace")
        done = 0                    # bytes of data in a file
        try:
            while done < len(data):
                if self.limit is not None and self.file.size >= self.limit:
                    self._rotate()
                end = self._line_past_limit(data, done)
                before = self.file.size
                try:
                    self.file.write(data[done:end])
                finally:
                    done += self.file.size - before
        except BrokenPipeError:
            raise                   # the reader left (`| head`): no error
        except OSError as e:
            raise output_error(self.shown, e, data[done:].count(b"\n")) \
                from e

    def _flush_records(self):
        records, self._pending = self._pending, []
        ends, end = [], 0
        for record in records:
            end += len(record)
            ends.append(end)
        before = self.file.size
        try:
            self.file.write(b"".join(records), ends)
        except BrokenPipeError:
            raise
        except OSError as e:
            written = self.file.size - before
            raise output_error(self.shown, e, len(
                [x for x in ends if x > written]), "packet") from e

    # -- rotation -----------------------------------------------------------

    def _line_past_limit(self, data, start):
        """Where in `data` the file being written reaches -C SIZE: the end
        of the line that takes it there (or of `data`)."""
        if self.limit is None:
            return len(data)
        nl = data.find(b"\n", start + max(self.limit - self.file.size, 1) - 1)
        return len(data) if nl < 0 else nl + 1

    def _rotate(self):
        """Close the file being written and open the next one."""
        done = os.fstat(self.file.fd)
        self.file.close()
        self.number += 1
        entry = rotation.member(self.target.name, self.number)
        fd = safe_open.create_replacing(
            self.target.dir_fd, entry, self._shown(entry),
            stat.S_IMODE(self.target.st.st_mode))
        self.file = LineFile(fd)
        self.closed_files.closed(self.number - 1, done)

    def _earlier_files(self):
        """The numbered (or compressed) files and compression leftovers of
        a capture at FILE's name; another user's is refused."""
        out = []
        for entry in safe_open.entries(self.target.dir_fd):
            name = safe_open.temporary_of(entry) or entry
            got = rotation.parse(self.target.name, name)
            if got is None or (got == (0, False) and name == entry):
                continue            # not one, or FILE itself
            safe_open.judged(self.target.dir_fd, entry, self._shown(entry))
            out.append(entry)
        return out

    def _dir_shown(self):
        return os.path.dirname(self.target.shown)

    def _shown(self, entry):
        return os.path.join(self._dir_shown(), entry)
