"""RST storms: SYNs from hping3 to a closed port across a veth pair between
two namespaces. What the kernel sent (nstat TcpOutRsts in the namespace)
against what each tracer delivered and lost, the kernel's cost per BPF
run (BPF_ENABLE_STATS), the tracer's CPU per event, with bpftrace and
`perf trace` as peers on the flood; and the host's RST
capacity: the flood's rate under each tracer against the rate without."""

import json
import os
import re
import signal
import statistics
import subprocess
import tempfile
import time

from benchlib.common import (BPFTRACE_COUNT, BPFTRACE_KSTACK, RSTTRACE,
                             BpfStats, Traced, busy_until_idle, log,
                             map_bytes, proc_cpu, prog_stats, rss,
                             runs_between, storm)

# (label, hping3 arguments, generators). hping3's usleep makes the rate
# coarse: the tables report the rate the kernel actually reached.
RATES = [("u100", ["-i", "u100"], 1), ("u20", ["-i", "u20"], 1),
         ("flood", ["--flood"], 1)]
TRACERS = [("streaming", ["--json", "-o", "FILE"]),
           ("summary-only", ["--summary-only", "--json"])]
PEERS = [("bpftrace count()", BPFTRACE_COUNT),
         ("bpftrace @[kstack] = count()", BPFTRACE_KSTACK)]
# (a peer on the storm only: it streams every event through perf's ring
# buffer, and says nothing when it is attached)
PERF_TRACE = ["perf", "trace", "--no-syscalls", "-a", "-e",
              "tcp:tcp_send_reset"]


def rsttrace(pair, mode, args, outfile):
    argv = [RSTTRACE, "trace", "--mode", mode, "--netns", pair.names["b"]]
    argv += [outfile if a == "FILE" else a for a in args]
    return Traced(argv, stdout=subprocess.PIPE if "FILE" not in args
                  else subprocess.DEVNULL)


def delivered_and_lost(text, kinds=("sent",)):
    """(events of `kinds`, lost) in trace --json output, read without
    parsing every line (a flood writes hundreds of thousands); the storms
    count the RSTs sent (the kernel's TcpOutRsts)."""
    events = lost = 0
    marks = tuple('"kind":"%s"' % k for k in kinds)
    for line in text.splitlines():
        if line.startswith('{"kind":"lost"'):
            lost += json.loads(line)["count"]
        elif line.startswith('{"kind":"summary"'):
            summary = json.loads(line)
            if not events:          # summary mode: the summary is all
                return summary["events"], summary["lost"]
        elif any(m in line[:200] for m in marks):
            events += 1
    return events, lost


def tracer_round(pair, mode, name, args, hargs, procs, seconds):
    """One storm under one rsttrace: a dict of figures."""
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as f:
        t = rsttrace(pair, mode, args, f.name)
        before = prog_stats(t.pid)
        sent, rate = storm(pair, hargs, seconds, procs)
        runs, ns_run = runs_between(before, prog_stats(t.pid))
        memory = map_bytes(t.pid), rss(t.pid)
        cpu, out = t.stop()
        if out is None:     # -o puts a new file in place of this one
            with open(f.name) as written:
                text = written.read()
        else:
            text = out
    delivered, lost = delivered_and_lost(text)
    return {"sent": sent, "rate": rate, "delivered": delivered,
            "lost": lost, "exact": delivered + lost == sent, "runs": runs,
            "ns_run": ns_run, "cpu": cpu,
            "cpu_us": cpu / max(delivered, 1) * 1e6,
            "map_bytes": memory[0], "rss": memory[1],
            "share": delivered / max(sent, 1)}


def peer_round(pair, argv, seconds):
    t = Traced(argv, ready=("stdout", "attached"))
    before = prog_stats(t.pid)
    sent, rate = storm(pair, ["--flood"], seconds)
    runs, ns_run = runs_between(before, prog_stats(t.pid))
    cpu, out = t.stop()
    seen = sum(int(line.rsplit(":", 1)[1]) for line in out.splitlines()
               if line.rstrip().endswith(tuple("0123456789")) and
               (line.startswith("@n:") or line.startswith("]:")))
    return {"sent": sent, "rate": rate, "runs": runs, "ns_run": ns_run,
            "seen": seen, "lost": "not reported", "cpu": cpu}


