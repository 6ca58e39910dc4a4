"""Output write failures become one-line RsttraceErrors
(rsttrace.output.stream_errors)."""

import errno

from rsttrace.errors import RsttraceError
from rsttrace.output.stream_errors import OutputError, output_error


def test_output_error_names_the_output_and_the_fix():
    e = output_error("out.jsonl", OSError(errno.ENOSPC,
                                          "No space left on device"))
    assert isinstance(e, OutputError) and isinstance(e, RsttraceError)
    assert str(e) == ("cannot write out.jsonl (No space left on device): "
                      "free space there, or choose another -o FILE")
    assert e.exit_code == 1


def test_output_error_without_strerror_shows_the_error():
    e = output_error("stdout", OSError("mystery"))
    assert str(e).startswith("cannot write stdout (mystery): ")


def test_output_error_counts_what_was_not_written():
    e = output_error("out.jsonl", OSError(errno.ENOSPC, "No space left"), 1)
    assert str(e).startswith("cannot write out.jsonl (No space left; 1 line "
                             "read not written, the lines before are whole)")
    e = output_error("x.pcapng", OSError(errno.ENOSPC, "No space left"), 3,
                     "packet")
    assert str(e).startswith("cannot write x.pcapng (No space left; 3 "
                             "packets read not written, the packets before "
                             "are whole)")
