"""`rsttrace matrix`: the scenario catalogue across kernels, one table."""

import datetime

import click

from rsttrace.cli.common import fail
from rsttrace.errors import RsttraceError
from rsttrace.output.outfile import OutputFile


@click.command()
@click.argument("results", nargs=-1, required=True,
                type=click.Path(dir_okay=False))
@click.option("-o", "--output", metavar="FILE",
              help="Write the Markdown to FILE (e.g. docs/kernel-matrix.md).")
@click.option("--date", help="The date to print (default: today).")
def matrix(results, output, date):
    """One table, scenario x kernel, from `scenarios run -o` files (one per
    kernel): the cause, emitting function and reason on each, with the
    differences called out and explained. No root needed."""
    from rsttrace.lab.matrix import load, markdown
    try:
        text = markdown(load(results),
                        date=date or datetime.date.today().isoformat())
        out = OutputFile(output)
        out.open().write(text)
        out.commit()
    except RsttraceError as e:
        fail(e)
