"""`rsttrace report`: summarise a saved `trace --json` capture."""

import json
import sys

import click

from rsttrace.cli.common import fail
from rsttrace.errors import RsttraceError


@click.command()
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable.")
def report(captures, as_json):
    """Summarise a saved `trace --json` capture (no root needed). A
    rotated capture (`trace -o FILE -C SIZE`) is read whole from FILE:
    FILE, FILE.1, FILE.2... in order, gzipped or not; several files may
    be given."""
    from rsttrace.output.report import as_text, load, summarise
    try:
        rep = summarise(load(captures, warn=lambda m: click.echo(
            "rsttrace: warning: %s" % m, err=True)), " ".join(captures))
    except RsttraceError as e:
        fail(e)
    click.echo(printable(json.dumps(rep, indent=2) if as_json
                         else as_text(rep)))


def printable(text):
    """`text` with what the output's encoding cannot hold escaped: a
    capture's strings are anyone's (JSON allows lone surrogates, which no
    encoding does), and one of them must not crash the report."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    return text.encode(encoding, "backslashreplace").decode(encoding)
