"""`rsttrace exporter`: RSTs counted in the kernel by cause, served as
Prometheus metrics and/or written as a node_exporter textfile, until
stopped (SIGTERM, Ctrl-C) or --duration."""

import os
import platform

import click

from rsttrace import __version__
from rsttrace.cli.common import MODE_CHOICE, fail, positive
from rsttrace.errors import RsttraceError, UsageError
from rsttrace.output import metric_labels

DEFAULT_PORT = 9867


def parse_listen(text):
    """(address, port) of --listen ADDR:PORT; ":PORT" is every address,
    "[::1]:PORT" an IPv6 one. UsageError when it is not that."""
    addr, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError("--listen %s is not ADDR:PORT" % text,
                         "e.g. --listen 127.0.0.1:%d or --listen :%d"
                         % (DEFAULT_PORT, DEFAULT_PORT))
    if addr.startswith("[") and addr.endswith("]"):
        addr = addr[1:-1]
    return addr or "0.0.0.0", int(port)


@click.command()
@click.option("--listen", default="127.0.0.1:%d" % DEFAULT_PORT,
              show_default=True, metavar="ADDR:PORT",
              help="Serve /metrics here (:PORT for every address, [::1]:PORT "
                   "for IPv6, `none` for no server).")
@click.option("--textfile-dir", metavar="DIR",
              help="Also write DIR/rsttrace.prom every interval, for "
                   "node_exporter's textfile collector (replaced whole).")
@click.option("--interval", type=click.IntRange(min=1), default=5,
              show_default=True, metavar="SECONDS",
              help="How often the kernel's counts are read (and the textfile "
                   "written), in whole seconds.")
@click.option("--label", "labels", multiple=True, metavar="NAME[,NAME]",
              help="Add an opt-in label to rsttrace_resets_total: netns, "
                   "local_port (service ports only), container, pod. Never "
                   "pid or addresses: a series per connection.")
@click.option("--max-label-values", type=click.IntRange(min=1), default=100,
              show_default=True, metavar="N",
              help="Values kept per opt-in label; more are counted as "
                   "`other`.")
@click.option("--forget-after", type=float, default=3600.0,
              show_default=True, callback=positive, metavar="SECONDS",
              help="Drop an opt-in label value (and its series) idle this "
                   "long.")
@click.option("--bpf-stats", is_flag=True,
              help="Ask the kernel to measure the run time of BPF programs "
                   "while the exporter runs (a small cost on every BPF "
                   "program of the host), for rsttrace_bpf_run_seconds_total.")
@click.option("--mode", type=MODE_CHOICE, default="auto", show_default=True,
              help="How to attach (see `rsttrace trace --help`).")
@click.option("--packets", is_flag=True,
              help="Also count RSTs the TCP stack did not send (netfilter "
                   "REJECT); costs a probe per packet.")
@click.option("--netns", "netns", multiple=True, metavar="NS",
              help="Only RSTs in this network namespace (inode, `ip netns` "
                   "name or /proc/PID/ns/net; repeatable).")
@click.option("--port", "ports", multiple=True, metavar="PORT[,PORT]",
              help="Only RSTs with this source or destination port.")
@click.option("--duration", type=float, callback=positive,
              metavar="SECONDS", help="Stop after this many seconds.")
def exporter(**opts):
    """Count TCP RSTs by cause in the kernel and export them as Prometheus
    metrics, until stopped."""
    server = stats_fd = None
    try:
        labels, listen = _check(opts)
        metrics = _metrics()
        from rsttrace.trace import filters
        from rsttrace.trace.tracer import Tracer
        tracer = Tracer(mode=opts["mode"], packets=opts["packets"],
                        summary_only=True,
                        filters=filters.build(opts["ports"],
                                              netns=opts["netns"]),
                        agg_cflags=metric_labels.cflags(labels)).plan()
        collector, registry = _collector(opts, labels, tracer)
        if listen is not None:
            server = metrics.MetricsServer(listen[0], listen[1], registry)
        if opts["bpf_stats"]:
            from rsttrace.kernel import bpf_stats
            stats_fd = bpf_stats.enable()
        _run(tracer, collector, opts, listen, server)
    except RsttraceError as e:
        fail(e)
    finally:
        if server is not None:
            server.close()
        if stats_fd is not None:
            os.close(stats_fd)


def _metrics():
    """rsttrace.output.metrics, which needs prometheus_client."""
    try:
        from rsttrace.output import metrics
    except ImportError as e:
        raise RsttraceError("the exporter needs prometheus_client (%s)" % e,
                            "install Debian's python3-prometheus-client "
                            "(scripts/setup does)")
    return metrics


def _check(opts):
    """(opt-in labels, (addr, port) or None) from the options."""
    names = [n.strip() for item in opts["labels"] for n in item.split(",")
             if n.strip()]
    labels = metric_labels.check(names)
    listen = None if opts["listen"] == "none" else \
        parse_listen(opts["listen"])
    directory = opts["textfile_dir"]
    if listen is None and not directory:
        raise UsageError("--listen none and no --textfile-dir: the metrics "
                         "would go nowhere", "give one of them")
    if directory and not os.path.isdir(directory):
        raise UsageError("--textfile-dir %s is not a directory" % directory,
                         "create it, or give node_exporter's "
                         "--collector.textfile.directory")
    return labels, listen


def _collector(opts, labels, tracer):
    """(MetricsCollector, the registry the HTTP server serves)."""
    from prometheus_client import CollectorRegistry, ProcessCollector
    metrics = _metrics()
    resets = metric_labels.ResetCounters(
        labels, max_values=opts["max_label_values"],
        forget_after=opts["forget_after"])
    collector = metrics.MetricsCollector(resets, {
        "version": __version__, "mode": tracer.mode,
        "kernel": platform.release()})
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ProcessCollector(registry=registry)     # its memory and CPU
    return collector, registry


def _run(tracer, collector, opts, listen, server):
    from rsttrace.output.textfile import Textfile
    from rsttrace.trace.harvest import Harvester
    from rsttrace.trace.kernel_summary import KernelSummary
    from rsttrace.trace.session import Session
    textfile = Textfile(opts["textfile_dir"], collector) \
        if opts["textfile_dir"] else None
    if textfile is not None:
        textfile.write()        # a refused or unwritable path: fail now
    session = Session(tracer, duration=opts["duration"])
    session.start()
    harvester = Harvester(tracer, KernelSummary(tracer, session.decoder),
                          collector.counters, collector, textfile,
                          warn=session.warn)
    ticks = [0]

    def tick():                 # once a second
        ticks[0] += 1
        if ticks[0] % opts["interval"] == 0:
            harvester.harvest()
    session.on_tick = tick
    session.before_close = harvester.harvest    # the final counts
    harvester.harvest()
    if server is not None:
        server.start()
    where = ["http://%s:%d/metrics" % listen] if listen else []
    if textfile is not None:
        where.append(textfile.path)
    session.warn("exporting to %s every %ds in %s mode (%s); labels: %s"
                 % (" and ".join(where), opts["interval"], tracer.mode,
                    ", ".join(p.hook.name for p in tracer.attached()),
                    ", ".join(collector.counters.names)))
    session.run()
