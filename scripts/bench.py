"""rsttrace benchmarks; run through scripts/bench (which installs the tools).

Every figure is measured in this one run on this machine, in rounds, and
reported as median and spread (min..max). Sections (scripts/benchlib/):

  storm      hping3 SYN storms to a closed port across veth, at fixed
             intervals and as a flood, in every attach mode this kernel
             has: what the kernel sent against what rsttrace delivered and
             lost, the kernel's ns per BPF run (BPF_ENABLE_STATS), the
             tracer's CPU per event; bpftrace count() and kstack as peers
  capacity   the flood's rate with each tracer / without, alternating
  stack      what attribution needs of the stack (the recordings), a walk's
             cost against its depth, rsttrace's remembered paths
  overhead   sockperf ping-pong without and with each mode, alternating;
             BPF runs and ns per run meanwhile; the idle tracer's CPU
  growth     cost per event and memory against distinct stacks, flows and
             namespaces; memory during the storms; the netns filter
  owner      the who-fields' cost in a storm at a listener, and the owner
             probe's per TCP state change (issue 12)
  attach     process start to attached, next to bcc's tools and bpftrace

Apart from the full run (each with --quick for a smoke run):
  --filters  a flood under filters that drop every RST in the kernel:
             --host, --port, filter expressions (bench/FILTERS.md)
  --exporter `rsttrace exporter` under the storms, its label bound and its
             scrape time (bench/EXPORTER.md)
The user-space caches have a bench of their own: scripts/bench-caches
(bench/CACHES.md).
"""

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [SCRIPTS, os.path.dirname(SCRIPTS)]

from benchlib import (attach, exporter, filters, growth,  # noqa: E402
                      owner, report, stack, storm, traffic)
from benchlib.common import HERE, log  # noqa: E402
from rsttrace.errors import RsttraceError  # noqa: E402
from rsttrace.lab.netns import NamespacePair  # noqa: E402
from rsttrace.output.outfile import OutputFile  # noqa: E402
from rsttrace.trace import hooks  # noqa: E402


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return "%s, %d cores, %s, kernel %s, Python %s" % (
        cpu, os.cpu_count(), platform.machine(), os.uname().release,
        platform.python_version())


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def modes():
    """The attach modes this kernel has."""
    out = []
    for mode in hooks.MODES:
        try:
            hooks.check_mode(mode)
            out.append(mode)
        except RsttraceError:
            pass
    return out


class Plan:
    """How much of each section: the full run, or --quick (a smoke run)."""

    def __init__(self, quick):
        self.quick = quick
        self.seconds = 1 if quick else 3
        self.storm_rounds = 1 if quick else 2
        self.rates = [storm.RATES[0], storm.RATES[-1]] if quick \
            else storm.RATES
        self.capacity_rounds = 1 if quick else 5
        self.depths = (1, 32) if quick else stack.DEPTHS
        self.overhead_rounds = 1 if quick else 9
        self.overhead_seconds = 2    # sockperf warms up for 0.4 s
        self.growth = {k: v[:2] for k, v in growth.POINTS.items()} \
            if quick else growth.POINTS
        self.growth_events = 20000 if quick else 200000
        self.owner_rounds = 1 if quick else 3
        self.attach_rounds = 1 if quick else 3
        self.netns_sizes = (1, 4) if quick else (1, 200)
        self.filter_rounds = 1 if quick else 5
        self.exporter_rounds = 1 if quick else 3
        self.exporter_seconds = 1 if quick else 4


