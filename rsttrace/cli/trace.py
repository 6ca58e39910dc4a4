"""`rsttrace trace`: RSTs as they happen, or counted in the kernel."""

import sys

import click

from rsttrace.cli.common import MODE_CHOICE, fail, positive
from rsttrace.errors import RsttraceError, UsageError
from rsttrace.output import rotation
from rsttrace.output.capture import Capture
from rsttrace.trace import filters


def _size(ctx, param, value):
    """-C SIZE as tcpdump reads it (rsttrace.output.rotation)."""
    if value is None:
        return None
    size = rotation.size_bytes(value)
    if size is None:
        raise click.BadParameter(
            "%r is not a size: a whole number of MB (millions of bytes), or "
            "with k, m or g for KiB, MiB, GiB (e.g. 100, 512k)" % value,
            param_hint="-C")
    return size


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
              help="Write events to FILE instead of standard output, as "
                   "they are read, whole lines only. FILE is truncated once "
                   "the probes are attached.")
@click.option("-C", "rotate_size", metavar="SIZE", callback=_size,
              help="With -o: start a new file once one is past SIZE, in MB "
                   "(millions of bytes; k, m, g suffixes for KiB, MiB, GiB), "
                   "like tcpdump -C: FILE, FILE.1, FILE.2...")
@click.option("-W", "keep_files", type=click.IntRange(min=1), metavar="COUNT",
              help="With -C: keep at most COUNT files, removing the oldest.")
@click.option("--compress", is_flag=True,
              help="With -C: gzip each file once it is closed (FILE.1.gz...).")
@click.option("-w", "--write", metavar="FILE",
              help="Write events as a pcapng capture to FILE (- for "
                   "standard output), one packet per RST with the "
                   "diagnosis in its comment. Alone it is the only output "
                   "(as tcpdump -w); with --json, --wide or -o the text "
                   "output is written too.")
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
@click.option("--container", "containers", multiple=True,
              metavar="NAME|ID",
              help="Only RSTs in this container's network namespace "
                   "(podman, docker, containerd, CRI-O; followed as it "
                   "restarts).")
@click.option("--pod", "pods", multiple=True, metavar="[NS/]NAME",
              help="Only RSTs in this pod's network namespace.")
@click.option("--no-owner", is_flag=True,
              help="Leave out who is behind each RST (owner, namespace "
                   "name, container, pod): no probe on TCP state changes, "
                   "no /proc lookups.")
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
                   "stack did not send (netfilter REJECT), and in tracepoint "
                   "mode every packet dropped, for RSTs that kill TIME_WAIT "
                   "sockets (6.11+). Costs a probe per packet sent and per "
                   "packet dropped.")
@click.option("--buffer-pages", type=click.IntRange(min=1), metavar="N",
              help="Event buffer size in 4 KiB pages, a power of two "
                   "(default 1024 for the ring buffer, 256 per CPU for the "
                   "perf buffer).")
@click.option("--summary-only", is_flag=True,
              help="No event stream: count RSTs in the kernel by the facts "
                   "their cause is decided on and show the table (refreshed "
                   "every second on a terminal, once at exit otherwise). "
                   "Keeps up with storms.")
@click.option("--buffer", type=click.Choice(["ring", "perf"]), hidden=True,
              help="Force the event buffer (for tests: the perf buffer "
                   "where the kernel has a ring buffer).")
@click.argument("expression", nargs=-1)
def trace(expression, **opts):
    """Trace TCP RSTs sent and received by this host until Ctrl-C.

    EXPRESSION, if given, is a pcap filter expression (tcpdump's syntax,
    man 7 pcap-filter), run in the kernel on each RST's rebuilt header:
    see docs/pcap.md."""
    opts["expression"] = " ".join(expression)
    outs = []
    try:
        outs = _outputs(opts)
        filt, tracer = _plan(opts)
        for out in outs:
            if out is not None:
                out.open()
        if opts["summary_only"]:
            _summary_only(tracer, outs[0], opts, filt)
        else:
            _stream(tracer, outs, opts, filt)
        for out in outs:
            if out is not None:
                out.close()
    except RsttraceError as e:
        _discard(outs)
        fail(e)
    except BrokenPipeError:
        _discard(outs)
        sys.exit(1)


def _outputs(opts):
    """[text Capture or None, pcapng Capture or None] the options ask for;
    raises on options that need another (-W and --compress need -C, -C
    needs -o FILE; -w needs the event stream)."""
    path = opts["output"]
    if opts["rotate_size"] is None:
        for given, name in ((opts["keep_files"], "-W"),
                            (opts["compress"], "--compress")):
            if given:
                raise UsageError("%s needs -C SIZE" % name,
                                 "add -C to rotate files")
    elif path in (None, "-"):
        raise UsageError("-C needs -o FILE", "give the file to rotate")
    text = Capture(path, opts["rotate_size"], opts["keep_files"],
                   opts["compress"])
    pcap = opts["write"]
    if pcap is None:
        return [text, None]
    if opts["summary_only"]:
        raise UsageError("-w needs the event stream",
                         "leave out --summary-only")
    wants_text = opts["as_json"] or opts["wide"] or path or opts["summary"]
    if pcap == "-" and wants_text and path in (None, "-"):
        raise UsageError("-w - writes the capture to standard output",
                         "send the text output to a file with -o FILE")
    return [text if wants_text else None, Capture(pcap, binary=True)]


