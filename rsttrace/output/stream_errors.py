"""The one error for output that could not be written (a full disk, an I/O
error, a file system gone read-only): one line saying what failed, what
of the run was not written, and how to fix it, instead of a traceback.

A broken pipe is not one: the reader went away (`rsttrace trace | head`),
which is no error of rsttrace's to explain.
"""

from rsttrace.errors import RsttraceError


class OutputError(RsttraceError):
    """The output could not be written."""


def output_error(name, e, unwritten=None, unit="line"):
    """The OutputError for OSError `e` on the output called `name`;
    `unwritten`: how many lines (or other units) read could not be
    written."""
    what = e.strerror or str(e)
    if unwritten:
        what += "; %d %s%s read not written, the %ss before are whole" \
            % (unwritten, unit, "s" * (unwritten != 1), unit)
    return OutputError("cannot write %s (%s)" % (name, what),
                       "free space there, or choose another -o FILE")
