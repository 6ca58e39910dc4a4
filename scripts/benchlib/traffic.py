"""Normal traffic (no RSTs): sockperf TCP ping-pong across a veth pair
between two namespaces, without rsttrace and with it in each mode, in
alternating rounds; and what the BPF programs and the tracer process did
meanwhile."""

import re
import statistics
import subprocess
import tempfile
import time

from benchlib.common import (RSTTRACE, BpfStats, Traced, log, ns,
                             proc_cpu, prog_names, prog_stats, runs_between)
from benchlib.storm import delivered_and_lost
from rsttrace.output.records import EVENT_KINDS
from rsttrace.trace.tracer import OWNER_PROGRAM

CONFIGS = [
    ("rsttrace trace (default)", ["--json", "-o", "FILE"]),
    ("rsttrace trace --summary-only", ["--summary-only", "--json", "-o",
                                       "FILE"]),
    ("rsttrace trace --packets", ["--json", "-o", "FILE", "--packets"]),
]
PORT = 11111


def sockperf_rate(pair, seconds):
    """(messages per second, packets sockperf sent and received)."""
    res = subprocess.run(ns(pair, "a", "taskset", "-c", "0", "sockperf",
                            "ping-pong", "--tcp", "-i", pair.ipv4["b"],
                            "-p", str(PORT), "-t", str(seconds)),
                         capture_output=True, text=True)
    m = re.search(r"\[Valid Duration\] RunTime=([\d.]+) sec; "
                  r"SentMessages=(\d+); ReceivedMessages=(\d+)", res.stdout)
    if not m:
        raise RuntimeError("sockperf failed: " + res.stdout[-300:] +
                           res.stderr[-300:])
    return int(m.group(3)) / float(m.group(1))


def bench_overhead(pair, rounds, seconds):
    """{config: {"ratios", "rates", "runs", "ns_run", "idle_cpu"}}, and
    the baseline rates. Each tracer's round sits between two baseline ones
    (A B A C A D A ...); its ratio is against their mean."""
    log("overhead: sockperf ping-pong, %d rounds of %ds" % (rounds, seconds))
    srv = subprocess.Popen(ns(pair, "b", "taskset", "-c", "1", "sockperf",
                              "server", "--tcp", "-i", pair.ipv4["b"],
                              "-p", str(PORT)),
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not pair.run("b", "ss", "-ltnH", "sport = :%d" % PORT).strip():
        if time.monotonic() > deadline or srv.poll() is not None:
            raise RuntimeError("the sockperf server did not start")
        time.sleep(0.1)
    out = {name: {"ratios": [], "rates": [], "runs": [], "ns_run": [],
                  "messages": [], "idle_cpu": [], "rsts": [],
                  "state_runs": [], "state_ns_run": []}
           for name, _ in CONFIGS}
    base = []
    try:
        with BpfStats():
            prev = sockperf_rate(pair, seconds)
            base.append(prev)
            for r in range(rounds):
                for name, args in CONFIGS:
                    f = tempfile.NamedTemporaryFile(suffix=".jsonl")
                    t = Traced([RSTTRACE, "trace", *[
                        f.name if a == "FILE" else a for a in args]])
                    before = prog_stats(t.pid)      # (from attached on)
                    names = prog_names(t.pid)
                    time.sleep(0.5)
                    cpu0, t0 = proc_cpu(t.pid), time.monotonic()
                    rate = sockperf_rate(pair, seconds)
                    took = time.monotonic() - t0
                    cpu = proc_cpu(t.pid) - cpu0
                    after = prog_stats(t.pid)
                    # the owner probe runs per TCP state change (sockperf
                    # connects once a round), the others per RST or packet
                    state = {k for k, n in names.items()
                             if n and OWNER_PROGRAM.startswith(n)}
                    runs, ns_run = runs_between(
                        before, {k: v for k, v in after.items()
                                 if k not in state})
                    state_runs, state_ns = runs_between(
                        before, {k: v for k, v in after.items()
                                 if k in state})
                    t.stop()
                    with open(f.name) as written:     # the host's RSTs
                        # (every kind: each event is a hook's run)
                        rsts = sum(delivered_and_lost(
                            written.read(), EVENT_KINDS))
                    f.close()
                    time.sleep(0.5)         # let detach and cleanup finish
                    nxt = sockperf_rate(pair, seconds)
                    base.append(nxt)
                    o = out[name]
                    o["rates"].append(rate)
                    o["ratios"].append(rate / statistics.mean((prev, nxt)))
                    o["runs"].append(runs)
                    o["ns_run"].append(ns_run)
                    o["state_runs"].append(state_runs)
                    o["state_ns_run"].append(state_ns)
                    o["messages"].append(rate * took)
                    # (each RST anywhere on the host is a run, and an
                    # event: these runs are not the traffic's)
                    o["rsts"].append(rsts)
                    o["idle_cpu"].append(cpu / took)
                    prev = nxt
                log("  round %d: base %.0f msg/s, %s" % (
                    r + 1, base[-1], ", ".join(
                        "%s %.3f" % (n.split()[-1], out[n]["ratios"][-1])
                        for n, _ in CONFIGS)))
    finally:
        srv.kill()
        srv.wait()
    return out, base