def _discard(outs):
    """Close the outputs of a failed run, without another error."""
    for out in outs:
        if out is not None:
            try:
                out.discard()
            except OSError:
                pass


def _plan(opts):
    """(filters, planned tracer) from the options; raises on bad ones."""
    from rsttrace.trace.tracer import Tracer
    filt = filters.build(opts["ports"], opts["hosts"], opts["pid"],
                         opts["comm"], opts["netns"], opts["ipv4"],
                         opts["ipv6"], opts["expression"])
    pages = opts["buffer_pages"]
    if pages and pages & (pages - 1):
        raise UsageError("--buffer-pages %d is not a power of two" % pages,
                         "give 1, 2, 4, ... pages")
    if opts["summary_only"] and opts["count"]:
        raise UsageError("--count needs the event stream",
                         "use --duration with --summary-only")
    filt.netns_dynamic = bool(opts["containers"] or opts["pods"])
    tracer = Tracer(mode=opts["mode"], filters=filt,
                    packets=opts["packets"], buffer_pages=pages,
                    summary_only=opts["summary_only"],
                    owners=not opts["no_owner"],
                    buffer=opts["buffer"]).plan()
    return filt, tracer


def _who(opts, filt):
    """(enricher or None, selection or None) for the options."""
    from rsttrace.context.containers import ContainerIndex
    from rsttrace.context.enrich import Enricher
    from rsttrace.context.procfs import Proc
    from rsttrace.context.select import Selection
    proc = Proc()
    index = ContainerIndex(proc)
    selection = Selection(index, opts["containers"], opts["pods"],
                          filt.netns) or None
    enricher = None if opts["no_owner"] or opts["summary_only"] else \
        Enricher(proc, index)
    return enricher, selection


def _follow(session, selection, also=None):
    """Keep the kernel's netns filter on the selected containers and pods,
    now and at every tick."""
    def tick():
        for spec in selection.apply(session.tracer):
            click.echo("rsttrace: no running container or pod %s in its own "
                       "network namespace (yet); waiting for it" % spec,
                       err=True)
        if also is not None:
            also()
    tick()
    session.on_tick = tick


def _started(tracer, filt, doing, session, selection=None):
    """Say that tracing runs. From this line on a script may stop the run
    (it waits for the line, then signals): Ctrl-C and SIGTERM stop it
    cleanly from here, not only once the session's loop has begun (a
    signal in between ended the run with "Aborted!", exit 1)."""
    session.catch_signals()
    chosen = filt.describe()
    if selection:
        chosen = selection.describe() if chosen == "none" else \
            chosen + ", " + selection.describe()
    click.echo("rsttrace: %s in %s mode (%s); filters: %s; Ctrl-C to stop"
               % (doing, tracer.mode, ", ".join(
                   p.hook.name for p in tracer.attached()), chosen),
               err=True)
    for why in tracer.visibility().blind_spots().values():
        click.echo("rsttrace: not seen here: %s" % why, err=True)


def _stream(tracer, streams, opts, filt):
    from rsttrace.output.pcapng import PcapngWriter
    from rsttrace.output.writers import (JsonWriter, RowWriter, SummaryOnly,
                                         Tee)
    from rsttrace.trace.session import Session
    stacks = not opts["no_stack"]
    text, pcap = streams
    writers = []
    if text is not None:
        writer = JsonWriter(text, stacks=stacks) if opts["as_json"] else \
            RowWriter(text, stacks=stacks, wide=opts["wide"])
        # -w alone: only the summary goes to the text output
        text_events = pcap is None or opts["as_json"] or opts["wide"] or \
            opts["output"]
        writers.append(writer if text_events else SummaryOnly(writer))
    if pcap is not None:
        writers.append(PcapngWriter(pcap, stacks=stacks, warn=lambda m:
                                    click.echo("rsttrace: " + m, err=True)))
    writer = writers[0] if len(writers) == 1 else Tee(*writers)
    enricher, selection = _who(opts, filt)
    session = Session(tracer, writer, summary=opts["summary"],
                      count=opts["count"], duration=opts["duration"],
                      enricher=enricher)
    session.start()
    if selection:
        _follow(session, selection)
    _started(tracer, filt, "tracing", session, selection)
    for stream in streams:
        if stream is not None:
            stream.begin()
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
    _, selection = _who(opts, filt)
    if selection:
        _follow(session, selection, session.on_tick)
    session.before_close = lambda: writer.summary(counted.summary())
    _started(tracer, filt, "counting in the kernel", session, selection)
    stream.begin()
    session.run()
