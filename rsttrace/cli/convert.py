"""`rsttrace convert`: a saved `trace --json` capture as a pcapng file."""

import click

from rsttrace.cli.common import fail
from rsttrace.errors import RsttraceError
from rsttrace.output.outfile import OutputFile
from rsttrace.output.stream_errors import output_error


def _warn(message):
    click.echo("rsttrace: warning: %s" % message, err=True)


@click.command()
@click.argument("capture", type=click.Path(dir_okay=False))
@click.option("-w", "--write", metavar="FILE", required=True,
              help="The pcapng file to write (- for standard output).")
def convert(capture, write):
    """Write the events of a saved `trace --json` capture as a pcapng file
    for Wireshark, tshark or tcpdump: one packet per event, with the
    diagnosis in its comment (no root needed)."""
    from rsttrace.output.pcapng import PcapngWriter
    from rsttrace.output.report import events
    out = OutputFile(write, binary=True)
    name = write if write != "-" else "stdout"
    try:
        writer = PcapngWriter(out.open())
        count = 0
        for record in events(capture, warn=_warn):
            writer.event(record)
            count += 1
        if not count:
            raise RsttraceError("no events in %s" % capture,
                                "give a capture of `rsttrace trace --json` "
                                "that saw RSTs")
        writer.flush()
        if writer.skipped:
            _warn("%s: %d of %d events left out, with no address or time "
                  "to make a packet of (the first: %s)" % (
                      capture, writer.skipped, count, writer.skip_reason))
        out.commit()
    except RsttraceError as e:
        _discard(out)
        fail(e)
    except BrokenPipeError:
        _discard(out)
        raise SystemExit(1)
    except OSError as e:            # a write, or the last flush on close
        _discard(out)
        fail(output_error(name, e))


def _discard(out):
    try:
        out.discard()
    except OSError:
        pass
