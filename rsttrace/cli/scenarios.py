"""`rsttrace scenarios list|run` and `rsttrace demo`: the RST situations of
the source articles, reproduced in network namespaces and traced."""

import json
import os
import sys

import click

from rsttrace.cli.common import MODE_CHOICE, fail
from rsttrace.errors import RsttraceError, UsageError
from rsttrace.output.outfile import OutputFile
from rsttrace.output.tables import table

HOST_WIDE_HELP = ("Also run the scenarios that change a host-wide setting "
                  "for a moment (memory-pressure: net.ipv4.tcp_max_orphans "
                  "0, which resets any connection closed meanwhile). Only "
                  "on a machine you can spare, e.g. a VM.")


@click.group()
def scenarios():
    """The RST situations of the source articles, reproduced in namespaces."""


@scenarios.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable.")
def scenarios_list(as_json):
    """Name, situation and expected causes of every scenario."""
    from rsttrace.lab.catalogue import CATALOGUE
    if as_json:
        click.echo(json.dumps([{"name": s.name, "title": s.title,
                                "sources": s.sources,
                                "expected": [e.key() for e in s.expects],
                                "needs": sorted(s.needs)}
                               for s in CATALOGUE], indent=2))
        return
    click.echo(table([(s.name, s.title, s.expected_text().replace(
        ", ", "\n"), " ".join(s.sources)) for s in CATALOGUE],
        ["scenario", "situation", "expected (side kind: cause)",
         "articles"], [None, 40, None, None]))


@scenarios.command("run")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per scenario, with its events.")
@click.option("--mode", type=MODE_CHOICE, default="auto")
@click.option("-o", "--output", metavar="FILE",
              help="Also write the results as JSON lines to FILE (input "
                   "of `rsttrace matrix`), whole or not at all.")
@click.option("--host-wide", is_flag=True, help=HOST_WIDE_HELP)
def scenarios_run(names, as_json, mode, output, host_wide):
    """Trace while each scenario runs; a verdict per scenario."""
    _run_catalogue(names, as_json, mode, summary=False, output=output,
                   host_wide=host_wide)


@click.command()
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per scenario instead of tables.")
@click.option("--mode", type=MODE_CHOICE, default="auto")
@click.option("--host-wide", is_flag=True, help=HOST_WIDE_HELP)
def demo(as_json, mode, host_wide):
    """Run every scenario and show what rsttrace saw and why."""
    _run_catalogue((), as_json, mode, summary=True, host_wide=host_wide)


def _run_catalogue(names, as_json, mode, summary, output=None,
                   host_wide=False):
    """Run the scenarios, show them, exit 0 when all went as expected."""
    from rsttrace.lab.catalogue import HOST_WIDE_ENV, by_name
    from rsttrace.lab.run import run_record, run_scenarios
    if host_wide:
        os.environ[HOST_WIDE_ENV] = "1"
    out = OutputFile(output) if output else None
    opened = False
    try:
        chosen = by_name(list(names))
        if out:
            out.open()                  # a bad path fails before the run
            opened = True
        results, tracer = run_scenarios(chosen, mode=mode)
    except RsttraceError as e:
        if opened and not isinstance(e, UsageError):
            # this kernel cannot run it: that is a result too
            _write(out, [run_record(mode, error=str(e))])
        elif opened:
            out.discard()
        fail(e)
    except BaseException:
        if out:
            out.discard()
        raise
    if out:
        _write(out, [run_record(mode, tracer)] +
               [r.as_dict() for r in results])
    _show(results, as_json, summary)
    sys.exit(0 if all(r.ok for r in results) else 1)


def _write(out, records):
    for r in records:
        out.stream.write(json.dumps(r, separators=(",", ":")) + "\n")
    out.commit()


def _show(results, as_json, summary):
    from rsttrace.lab.run import TABLE_HEADERS, table_rows
    from rsttrace.output.summary import Summary
    if as_json:
        for r in results:
            click.echo(json.dumps(r.as_dict(), separators=(",", ":")))
        return
    click.echo(table(table_rows(results), TABLE_HEADERS,
                     [None, 34, 34, 40, None, 40]))
    if summary:
        s = Summary()
        for r in results:
            for e in r.events:
                s.add(e)
        click.echo()
        click.echo(s.cause_table())
    passed = sum(r.ok for r in results)
    click.echo("\n%d of %d scenarios as expected" % (passed, len(results)))
