"""rsttrace's command line (click)."""

import json
import os
import sys

import click
from tabulate import tabulate

from . import doctor as doctormod
from . import filters as filtersmod
from .errors import RsttraceError, UsageError
from .hooks import MODES
from .outfile import OutputFile
from .output import table

try:
    from importlib.metadata import version as _version
    __version__ = _version("rsttrace")
except Exception:              # run from a source tree (the VM guests)
    __version__ = "source"


def fail(err):
    click.echo("rsttrace: error: %s" % err, err=True)
    sys.exit(getattr(err, "exit_code", 1))


def _positive(value, name):
    """A number above zero (click 7, Debian 11's, has no min_open)."""
    if value is not None and value <= 0:
        raise click.BadParameter("%s must be above 0" % value,
                                 param_hint=name)
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="rsttrace")
def main():
    """Which kernel path sent or received a TCP RST, in what socket state,
    for which connection and process, and why."""


@main.command()
@click.option("--mode", type=click.Choice(("auto",) + MODES), default="auto",
              show_default=True,
              help="How to attach: kprobe/fentry on the RST functions, or "
                   "the tcp tracepoints. auto picks what the kernel has.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per event (and per loss, and the summary).")
@click.option("-o", "--output", metavar="FILE",
              help="Write events to FILE instead of standard output.")
@click.option("--port", "ports", multiple=True, metavar="PORT[,PORT]",
              help="Only RSTs with this source or destination port.")
@click.option("--host", "hosts", multiple=True, metavar="ADDR[,ADDR]",
              help="Only RSTs from or to this IP address.")
@click.option("--pid", type=int,
              help="Only RSTs handled while this process ran (in softirq "
                   "context that is whoever was on the CPU).")
@click.option("--comm", help="Like --pid, by process name.")
@click.option("--netns", "netns", multiple=True, metavar="NS",
              help="Only this network namespace: inode, `ip netns` name, "
                   "or /proc/PID/ns/net.")
@click.option("-4", "ipv4", is_flag=True, help="IPv4 only.")
@click.option("-6", "ipv6", is_flag=True, help="IPv6 only.")
@click.option("--duration", type=float, callback=lambda ctx, param, v:
              _positive(v, "--duration"),
              metavar="SECONDS", help="Stop after this many seconds.")
@click.option("--count", type=click.IntRange(min=1), metavar="N",
              help="Stop after N events.")
@click.option("--no-stack", is_flag=True,
              help="Leave the kernel stack out of the output.")
@click.option("--summary", is_flag=True,
              help="At exit, counts by kind, hook, state, reason, cause and "
                   "path.")
@click.option("--packets", is_flag=True,
              help="Also watch every packet leaving a device for RSTs the TCP "
                   "stack did not send (netfilter REJECT). Costs a probe per "
                   "packet.")
@click.option("--buffer-pages", type=click.IntRange(min=1), metavar="N",
              help="Event buffer size in 4 KiB pages, a power of two "
                   "(default 1024 for the ring buffer, 256 per CPU for the "
                   "perf buffer).")
@click.option("--summary-only", is_flag=True,
              help="No event stream: count RSTs in the kernel by cause "
                   "inputs and show the table (refreshed every second on a "
                   "terminal, once at exit otherwise). Keeps up with storms.")
