"""bench/RESULTS.md: one section per measurement and the goals of issue 15
(met, or by how much not)."""

import statistics

from benchlib.common import median_spread, table
from rsttrace.trace.tracer import OWNER_PROGRAM

NS_GOAL = 1000
CAPACITY_GOALS = {"rsttrace summary-only": 0.85, "rsttrace streaming": 0.80}
CPU_GOAL_US = 4.0
DELIVERED_GOAL = 0.90


def _num(v, fmt="%.0f"):
    return "-" if v is None else fmt % v


def storm_section(results):
    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["tracer"], "-", "-", "-", "-", "-", "-",
                         "failed: " + r["error"], "-", "-", "-"])
            continue
        if "seen" in r:             # a peer
            rows.append(["flood", r["tracer"], r["mode"], "%.0f" % r["rate"],
                         r["sent"], "%d seen" % r["seen"], r["lost"], "-",
                         median_spread(r["ns_spread"], "%.0f"), "-", "-"])
            continue
        rows.append([
            r["rate_label"], r["tracer"], r["mode"], "%.0f" % r["rate"],
            r["sent"], r["delivered"], r["lost"],
            "%.1f%% (%.1f..%.1f)" % (100 * r["share"], 100 * min(r["shares"]),
                                     100 * max(r["shares"])),
            median_spread(r["ns_spread"], "%.0f"),
            "all" if r["exact_all"] else "NO (%d/%d)" % (r["exact_count"],
                                                         r["rounds"]),
            median_spread(r["cpu_spread"], "%.2f")
            if r["tracer"].endswith("streaming") else
            "%.2f s in all" % statistics.median(r["cpu_s"])])
    return ("## RST storm\n\nhping3 SYNs to a closed port across veth "
            "(`-i uN`: at fixed intervals; the rate column is what the "
            "kernel actually sent), with the kernel's BPF statistics on "
            "(BPF_ENABLE_STATS). `sent` is the kernel's count (TcpOutRsts in "
            "the namespace); `exact`: delivered + lost = sent in every "
            "round; `ns per BPF run`: run_time_ns / run_cnt of the tracer's "
            "programs over the storm (rsttrace: every RST is one run); "
            "`tracer CPU`: user + system CPU of the tracer process per "
            "event delivered (summary mode delivers counts, not events). "
            "Each row is the round with the median delivered share (of two, "
            "the lower; so its "
            "columns add up); spreads are over all rounds. bpftrace's "
            "`count()` and `@[kstack] = count()` and `perf trace -e "
            "tcp:tcp_send_reset` (perf events, so no BPF runs; the host's "
            "RSTs it printed, and the losses it reported) run on the same "
            "flood.\n\n"
            + table(["hping3", "tracer", "mode", "RSTs/s", "sent",
                     "delivered", "lost", "delivered %", "ns per BPF run",
                     "exact", "tracer CPU us/event"], rows))


def capacity_section(ratios, base):
    rows = [["no tracer", median_spread(base, "%.0f") + " RSTs/s", "1.00",
             "-"]]
    for name, rs in ratios.items():
        goal = CAPACITY_GOALS.get(name)
        rows.append([name, "-", median_spread(rs, "%.2f") if rs else
                     "failed", ">= %.2f" % goal if goal else "-"])
    return ("## Host RST capacity\n\nThe flood's rate (RSTs the kernel "
            "sent per second) with each tracer attached / the mean of the "
            "floods just before and after without one, in alternating "
            "rounds, BPF statistics off (as a user runs); median "
            "(min..max).\n\n" + table(["tracer", "flood alone",
                                        "rate with / without", "goal"],
                                       rows))


