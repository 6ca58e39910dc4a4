"""The exporter's cost (`scripts/bench --exporter`, results in
bench/EXPORTER.md):

  storm    `rsttrace exporter` counting hping3's SYN storms to a closed
           port at the storm section's rates: what it counted against the
           kernel's count, and its CPU seconds per 100k RSTs (process CPU
           while the storm runs, harvests and scrapes included)
  ports    a flood to ever-changing service ports with --label local_port:
           the label stays bounded (--max-label-values), memory with it
  scrape   one scrape of /metrics (the real HTTP server) against the
           number of series, and its size
"""

import os
import statistics
import subprocess
import sys
import time
import urllib.request

from benchlib.common import (HERE, RSTTRACE, Traced, log, ns, out_rsts,
                             proc_cpu, rss, storm, table)

from rsttrace.lab.netns import NamespacePair
from rsttrace.output import metric_labels, metrics

sys.path.insert(0, os.path.join(HERE, "tests"))
from prometheus_server import free_port  # noqa: E402


def rss_mib(pid):
    return rss(pid) / 2 ** 20


def scrape_text(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=10) as r:
        return r.read().decode()


def counted(text):
    """(RSTs in rsttrace_resets_total, lost, series) from a scrape."""
    total = series = 0
    lost = 0
    for line in text.splitlines():
        if line.startswith("rsttrace_resets_total{"):
            total += float(line.rsplit(" ", 1)[1])
            series += 1
        elif line.startswith("rsttrace_events_lost_total "):
            lost = float(line.split()[1])
    return int(total), int(lost), series


class Exporter:
    def __init__(self, pair, *args):
        self.port = free_port()
        self.t = Traced([RSTTRACE, "exporter", "--listen",
                               "127.0.0.1:%d" % self.port, "--interval", "1",
                               "--netns", pair.names["b"], *args],
                              ("stderr", "exporting to"))

    def cpu(self):
        return proc_cpu(self.t.proc.pid)

    def scrape(self):
        return scrape_text(self.port)

    def stop(self):
        self.t.stop()


def settled(exp, sent, timeout=20):
    """(counted, lost) once a harvest has taken in all `sent` RSTs (on a
    loaded machine the 1 s harvest may come late), or when it gives up."""
    deadline = time.monotonic() + timeout
    while True:
        total, lost, _ = counted(exp.scrape())
        if total + lost >= sent or time.monotonic() > deadline:
            return total, lost
        time.sleep(0.5)


def storm_round(pair, label, hargs, procs, seconds):
    exp = Exporter(pair)
    try:
        cpu0 = exp.cpu()
        sent, rate = storm(pair, hargs, seconds, procs)
        total, lost = settled(exp, sent)
        cpu = exp.cpu() - cpu0
        rss = rss_mib(exp.t.proc.pid)
    finally:
        exp.stop()
    return [label, "%.0f" % rate, sent, total, lost,
            "yes" if total + lost == sent else "NO",
            "%.2f" % (cpu / max(sent, 1) * 1e5), "%.0f" % rss]


def ports(pair, seconds, max_values=100):
    """A flood to incrementing destination ports (hping3 -p ++N), counted
    with --label local_port."""
    exp = Exporter(pair, "--label", "local_port", "--max-label-values",
                   str(max_values))
    try:
        rss0 = rss_mib(exp.t.proc.pid)
        before = out_rsts(pair)
        gen = subprocess.Popen(ns(pair, "a", "hping3", "-S", "-q",
                                        "-p", "++1", "-i", "u50",
                                        pair.ipv4["b"]),
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        time.sleep(seconds)
        gen.kill()
        gen.wait()
        time.sleep(0.3)
        settled(exp, out_rsts(pair) - before)
        total, lost, series = counted(exp.scrape())
        text = exp.scrape()
        values = {line.split('local_port="')[1].split('"')[0]
                  for line in text.splitlines()
                  if line.startswith("rsttrace_resets_total{")}
        rss = rss_mib(exp.t.proc.pid)
    finally:
        exp.stop()
    return [["RSTs counted (one per port hit)", total],
            ["local_port values kept", "%d (+ `other`: %s)" % (
                len(values - {"other"}), "other" in values)],
            ["series", series], ["lost", lost],
            ["RSS MiB before / after", "%.0f / %.0f" % (rss0, rss)]]


def scrape_cost(counts, rounds):
    """Scrape time of the real HTTP server with `n` series."""
    rows = []
    for n in counts:
        resets = metric_labels.ResetCounters(("netns", "local_port"),
                                             max_values=n)
        for i in range(n):
            resets.add({"kind": "sent", "cause": "no-listener",
                        "hook": "tcp:tcp_send_reset", "state": None,
                        "reason": "NO_SOCKET", "family": 4,
                        "netns": 4026531840 + i, "local_port": 1000 + i % 50},
                       i + 1)
        collector = metrics.MetricsCollector(resets, {"version": "bench"})
        from prometheus_client import CollectorRegistry
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)
        port = free_port()
        server = metrics.MetricsServer("127.0.0.1", port, registry)
        server.start()
        try:
            times = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                text = scrape_text(port)
                times.append((time.perf_counter() - t0) * 1000)
        finally:
            server.close()
        rows.append([n, "%.0f" % (len(text) / 1024),
                     "%.1f (%.1f..%.1f)" % (statistics.median(times),
                                            min(times), max(times))])
    return rows


def bench_exporter(rounds, seconds, rates):
    """The exporter's section of the results, as Markdown."""
    log("exporter: storms, %ds per rate" % seconds)
    with NamespacePair() as pair:
        storms = []
        for label, hargs, procs in rates:
            runs = [storm_round(pair, label, hargs, procs, seconds)
                    for _ in range(rounds)]
            storms.append(sorted(runs, key=lambda r: float(r[6]))[
                len(runs) // 2])
            log("  %s: %s" % (label, storms[-1][1:]))
        bound = ports(pair, max(seconds, 3))
    log("exporter: scrape time")
    scrapes = scrape_cost((10, 100, 1000, 10000), max(rounds, 5))
    return "\n\n".join((
        "## The exporter under RST storms\n\n`rsttrace exporter --interval "
        "1` counting hping3's SYNs to a closed port in a namespace (the "
        "median round of %d by CPU). `sent` is the kernel's count "
        "(TcpOutRsts), `counted` the sum of rsttrace_resets_total after "
        "the storm; CPU is the exporter process's while the storm ran "
        "(harvests and scrapes included), per 100k RSTs the kernel sent."
        % rounds,
        table(["hping3", "RSTs/s", "sent", "counted", "lost", "exact",
               "CPU s per 100k RSTs", "RSS MiB"], storms),
        "## Bounded labels\n\nA flood to ever-changing destination ports "
        "(hping3 `-p ++1`) counted with `--label local_port "
        "--max-label-values 100`.",
        table(["", ""], bound),
        "## Scrape time against series\n\nOne GET of /metrics from the "
        "exporter's HTTP server holding N rsttrace_resets_total series "
        "(opt-in labels netns and local_port), median (min..max) of "
        "%d." % max(rounds, 5),
        table(["series", "KiB", "ms per scrape"], scrapes)))
