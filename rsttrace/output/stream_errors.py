"""An output stream whose write failures (a full disk, an I/O error, a
file system gone read-only) are RsttraceErrors: one line saying what
failed and how to fix it, instead of a traceback.

A broken pipe is left as it is: the reader went away (`rsttrace trace |
head`), which is no error of rsttrace's to explain.
"""

from rsttrace.errors import RsttraceError


class OutputError(RsttraceError):
    """The output could not be written."""


def output_error(name, e):
    """The OutputError for OSError `e` on the output called `name`."""
    return OutputError("cannot write %s (%s)" % (name, e.strerror or e),
                       "free space there, or choose another --output")


class ReportingStream:
    """Wraps a text stream; write() and flush() raise OutputError."""

    def __init__(self, stream, name):
        self.stream = stream
        self.name = name          # what the user called it: -o FILE or stdout

    def write(self, text):
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as e:
            raise output_error(self.name, e) from e

    def flush(self):
        try:
            self.stream.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            raise output_error(self.name, e) from e

    def isatty(self):
        return self.stream.isatty()
