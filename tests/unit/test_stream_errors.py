"""Output write failures become one-line RsttraceErrors; a broken pipe
stays what it is (rsttrace.output.stream_errors)."""

import errno
import io

import pytest

from rsttrace.errors import RsttraceError
from rsttrace.output.stream_errors import (OutputError, ReportingStream,
                                           output_error)


class Failing(io.StringIO):
    """A stream whose write or flush raises `error`."""

    def __init__(self, error, on="write", tty=False):
        super().__init__()
        self.error, self.on, self.tty = error, on, tty

    def write(self, text):
        if self.on == "write":
            raise self.error
        return super().write(text)

    def flush(self):
        if self.on == "flush":
            raise self.error

    def isatty(self):
        return self.tty


def test_output_error_names_the_output_and_the_fix():
    e = output_error("out.jsonl", OSError(errno.ENOSPC,
                                          "No space left on device"))
    assert isinstance(e, OutputError) and isinstance(e, RsttraceError)
    assert str(e) == ("cannot write out.jsonl (No space left on device): "
                      "free space there, or choose another --output")
    assert e.exit_code == 1


def test_output_error_without_strerror_shows_the_error():
    e = output_error("stdout", OSError("mystery"))
    assert str(e).startswith("cannot write stdout (mystery): ")


def test_writes_pass_through():
    inner = io.StringIO()
    s = ReportingStream(inner, "stdout")
    assert s.write("abc") == 3
    s.flush()
    assert inner.getvalue() == "abc"
    assert s.name == "stdout" and s.stream is inner


@pytest.mark.parametrize("on", ["write", "flush"])
def test_os_errors_become_output_errors(on):
    err = OSError(errno.EIO, "Input/output error")
    s = ReportingStream(Failing(err, on), "capture.jsonl")
    with pytest.raises(OutputError) as e:
        s.write("x")
        s.flush()
    assert str(e.value) == ("cannot write capture.jsonl (Input/output "
                            "error): free space there, or choose another "
                            "--output")
    assert e.value.__cause__ is err


@pytest.mark.parametrize("on", ["write", "flush"])
def test_broken_pipe_is_left_alone(on):
    s = ReportingStream(Failing(BrokenPipeError(errno.EPIPE, "Broken pipe"),
                                on), "stdout")
    with pytest.raises(BrokenPipeError):
        s.write("x")
        s.flush()


@pytest.mark.parametrize("tty", [True, False])
def test_isatty_is_the_streams(tty):
    assert ReportingStream(Failing(None, "none", tty), "x").isatty() is tty
