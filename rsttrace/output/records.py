"""Reading back the JSON lines rsttrace writes: `trace --json` captures
(`report`), plain or gzipped, alone or as a rotated set, and `scenarios
run -o` results (`matrix`). One reader, so all treat bad input alike: one
clear error for a file that is not what was asked for, a warning (and the
rest of the file) for a last line cut off by a kill, never a traceback.
Files are read a line at a time: a capture of hours need not fit in
memory, and neither does a file that is not one."""

import gzip
import json
import os
import zlib

from rsttrace.errors import RsttraceError
from rsttrace.output import rotation

# The record kinds of a `trace --json` capture (docs/json-schema.md).
EVENT_KINDS = ("sent", "received", "challenge_ack", "abort")
OTHER_KINDS = ("lost", "summary")

# No record comes near this (a summary of thousands of distinct rows is a
# few MB); a longer line means the file is not one of rsttrace's.
LINE_MAX = 64 << 20
GZIP_MAGIC = b"\x1f\x8b"


def capture_files(paths):
    """The files to read for `paths`, in order: each path with the rest of
    its rotated set (`trace -C`: FILE, FILE.1, FILE.2..., or their .gz),
    found beside the file it names; each file once."""
    out, seen = [], set()
    for path in paths:
        real = os.path.realpath(path)
        where = os.path.dirname(real if os.path.islink(path) else path)
        try:
            found = rotation.members(os.path.basename(real),
                                     os.listdir(os.path.dirname(real)))
        except OSError:
            found = []
        names = [os.path.join(where, entry) for _, _, entry in found] or \
            [path]
        for name in names:
            key = os.path.realpath(name)
            if key not in seen:
                seen.add(key)
                out.append(name)
    return out


def read(path, what, warn):
    """The JSON objects of the file at `path`, one per line, as a list of
    (line number, object)."""
    return list(lines(path, what, warn))


def lines(path, what, warn):
    """(line number, object) for each JSON object line of the file at
    `path` (plain or gzip). `what` names what the file should be (for the
    errors), `warn(text)` takes warnings."""
    fix = "give a file written by %s" % what
    try:
        raw = open(path, "rb")
    except OSError as e:
        raise RsttraceError("cannot read %s (%s)" % (path, e.strerror),
                            "check the path")
    with raw:
        try:
            compressed = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            f = gzip.GzipFile(fileobj=raw) if compressed else raw
            yield from _objects(f, path, fix, warn)
        except EOFError:
            warn("%s ends before its gzip stream does (cut off?): read up "
                 "to there" % path)
        except (zlib.error, gzip.BadGzipFile) as e:
            raise RsttraceError("%s is not a whole gzip file (%s)"
                                % (path, e), fix)
        except OSError as e:
            raise RsttraceError("cannot read %s (%s)" % (path, e.strerror
                                                          or e), fix)


def _objects(f, path, fix, warn):
    n = 0
    while True:
        raw = f.readline(LINE_MAX)
        if not raw:
            return
        n += 1
        cut = not raw.endswith(b"\n")   # the last line, or one too long
        if cut and len(raw) == LINE_MAX:
            raise RsttraceError("%s line %d is longer than %d MB" % (
                path, n, LINE_MAX >> 20), fix)
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise RsttraceError("%s line %d is not text (a binary file?)"
                                % (path, n), fix)
        except ValueError:
            if cut:
                warn("%s: its last line is cut off (the writer was killed "
                     "mid-line?), skipped" % path)
                return
            raise RsttraceError("%s line %d is not JSON" % (path, n), fix)
        except RecursionError:
            raise RsttraceError("%s line %d nests deeper than Python reads"
                                % (path, n), fix)
        if not isinstance(obj, dict):
            raise RsttraceError("%s line %d is not a JSON object" % (path, n),
                                fix)
        yield n, obj
