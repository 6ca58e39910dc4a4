"""rsttrace's Prometheus metrics: a collector for the official
prometheus_client, fed by `rsttrace exporter` (rsttrace/cli/exporter.py).

The exporter's main thread harvests the kernel's counts and reads the
kernel's figures every interval (Readings); a scrape, in the HTTP server's
thread, only formats the last of them. A scrape therefore never touches a
BPF map or file descriptor, costs the same however busy the host is, and
cannot race the tracer's shutdown.

Families (docs: README "Monitoring a fleet"):
    rsttrace_resets_total{direction,cause,hook,state,reason,family[,opt-in]}
    rsttrace_events_lost_total
    rsttrace_bpf_runs_total{program}, rsttrace_bpf_run_seconds_total{program}
    rsttrace_bpf_stats_enabled
    rsttrace_kernel_tcp_out_rsts_total{netns}
    rsttrace_build_info{version,mode,kernel}
    rsttrace_errors_total{source}, rsttrace_harvest_age_seconds,
    rsttrace_uptime_seconds, rsttrace_series_forgotten_total
"""

import collections
import socket
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    InfoMetricFamily)
from prometheus_client.exposition import ThreadingWSGIServer

from rsttrace.errors import RsttraceError

# What the main thread read at its last harvest.
Readings = collections.namedtuple("Readings", (
    "lost",             # events the kernel could not count (map full)
    "programs",         # {program name: (run_time_ns, run_cnt)}
    "stats_on",         # the kernel is measuring BPF run time now
    "out_rsts",         # (netns inode, Tcp OutRsts) or None
    "at",               # monotonic time of the harvest
))
NOTHING_YET = Readings(0, {}, False, None, None)


class MetricsCollector:
    """Yields rsttrace's metric families (prometheus_client's custom
    collector interface: collect())."""

    def __init__(self, counters, info, clock=time.monotonic):
        self.counters = counters    # metric_labels.ResetCounters
        self.info = dict(info)      # rsttrace_build_info's labels
        self.clock = clock
        self.started = clock()
        self.readings = NOTHING_YET
        self.errors = collections.Counter()     # {source: failures}

    def update(self, readings):
        self.readings = readings

    def failed(self, source):
        self.errors[source] += 1

    def collect(self):
        r = self.readings
        yield self._resets()
        yield CounterMetricFamily(
            "rsttrace_events_lost",
            "RSTs the kernel saw but could not count (its map was full).",
            value=r.lost)
        yield from self._bpf(r)
        if r.out_rsts is not None:
            out = CounterMetricFamily(
                "rsttrace_kernel_tcp_out_rsts",
                "The kernel's own count of RSTs sent (Tcp OutRsts of "
                "/proc/net/snmp) in the exporter's network namespace only, "
                "for reconciliation with rsttrace_resets_total.",
                labels=["netns"])
            out.add_metric([str(r.out_rsts[0])], r.out_rsts[1])
            yield out
        yield InfoMetricFamily("rsttrace_build", "rsttrace's version, attach "
                               "mode and the kernel it runs on.",
                               value=self.info)
        yield from self._health(r)

    def _resets(self):
        fam = CounterMetricFamily(
            "rsttrace_resets",
            "TCP RSTs sent and received by this host, by cause.",
            labels=["direction", "cause", "hook", "state", "reason",
                    "family"] + list(self.counters.opt_in))
        for values, count in sorted(self.counters.snapshot()):
            fam.add_metric(list(values), count)
        return fam

    def _bpf(self, r):
        runs = CounterMetricFamily(
            "rsttrace_bpf_runs", "Runs of rsttrace's BPF programs, counted "
            "by the kernel while its BPF statistics are on.",
            labels=["program"])
        secs = CounterMetricFamily(
            "rsttrace_bpf_run_seconds", "Time rsttrace's BPF programs ran, "
            "measured by the kernel while its BPF statistics are on.",
            labels=["program"])
        for name, (run_ns, run_cnt) in sorted(r.programs.items()):
            runs.add_metric([name], run_cnt)
            secs.add_metric([name], run_ns / 1e9)
        yield runs
        yield secs
        yield GaugeMetricFamily(
            "rsttrace_bpf_stats_enabled", "1 while the kernel measures BPF "
            "run time (kernel.bpf_stats_enabled or --bpf-stats).",
            value=int(r.stats_on))

    def _health(self, r):
        errors = CounterMetricFamily(
            "rsttrace_errors", "Failures to read a source of these metrics "
            "(kernel counts, BPF statistics, /proc/net/snmp) or to write "
            "the textfile.", labels=["source"])
        for source, n in sorted(self.errors.items()):
            errors.add_metric([source], n)
        yield errors
        now = self.clock()
        yield GaugeMetricFamily(
            "rsttrace_harvest_age_seconds", "Seconds since the kernel's "
            "counts were last read (grows if the exporter is stuck).",
            value=now - (r.at if r.at is not None else self.started))
        yield GaugeMetricFamily("rsttrace_uptime_seconds",
                                "Seconds since the exporter started.",
                                value=now - self.started)
        yield CounterMetricFamily(
            "rsttrace_series_forgotten", "rsttrace_resets_total series "
            "dropped because their opt-in label value was idle.",
            value=self.counters.forgotten)


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):       # no line per scrape in the journal
        pass


class MetricsServer:
    """http://addr:port/metrics for `registry` (prometheus_client's WSGI
    app; its start_http_server would say neither when nor which server to
    stop). The address is bound at once, so a taken one fails before bcc's
    compile; requests are answered only from start(), once the tracer
    counts (until then they wait in the listen queue): a scrape that gets
    an answer sees probes attached."""

    def __init__(self, addr, port, registry):
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        server_class = type("Server", (ThreadingWSGIServer,),
                            {"address_family": family})
        try:
            self.httpd = make_server(addr, port, make_wsgi_app(registry),
                                     server_class, handler_class=_Quiet)
        except OSError as e:
            raise RsttraceError("cannot listen on %s:%d (%s)"
                                % (addr, port, e.strerror or e),
                                "choose another --listen address or port")
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       name="metrics", daemon=True)
        self.thread.start()

    def close(self):
        if self.thread is not None:     # shutdown() waits for serve_forever
            self.httpd.shutdown()
        self.httpd.server_close()
