"""The exporter's heartbeat: every interval, take what the kernel counted
(KernelSummary.harvest, the one summary-mode path: the same Facts and
attribution as `trace --summary-only`), add it to the metric series, read
the kernel's own figures, and hand them all to the metrics collector (and
the textfile).

Memory stays bounded however long it runs: the kernel's count maps hold
one interval's keys (Tracer.take_counts), the stack map is an LRU, the
decoder's caches are capped (rsttrace.trace.decode), Summary rows are one
per kernel path, and the metric series are bounded by their labels
(rsttrace.output.metric_labels).
"""

import os
import time

from rsttrace.errors import RsttraceError
from rsttrace.kernel import bpf_stats
from rsttrace.lab import counters as tcp_counters
from rsttrace.output.metrics import Readings


def out_rsts():
    """(netns inode, Tcp OutRsts) of this process's network namespace."""
    inode = os.stat("/proc/self/ns/net").st_ino
    with open("/proc/self/net/snmp") as f:
        return inode, tcp_counters.parse(f.read())["Tcp:OutRsts"]


class Harvester:
    def __init__(self, tracer, summary, resets, collector, textfile=None,
                 stats_fd=None, warn=print, clock=time.monotonic):
        self.tracer = tracer
        self.summary = summary          # trace.kernel_summary.KernelSummary
        self.resets = resets            # output.metric_labels.ResetCounters
        self.collector = collector      # output.metrics.MetricsCollector
        self.textfile = textfile        # output.textfile.Textfile or None
        self.stats_fd = stats_fd        # bpf_stats.enable()'s, or None
        self.warn = warn
        self.clock = clock
        self._said = {}                 # source -> last problem reported

    def _failed(self, source, problem):
        """Count a failure; say it once until it changes or clears."""
        self.collector.failed(source)
        if self._said.get(source) != problem:
            self._said[source] = problem
            self.warn("%s: %s" % (source, problem))

    def _ok(self, source):
        if self._said.pop(source, None) is not None:
            self.warn("%s: working again" % source)

    def _read(self, source, read, default):
        try:
            value = read()
        except (OSError, ValueError, KeyError) as e:
            self._failed(source, str(e) or type(e).__name__)
            return default
        self._ok(source)
        return value

    def programs(self):
        """{program name: (run_time_ns, run_cnt)} of rsttrace's programs."""
        out = {}
        for name, func in self.tracer.bpf.funcs.items():
            stats = bpf_stats.program_stats(func.fd)
            if stats is not None:
                out[name.decode() if isinstance(name, bytes) else name] = \
                    stats
        return out

    def harvest(self):
        for record, count in self.summary.harvest():
            self.resets.add(record, count)
        self.resets.forget()
        lost = self.tracer.counts()[1]
        self.collector.update(Readings(
            lost=lost,
            programs=self._read("bpf_stats", self.programs, {}),
            stats_on=self.stats_fd is not None or bpf_stats.sysctl_on(),
            out_rsts=self._read("snmp", out_rsts, None),
            at=self.clock()))
        self.write_textfile()

    def write_textfile(self):
        if self.textfile is None:
            return
        try:
            self.textfile.write()
        except RsttraceError as e:
            self._failed("textfile", str(e))
        else:
            self._ok("textfile")