def trace(mode, as_json, output, ports, hosts, pid, comm, netns, ipv4, ipv6,
          duration, count, no_stack, summary, packets, buffer_pages,
          summary_only):
    """Trace TCP RSTs sent and received by this host until Ctrl-C."""
    from .output import JsonWriter, RowWriter
    from .session import Session
    from .tracer import Tracer

    out = OutputFile(output)
    try:
        filt = filtersmod.build(ports, hosts, pid, comm, netns, ipv4, ipv6)
        if buffer_pages and buffer_pages & (buffer_pages - 1):
            raise UsageError("--buffer-pages %d is not a power of two"
                             % buffer_pages, "give 1, 2, 4, ... pages")
        if summary_only and count:
            raise UsageError("--count needs the event stream",
                             "use --duration with --summary-only")
        tracer = Tracer(mode=mode, filters=filt, packets=packets,
                        buffer_pages=buffer_pages,
                        summary_only=summary_only).plan()
        stream = out.open()
        if summary_only:
            _summary_only(tracer, stream, as_json, duration, filt)
            out.commit()
            return
        writer = JsonWriter(stream) if as_json else RowWriter(
            stream, stacks=not no_stack)
        if no_stack and as_json:
            writer = _without_stack(writer)
        session = Session(tracer, writer, summary=summary, count=count,
                          duration=duration)
        session.start()
        attached = ", ".join(p.hook.name for p in tracer.attached())
        click.echo("rsttrace: tracing in %s mode (%s); filters: %s; Ctrl-C "
                   "to stop" % (tracer.mode, attached, filt.describe()),
                   err=True)
        for why in tracer.blind_spots().values():
            click.echo("rsttrace: not seen here: %s" % why, err=True)
        session.run()
    except RsttraceError as e:
        out.discard()
        fail(e)
    except BrokenPipeError:
        out.discard()
        sys.exit(1)
    out.commit()


def _summary_only(tracer, stream, as_json, duration, filt):
    from .aggregate import KernelSummary
    from .session import Session
    session = Session(tracer, duration=duration)
    session.start()
    ks = KernelSummary(tracer, session.decoder)
    live = stream.isatty() and not as_json

    def redraw():
        stream.write("\033[H\033[2J" + ks.as_text() + "\n")
        stream.flush()

    def final():
        if as_json:
            stream.write(json.dumps(ks.as_dict(), separators=(",", ":"))
                         + "\n")
        else:
            stream.write(ks.as_text() + "\n")
        stream.flush()
    session.on_tick = redraw if live else None
    session.before_close = final
    click.echo("rsttrace: counting in the kernel in %s mode (%s); filters: "
               "%s; Ctrl-C to stop" % (tracer.mode, ", ".join(
                   p.hook.name for p in tracer.attached()), filt.describe()),
               err=True)
    session.run()


def _without_stack(writer):
    inner = writer.event

    def event(record):
        record = dict(record)
        record.pop("stack", None)
        inner(record)
    writer.event = event
    return writer


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable.")
def doctor(as_json):
    """What this kernel supports and which mode `trace` will use."""
    mode, why = doctormod.mode_choice()
    checks = doctormod.checks()
    hooks = doctormod.hook_rows(mode or "tracepoint")
    if as_json:
        click.echo(json.dumps({
            "checks": {c: v for c, v, _ in checks},
            "mode": mode, "mode_error": why,
            "not_seen": doctormod.blind_spots(mode) if mode else {},
            "hooks": [{"hook": h, "symbol": s, "status": st}
                      for h, s, st in hooks]}, indent=2))
        return
    def show(v):
        return ("yes" if v is True else "no" if v is False else
                "unknown (run as root)" if v is None else v)
    click.echo(tabulate([(c, show(v), n) for c, v, n in checks],
                        headers=["check", "value", "note"]))
    click.echo()
    click.echo(tabulate(hooks, headers=["hook", "symbol", "status"]))
    click.echo()
    if mode:
        click.echo("trace will use %s mode" % mode)
        for why in doctormod.blind_spots(mode).values():
            click.echo("  not seen in that mode: %s" % why)
    else:
        click.echo("trace cannot run here: %s" % why)
        sys.exit(1)


HOST_WIDE_HELP = ("Also run the scenarios that change a host-wide setting "
                  "for a moment (memory-pressure: net.ipv4.tcp_max_orphans "
                  "0, which resets any connection closed meanwhile). Only "
                  "on a machine you can spare, e.g. a VM.")


@main.group()
def scenarios():
    """The RST situations of the source articles, reproduced in namespaces."""


@scenarios.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable.")
def scenarios_list(as_json):
    """Name, situation and expected causes of every scenario."""
    from .scenarios import CATALOGUE
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
@click.option("--mode", type=click.Choice(("auto",) + MODES), default="auto")
@click.option("-o", "--output", metavar="FILE",
              help="Also write the results as JSON lines to FILE (input "
                   "of `rsttrace matrix`), whole or not at all.")