def stack_section(st):
    walk = st["walk"]
    rows = [["no walk (the program alone)", _num(walk[0])]] + [
        ["bpf_get_stack, %d frames" % d, _num(v)]
        for d, v in walk.items() if d]
    memo = [[name, _num(ns), walks, hits] for name, (ns, walks, hits)
            in st["memo"].items()]
    events, need, boundary = st["needs"]
    needs = [[n, c] for n, c in sorted(need.items())]
    bounds = [[k, c] for k, c in sorted(
        boundary.items(), key=lambda kc: (isinstance(kc[0], str), kc[0]))]
    return ("## The kernel stack\n\nWhat attribution needs of it, over the "
            "%d recorded events in tests/data (every kernel and mode "
            "recorded): the fewest frames (after the tracing machinery's) "
            "that give the cause the whole stack gives; and where the "
            "first softirq frame is (the end of the RST's own path), or "
            "`process` for a stack without one.\n\n" % events +
            table(["frames needed", "events"], needs) + "\n\n" +
            table(["first softirq frame at", "events"], bounds) +
            "\n\nWhat a walk costs against its depth: bpf_get_stack() alone "
            "in a raw tracepoint program on tcp:tcp_send_reset, under a "
            "flood (ns per run, BPF statistics). The first frame costs "
            "most: the unwinder crosses the helper's and the JIT code's "
            "own frames first.\n\n" + table(["program", "ns per run"], rows) +
            "\n\nrsttrace (summary mode, the same flood) with its "
            "remembered paths (a CPU walks a path once, then reads back "
            "the return addresses; bpf/rsttrace.bpf.c, stack_key()) and "
            "built to walk every RST (NO_STACK_MEMO, which also reads the "
            "stack back every time):\n\n" +
            table(["rsttrace, stacks", "ns per run", "walks", "remembered"],
                  memo))


def overhead_section(out, base):
    rows = [["no tracer", median_spread(base, "%.0f"), "1.000", "-", "-",
             "-", "-"]]
    for name, o in out.items():
        msgs = sum(o["messages"])
        traffic = sum(o["runs"]) - sum(o["rsts"])
        rows.append([name, median_spread(o["rates"], "%.0f"),
                     median_spread(o["ratios"]),
                     "%d (%.2f per message), %d for RSTs" % (
                         traffic, traffic / msgs, sum(o["rsts"])),
                     median_spread([v for v in o["ns_run"] if v], "%.0f")
                     if any(o["ns_run"]) else "-",
                     "%d in %d rounds, %s ns per run" % (
                         sum(o["state_runs"]), len(o["state_runs"]),
                         median_spread([v for v in o["state_ns_run"] if v],
                                       "%.0f")
                         if any(o["state_ns_run"]) else "-"),
                     median_spread(o["idle_cpu"], "%.4f")])
    return ("## Overhead on normal traffic\n\nsockperf TCP ping-pong over "
            "veth between two namespaces (no RSTs), %d rounds alternating "
            "without and with each tracer; each ratio is against the mean "
            "of the rounds just before and after it; median (min..max). "
            "`BPF runs`: how often the tracer's programs on the RST paths "
            "(and with --packets on every packet) ran meanwhile, less once "
            "per RST it reported (an RST anywhere on the host is a run: "
            "those are not the traffic's); the default mode's hooks are the "
            "RST functions, so 0 is the proof that it costs nothing per "
            "packet; `ns per run`: what each run cost (--packets: per "
            "packet); `owner probe`: the program that records socket owners "
            "(%s), which runs on TCP state changes, not on packets "
            "(sockperf connects once a round); `tracer CPU s/s`: the "
            "tracer process's CPU per second while it waits.\n\n"
            % (len(base[1:]), OWNER_PROGRAM) +
            table(["tracer", "messages/s", "rate with / without",
                   "BPF runs", "ns per run", "owner probe",
                   "tracer CPU s/s"], rows))