def perf_round(pair, argv, seconds, attach_s=3):
    """perf trace on the flood: the events it printed and the losses it
    reported (its LOST lines); no BPF runs (perf events)."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                text=True)
        time.sleep(attach_s)
        if proc.poll() is not None:
            out.seek(0)
            raise RuntimeError("perf trace exited: " + out.read()[-300:])
        sent, rate = storm(pair, ["--flood"], seconds)
        proc.send_signal(signal.SIGINT)
        _, status, ru = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    lost = re.findall(r"LOST (\d+) events", text)
    return {"sent": sent, "rate": rate, "runs": None, "ns_run": None,
            "seen": text.count("tcp:tcp_send_reset("),
            "lost": "%d reported" % sum(map(int, lost)) if lost else
            "none reported", "cpu": ru.ru_utime + ru.ru_stime}


def bench_storm(pair, modes, rounds, seconds, rates=RATES):
    """Every rate under every mode and tracer, with BPF statistics on;
    the peers on the flood. Returns a list of result dicts."""
    results = []
    with BpfStats():
        for mode in modes:
            for label, hargs, procs in rates:
                for name, args in TRACERS:
                    runs = [tracer_round(pair, mode, name, args, hargs, procs,
                                         seconds) for _ in range(rounds)]
                    results.append(summarise(runs, label, mode, name))
                    log("  storm %s %s %s: %.0f/s, %.0f ns/run, "
                        "%.1f us/event, %d%% delivered" % (
                            mode, label, name, results[-1]["rate"],
                            results[-1]["ns_run"] or 0,
                            results[-1]["cpu_us"],
                            100 * results[-1]["share"]))
        for name, program in PEERS + [("perf trace", PERF_TRACE)]:
            peer = perf_round if program is PERF_TRACE else peer_round
            try:
                r = [peer(pair, program, seconds) for _ in range(rounds)]
            except RuntimeError as e:       # a peer that cannot run here
                results.append({"tracer": name, "error": str(e)[-200:]})
                continue
            mid = sorted(r, key=lambda x: x["ns_run"] or 0)[len(r) // 2]
            results.append(dict(mid, tracer=name, rate_label="flood",
                                mode="tracepoint",
                                ns_spread=[x["ns_run"] for x in r]))
            log("  storm peer %s: %.0f ns/run" % (name, mid["ns_run"] or 0))
    return results


def summarise(runs, label, mode, name):
    """The round with the median delivered share (of two, the lower)
    stands for the rate (so that its columns add up); spreads over all
    rounds."""
    mid = sorted(runs, key=lambda r: r["share"])[(len(runs) - 1) // 2]
    return dict(mid, rate_label=label, mode=mode, tracer="rsttrace " + name,
                exact_all=all(r["exact"] for r in runs),
                exact_count=sum(r["exact"] for r in runs),
                rounds=len(runs),
                shares=[r["share"] for r in runs],
                ns_spread=[r["ns_run"] for r in runs],
                cpu_spread=[r["cpu_us"] for r in runs],
                cpu_s=[r["cpu"] for r in runs])


def bench_capacity(pair, rounds, seconds):
    """Flood rate under each tracer / the mean of the floods just before
    and after without one (alternating, so drift cancels); BPF statistics
    off, as a user runs. {tracer: [ratios]}, baseline rates."""
    tracers = [("rsttrace summary-only", None, ["--summary-only", "--json"]),
               ("rsttrace streaming", None, ["--json", "-o", "FILE"])] + \
              [(name, program, None) for name, program in PEERS]
    ratios = {name: [] for name, _, _ in tracers}
    base = [storm(pair, ["--flood"], seconds)[1]]
    for r in range(rounds):
        for name, program, args in tracers:
            with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as f:
                try:
                    t = Traced(program, ready=("stdout", "attached")) \
                        if program else rsttrace(pair, "auto", args, f.name)
                except RuntimeError:
                    continue
                time.sleep(0.3)
                rate = storm(pair, ["--flood"], seconds)[1]
                t.stop()
            time.sleep(0.5)
            base.append(storm(pair, ["--flood"], seconds)[1])
            ratios[name].append(rate / statistics.mean(base[-2:]))
        log("  capacity round %d: base %.0f/s, %s" % (
            r + 1, base[-1], ", ".join("%s %.2f" % (k, v[-1])
                                       for k, v in ratios.items() if v)))
    return ratios, base