def run(plan):
    sections, res = [], {}
    with NamespacePair() as pair:
        log("storm: %s" % ", ".join(modes()))
        res["storm"] = storm.bench_storm(pair, modes(), plan.storm_rounds,
                                         plan.seconds, plan.rates)
        log("capacity")
        res["capacity"] = storm.bench_capacity(pair, plan.capacity_rounds,
                                               plan.seconds)
        log("stack")
        res["stack"] = stack.bench_stack(pair, plan.seconds, plan.depths)
        log("growth: the netns filter")
        res["netns"] = growth.bench_netns_filter(pair, plan.seconds,
                                                 plan.netns_sizes)
        res["owner"] = owner.bench_owner(pair, plan.owner_rounds,
                                         plan.seconds)
    with NamespacePair() as pair:
        res["overhead"] = traffic.bench_overhead(
            pair, plan.overhead_rounds, plan.overhead_seconds)
    log("growth: user space")
    res["growth"] = growth.bench_user(plan.growth, plan.growth_events)
    res["attach"] = attach.bench_attach(plan.attach_rounds)
    sections.append(report.goals_section(report.goals(
        res["storm"], res["capacity"], res["overhead"], res["attach"])))
    sections.append(report.storm_section(res["storm"]))
    sections.append(report.capacity_section(*res["capacity"]))
    sections.append(report.stack_section(res["stack"]))
    sections.append(report.overhead_section(*res["overhead"]))
    sections.append(report.growth_section(res["growth"], res["netns"],
                                          res["storm"]))
    sections.append(report.owner_section(*res["owner"]))
    sections.append(report.attach_section(res["attach"]))
    sections.append("## Measured elsewhere\n\nThe user-space caches: "
                    "`scripts/bench-caches` ([CACHES.md](CACHES.md)); "
                    "filters in the kernel: `scripts/bench --filters` "
                    "([FILTERS.md](FILTERS.md)); the exporter: "
                    "`scripts/bench --exporter` ([EXPORTER.md](EXPORTER.md)).")
    return sections


def run_filters(plan):
    with NamespacePair() as pair:
        return [filters.bench_filters(pair, plan.filter_rounds,
                                      plan.seconds)]


def run_exporter(plan):
    return [exporter.bench_exporter(plan.exporter_rounds,
                                    plan.exporter_seconds, plan.rates)]


# what to run: (title, results file, sections)
RUNS = {"full": ("rsttrace benchmarks", "RESULTS.md", run),
        "filters": ("rsttrace filter cost", "FILTERS.md", run_filters),
        "exporter": ("rsttrace exporter benchmarks", "EXPORTER.md",
                     run_exporter)}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="one short round of everything (a smoke test)")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--filters", dest="run", action="store_const",
                       const="filters", help="only the filter cost, into "
                       "bench/FILTERS.md")
    which.add_argument("--exporter", dest="run", action="store_const",
                       const="exporter", help="only the exporter's cost, "
                       "into bench/EXPORTER.md")
    ap.add_argument("-o", "--output", help="results file (default "
                    "bench/RESULTS.md, or the one of --filters/--exporter; "
                    "with --quick a temporary file)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: error: needs root (BPF, namespaces): run with sudo")
    title, results, sections_of = RUNS[a.run or "full"]
    started, load_before = time.monotonic(), load()
    sections = sections_of(Plan(a.quick))
    took = time.monotonic() - started
    head = ("# %s\n\n%s%s, on %s.\n`scripts/bench%s` took %.0f s; load "
            "average %s before, %s after (other work on the machine makes "
            "the figures noisier and the rates lower).\n" % (
                title, "QUICK SMOKE RUN (not results): " if a.quick else "",
                datetime.datetime.now(datetime.timezone.utc).strftime(
                    "%Y-%m-%d %H:%M UTC"), machine(),
                "".join(" --" + f for f in (a.run, a.quick and "quick")
                        if f), took, load_before, load()))
    text = "\n\n".join([head] + sections) + "\n"
    path = a.output or (os.path.join(HERE, "bench", results)
                        if not a.quick else
                        tempfile.mktemp(prefix="rsttrace-bench-",
                                        suffix=".md"))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    out = OutputFile(path)
    out.open().write(text)
    out.commit()
    print(text)
    log("wrote %s in %.0f s" % (path, took))


if __name__ == "__main__":
    main()
