"""Filter cost (`scripts/bench --filters`, bench/FILTERS.md): a flood none
of which passes the filter, under --host, --port and pcap filter
expressions: the rate the kernel reached, what rsttrace delivered, its
CPU, and the BPF programs' own time per run (BPF_ENABLE_STATS)."""

import tempfile

from benchlib.common import (RSTTRACE, BpfStats, Traced, log, median_spread,
                             prog_stats, runs_between, storm, table)
from benchlib.storm import delivered_and_lost

# A storm none of which passes the filter: the kernel's work per RST with
# each kind of filter, and what is left for rsttrace to do (nothing).
CONFIGS = [
    ("no filter (every RST delivered)", []),
    ("--host 192.0.2.1", ["--host", "192.0.2.1"]),
    ("expression 'host 192.0.2.1'", ["host 192.0.2.1"]),
    ("--port 1", ["--port", "1"]),
    ("expression 'port 1'", ["port 1"]),
    ("expression '(tcp[tcpflags] & tcp-syn != 0 or ip6) and net "
     "10.0.0.0/8'", ["(tcp[tcpflags] & tcp-syn != 0 or ip6) and net "
                     "10.0.0.0/8"]),
]
TEXT = (
    "## Filter cost in a storm\n\nhping3 floods a closed port; rsttrace "
    "streams (`--json -o FILE`, `--netns` on the namespace) with no filter, "
    "and with `--port` and pcap filter expressions that drop every RST in "
    "the kernel. `BPF ns per run` is the BPF programs' own time per run "
    "(BPF_ENABLE_STATS; median (min..max) over the rounds): the "
    "expression runs on a header rebuilt from the event, after the "
    "event's fields are read and before the stack walk and the ring "
    "buffer, which a dropped RST never reaches. CPU is rsttrace's user + "
    "system time after attaching. hping3's source port runs through every "
    "port, so a few RSTs of a long flood pass `port 1`; no RST passes the "
    "others.\n\n")
HEADERS = ["filter", "RSTs/s", "sent", "delivered", "rsttrace CPU s",
           "BPF ns per run"]


def filter_round(pair, args, seconds):
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as f:
        t = Traced([RSTTRACE, "trace", "--json", "-o", f.name, "--netns",
                    pair.names["b"], *args])
        before = prog_stats(t.pid)
        sent, rate = storm(pair, ["--flood"], seconds)
        runs, ns_run = runs_between(before, prog_stats(t.pid))
        cpu, _ = t.stop()
        with open(f.name) as out:   # the file rsttrace put in its place
            delivered, _ = delivered_and_lost(out.read())
    return {"rate": rate, "sent": sent, "delivered": delivered, "cpu": cpu,
            "runs": runs, "ns": ns_run}


def bench_filters(pair, rounds, seconds):
    """The flood under each filter; the round with the median ns per run
    stands for the filter. Markdown: the section of bench/FILTERS.md."""
    log("filter cost: flood with filters that drop everything, %d rounds"
        % rounds)
    rows = []
    with BpfStats():
        for name, args in CONFIGS:
            runs = [filter_round(pair, args, seconds) for _ in range(rounds)]
            mid = sorted(runs, key=lambda r: r["ns"] or 0)[len(runs) // 2]
            rows.append([name, "%.0f" % mid["rate"], mid["sent"],
                         mid["delivered"], "%.2f" % mid["cpu"],
                         median_spread([r["ns"] for r in runs], "%.0f")])
            log("  %s: %s" % (name, rows[-1][1:]))
    return TEXT + table(HEADERS, rows)
