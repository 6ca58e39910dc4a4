"""`rsttrace trace`: RSTs as they happen, or counted in the kernel."""

import sys

import click

from rsttrace.cli.common import MODE_CHOICE, fail, positive
from rsttrace.errors import RsttraceError, UsageError
from rsttrace.output.outfile import OutputFile
from rsttrace.output.stream_errors import ReportingStream, output_error
from rsttrace.trace import filters


@click.command()
@click.option("--mode", type=MODE_CHOICE, default="auto", show_default=True,
              help="How to attach: kprobe/fentry on the RST functions, or "
                   "the tcp tracepoints. auto picks what the kernel has.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per event (and per loss, and the "
                   "summary); see docs/json-schema.md.")
@click.option("--wide", is_flag=True,
              help="Rows with every column (hook, reason, task, context), "
                   "wider than 80 columns.")
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
@click.option("--duration", type=float, callback=positive,
              metavar="SECONDS", help="Stop after this many seconds.")
@click.option("--count", type=click.IntRange(min=1), metavar="N",
              help="Stop after N events.")
@click.option("--no-stack", is_flag=True,
              help="Leave the kernel stack out of the output.")
@click.option("--summary", is_flag=True,
              help="At exit, counts by cause, kind, hook, state, reason and "
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
              help="No event stream: count RSTs in the kernel by the facts "
                   "their cause is decided on and show the table (refreshed "
                   "every second on a terminal, once at exit otherwise). "
                   "Keeps up with storms.")
def trace(**opts):
    """Trace TCP RSTs sent and received by this host until Ctrl-C."""
    out = OutputFile(opts["output"])
    try:
        filt, tracer = _plan(opts)
        stream = ReportingStream(out.open(), opts["output"] or "stdout")
        if opts["summary_only"]:
            _summary_only(tracer, stream, opts, filt)
        else:
            _stream(tracer, stream, opts, filt)
    except RsttraceError as e:
        _discard(out)
        fail(e)
    except BrokenPipeError:
        _discard(out)
        sys.exit(1)
    try:
        out.commit()
    except OSError as e:        # the last flush, on close, found no room
        _discard(out)
        fail(output_error(opts["output"], e))


def _discard(out):
    """Drop the output of a failed run. On a full disk close() fails too,
    on its flush, but closes the file all the same (io's close() always
    does); discard() stopped there, so it is asked again, and this time
    it removes the temporary file. The first error is the one reported."""
    try:
        out.discard()
    except OSError:
        try:
            out.discard()
        except OSError:
            pass


def _plan(opts):
    """(filters, planned tracer) from the options; raises on bad ones."""
    from rsttrace.trace.tracer import Tracer
    filt = filters.build(opts["ports"], opts["hosts"], opts["pid"],
                         opts["comm"], opts["netns"], opts["ipv4"],
                         opts["ipv6"])
    pages = opts["buffer_pages"]
    if pages and pages & (pages - 1):
        raise UsageError("--buffer-pages %d is not a power of two" % pages,
                         "give 1, 2, 4, ... pages")
    if opts["summary_only"] and opts["count"]:
        raise UsageError("--count needs the event stream",
                         "use --duration with --summary-only")
    tracer = Tracer(mode=opts["mode"], filters=filt,
                    packets=opts["packets"], buffer_pages=pages,
                    summary_only=opts["summary_only"]).plan()
    return filt, tracer


def _started(tracer, filt, doing):
    click.echo("rsttrace: %s in %s mode (%s); filters: %s; Ctrl-C to stop"
               % (doing, tracer.mode, ", ".join(
                   p.hook.name for p in tracer.attached()), filt.describe()),
               err=True)
    for why in tracer.visibility().blind_spots().values():
        click.echo("rsttrace: not seen here: %s" % why, err=True)


def _stream(tracer, stream, opts, filt):
    from rsttrace.output.writers import JsonWriter, RowWriter
    from rsttrace.trace.session import Session
    stacks = not opts["no_stack"]
    writer = JsonWriter(stream, stacks=stacks) if opts["as_json"] else \
        RowWriter(stream, stacks=stacks, wide=opts["wide"])
    session = Session(tracer, writer, summary=opts["summary"],
                      count=opts["count"], duration=opts["duration"])
    session.start()
    session.catch_signals()
    _started(tracer, filt, "tracing")
    session.run()


def _summary_only(tracer, stream, opts, filt):
    from rsttrace.output.writers import JsonWriter, RowWriter
    from rsttrace.trace.kernel_summary import KernelSummary
    from rsttrace.trace.session import Session
    session = Session(tracer, duration=opts["duration"])
    session.start()
    counted = KernelSummary(tracer, session.decoder)
    writer = JsonWriter(stream) if opts["as_json"] else RowWriter(stream)

    def redraw():
        stream.write("\033[H\033[2J" + counted.summary().as_text() + "\n")
        stream.flush()
    if stream.isatty() and not opts["as_json"]:
        session.on_tick = redraw
    session.before_close = lambda: writer.summary(counted.summary())
    session.catch_signals()
    _started(tracer, filt, "counting in the kernel")
    session.run()