@click.option("--host-wide", is_flag=True, help=HOST_WIDE_HELP)
def scenarios_run(names, as_json, mode, output, host_wide):
    """Trace while each scenario runs; a verdict per scenario."""
    try:
        ok = _run_catalogue(names, as_json, mode, summary=False,
                            output=output, host_wide=host_wide)
    except RsttraceError as e:
        fail(e)
    sys.exit(0 if ok else 1)


@main.command()
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per scenario instead of tables.")
@click.option("--mode", type=click.Choice(("auto",) + MODES), default="auto")
@click.option("--host-wide", is_flag=True, help=HOST_WIDE_HELP)
def demo(as_json, mode, host_wide):
    """Run every scenario and show what rsttrace saw and why."""
    try:
        ok = _run_catalogue((), as_json, mode, summary=True,
                            host_wide=host_wide)
    except RsttraceError as e:
        fail(e)
    sys.exit(0 if ok else 1)


def _run_catalogue(names, as_json, mode, summary, output=None,
                   host_wide=False):
    from .output import Summary
    from .scenario_run import TABLE_HEADERS, run_scenarios, table_rows
    from .scenarios import HOST_WIDE_ENV, by_name
    if host_wide:
        os.environ[HOST_WIDE_ENV] = "1"
    chosen = by_name(list(names))
    out = OutputFile(output) if output else None
    if out:
        out.open()                      # a bad path fails before the run
    try:
        results, _ = run_scenarios(chosen, mode=mode)
    except BaseException:
        if out:
            out.discard()
        raise
    if out:
        for r in results:
            out.stream.write(json.dumps(r.as_dict(), separators=(",", ":"))
                             + "\n")
        out.commit()
    if as_json:
        for r in results:
            click.echo(json.dumps(r.as_dict(), separators=(",", ":")))
    else:
        click.echo(table(table_rows(results), TABLE_HEADERS,
                         [None, 34, 34, 40, None, 40]))
        if summary:
            s = Summary()
            for r in results:
                for e in r.events:
                    s.add(e)
            click.echo()
            click.echo(_cause_table(s))
        passed = sum(r.ok for r in results)
        click.echo("\n%d of %d scenarios as expected" % (passed,
                                                        len(results)))
    return all(r.ok for r in results)


def _cause_table(summary):
    from .attribution import CAUSES
    rows = [(cause, n, CAUSES.get(cause, ("", ""))[0])
            for cause, n in summary.by["cause"].most_common()]
    return table(rows, ["cause", "events", "what it means"],
                 [None, None, 70])


@main.command()
@click.option("--markdown", is_flag=True, help="As docs/causes.md.")
def causes(markdown):
    """The causes rsttrace attributes RSTs to, and what to do about each."""
    from .attribution import CAUSES, causes_markdown
    from .scenarios import CATALOGUE
    if markdown:
        click.echo(causes_markdown(CATALOGUE), nl=False)
        return
    click.echo(table([(c, w, f) for c, (w, f) in CAUSES.items()],
                     ["cause", "what happened", "what to do"], [None, 50, 50]))


@main.command()
@click.argument("results", nargs=-1, required=True,
                type=click.Path(dir_okay=False))
@click.option("-o", "--output", metavar="FILE",
              help="Write the Markdown to FILE (e.g. docs/kernel-matrix.md).")
@click.option("--date", help="The date to print (default: today).")
def matrix(results, output, date):
    """One table, scenario x kernel, from `scenarios run -o` files (one per
    kernel): the cause, emitting function and reason on each, with the
    differences called out and explained. No root needed."""
    import datetime
    from .matrix import load, markdown
    try:
        text = markdown(load(results),
                        date=date or datetime.date.today().isoformat())
        out = OutputFile(output)
        out.open().write(text)
        out.commit()
    except RsttraceError as e:
        fail(e)


@main.command()
@click.argument("capture", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable.")
def report(capture, as_json):
    """Summarise a saved `trace --json` capture (no root needed)."""
    from .report import load, summarise
    try:
        records = load(capture)
    except RsttraceError as e:
        fail(e)
    rep = summarise(records)
    if as_json:
        click.echo(json.dumps(rep, indent=2))
        return
    from .report import as_text
    click.echo(as_text(rep))


if __name__ == "__main__":
    main()