def growth_section(user, netns, storm):
    rows = [[kind, n, "%.2f" % v["us"], "%.0f" % (v["peak"] / 1e6)]
            for (kind, n), v in user.items()]
    mem = [[r["rate_label"], r["tracer"], "%.1f" % (r["map_bytes"] / 1e6),
            "%.0f" % (r["rss"] / 1e6)] for r in storm
           if r.get("tracer", "").startswith("rsttrace")]
    filt = [[n, _num(v)] for n, v in netns.items()]
    return ("## Growth\n\nUser space on made-up events (decoder and JSON "
            "writer as a flood drives them), cycling through N distinct "
            "kernel stacks, flows (peer addresses) or network namespaces; "
            "each point in a process of its own. rsttrace keeps %s shapes "
            "and stacks and %s addresses (each cache is emptied when full): "
            "past those the cost per event bends.\n\n" % (
                "16384", "65536") +
            table(["distinct", "N", "us per event", "peak MB"], rows) +
            "\n\nIn the kernel, stacks live in an LRU map of 16384 (the "
            "stacks of a host are few: each is the RST's own path, up to "
            "where its stack was entered), remembered paths one per CPU and "
            "hook; summary mode counts in a hash map of 16384 keys (a key "
            "that finds it full is counted lost). Memory of the tracer "
            "during the storms (its BPF maps' memlock, its RSS):\n\n" +
            table(["hping3", "tracer", "BPF maps MB", "RSS MB"], mem) +
            "\n\nThe netns filter is a hash lookup: ns per run on the flood "
            "with --netns naming 1 namespace and many:\n\n" +
            table(["namespaces in the filter", "ns per run"], filt))


def owner_section(rows, kernel):
    ns_run, runs, prog = kernel
    probe = "not measured (no runs)" if ns_run is None else \
        "%.0f ns per run (%s, %d runs)" % (ns_run, prog, runs)
    return ("## Who is behind each RST: the cost\n\nhping3 floods SYN|ACKs "
            "at a listener that another process owns, across veth: every "
            "RST is the listener's and names its owner (from the kernel's "
            "record when the listener started under rsttrace, from "
            "/proc/*/fd when it was older), the namespace's name and its "
            "container (none here, looked up all the same). Streamed as "
            "JSON (`--no-stack`) with the who-fields and with `--no-owner`; "
            "median (min..max) over the rounds, CPU of rsttrace after "
            "attaching.\n\n" +
            table(["rsttrace trace --json", "RSTs/s (kernel)",
                   "events/s delivered", "delivered %",
                   "CPU s per 100k events"], rows) +
            "\n\nIn the kernel, the probe that records owners "
            "(sock:inet_sock_set_state, on every TCP state change of the "
            "host, with or without RSTs) costs %s: the program of rsttrace's "
            "that ran most while 3000 connections opened and closed "
            "(BPF_ENABLE_STATS)." % probe)


def attach_section(rows):
    return ("## Time to attached\n\nProcess start to probes attached (the "
            "tool's own ready line); cold = page cache dropped first. "
            "Median (min..max).\n\n" +
            table(["tool", "", "seconds", "error"], rows))


def _short(value, goal, higher=True, unit=""):
    ok = value >= goal if higher else value <= goal
    if ok:
        return "yes"
    return "NO, by %.2f%s" % (abs(value - goal), unit)


def goals(storm, capacity, overhead, attach):
    """[goal, measured, met] for issue 15's targets."""
    out = []
    ours = [r for r in storm if r.get("tracer", "").startswith("rsttrace")]
    peers = {r["tracer"]: r for r in storm
             if r.get("tracer", "").startswith("bpftrace") and
             "error" not in r}
    worst = max(ours, key=lambda r: r["ns_run"] or 0)
    kstack = peers.get("bpftrace @[kstack] = count()")
    measured = "%.0f ns at most (%s, %s); bpftrace kstack %s ns" % (
        worst["ns_run"], worst["rate_label"], worst["tracer"],
        _num(kstack and kstack["ns_run"]))
    met = worst["ns_run"] <= NS_GOAL and (
        kstack is None or worst["ns_run"] < kstack["ns_run"])
    out.append(["kernel cost per RST <= 1.0 us in every mode at every "
                "rate, below bpftrace's kstack", measured, "yes" if met
                else "NO, by %.0f ns" % (worst["ns_run"] - NS_GOAL)])
    by = {}
    for r in ours:
        by.setdefault((r["mode"], r["rate_label"]), {})[r["tracer"]] = r
    diffs = [(k, v["rsttrace streaming"]["ns_run"] -
              v["rsttrace summary-only"]["ns_run"]) for k, v in by.items()
             if len(v) == 2]
    far = max(diffs, key=lambda d: d[1])
    out.append(["no per-event wakeups: streaming costs the kernel what "
                "summary mode does (within 0.3 us) at every rate",
                "streaming - summary at most %+.0f ns (%s %s)" % (
                    far[1], far[0][0], far[0][1]),
                "yes" if far[1] <= 300 else "NO"])
    ratios, _ = capacity
    for name, goal in CAPACITY_GOALS.items():
        med = statistics.median(ratios[name]) if ratios[name] else 0
        out.append(["host RST capacity with %s / without >= %.2f" % (
            name, goal), median_spread(ratios[name], "%.2f"),
            _short(med, goal)])
    for name in ("bpftrace @[kstack] = count()", "bpftrace count()"):
        if ratios.get(name):
            out.append(["(peer) capacity with %s / without" % name,
                        median_spread(ratios[name], "%.2f"), "-"])
    floods = [r for r in ours if r["rate_label"] == "flood" and
              r["tracer"].endswith("streaming")]
    for r in floods:
        # the median over the rounds (with two, their mean), not the round
        # the storm table shows (with two, the one that delivered more)
        cpu = statistics.median(r["cpu_spread"])
        share = statistics.median(r["shares"])
        out.append(["streaming: tracer CPU <= %.0f us per event (%s)" % (
            CPU_GOAL_US, r["mode"]), median_spread(r["cpu_spread"], "%.2f")
            + " us", _short(cpu, CPU_GOAL_US, False, " us")])
        out.append(["streaming: delivered >= 90%% of the flood (%s)"
                    % r["mode"], "%s%% (%d rounds)" % (median_spread(
                        [100 * x for x in r["shares"]], "%.1f"),
                        r["rounds"]),
                    _short(100 * share, 100 * DELIVERED_GOAL,
                           unit=" points")])
    exact = all(r["exact_all"] for r in ours)
    out.append(["every loss counted exactly (delivered + lost = sent) at "
                "every rate", "all rows" if exact else "not all rows",
                "yes" if exact else "NO"])
    out_, base = overhead
    default = next(o for n, o in out_.items() if "default" in n)
    traffic = sum(default["runs"]) - sum(default["rsts"])
    out.append(["default mode runs no BPF per packet of normal traffic",
                "%d runs over %.0f messages (and %d for RSTs elsewhere on "
                "the host; the owner probe %d, on %d rounds' TCP state "
                "changes); rate ratio %s" % (
                    traffic, sum(default["messages"]), sum(default["rsts"]),
                    sum(default["state_runs"]), len(default["state_runs"]),
                    median_spread(default["ratios"])),
                "yes" if traffic == 0 else "NO"])
    summaries = [r for r in ours if r["tracer"].endswith("summary-only")]
    maps = {r["map_bytes"] for r in summaries}
    out.append(["summary mode's memory bounded: its maps' size fixed, "
                "whatever the storm", "%s MB of maps at every rate, RSS %s"
                % ("/".join("%.1f" % (m / 1e6) for m in sorted(maps)),
                   "/".join("%.0f" % (r["rss"] / 1e6) for r in summaries)
                   + " MB"), "yes" if len(maps) == 1 else "NO"])
    times = {(r[0], r[1]): r[2] for r in attach}
    mine = [float(v.split()[0]) for k, v in times.items()
            if k[0] == "rsttrace trace" and v != "-"]
    out.append(["attached within 2 s", "cold %s, warm %s" % (
        times.get(("rsttrace trace", "cold"), "-"),
        times.get(("rsttrace trace", "warm"), "-")),
        "yes" if mine and max(mine) <= 2 else "NO"])
    return out


def goals_section(rows):
    return "## Goals (issue 15)\n\n" + table(["goal", "measured", "met"],
                                             rows)
