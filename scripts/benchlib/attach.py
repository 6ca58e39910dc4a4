"""Time to attached: process start to probes attached (the tool's own
ready line), cold (page cache dropped first) and warm, next to bcc's
tcpdrop and tcpstates and a bpftrace one-liner."""

import subprocess

from benchlib.common import BPFTRACE_COUNT, RSTTRACE, Traced, log, \
    median_spread

ATTACHERS = [
    ("rsttrace trace", [RSTTRACE, "trace"], ("stderr", "rsttrace: tracing")),
    ("rsttrace trace --summary-only", [RSTTRACE, "trace", "--summary-only"],
     ("stderr", "rsttrace: counting")),
    ("bcc tcpdrop", ["/usr/sbin/tcpdrop-bpfcc"], ("stdout", "TIME")),
    ("bcc tcpstates", ["/usr/sbin/tcpstates-bpfcc"], ("stdout", "SKADDR")),
    ("bpftrace one-liner", BPFTRACE_COUNT, ("stdout", "attached")),
]


def drop_caches():
    subprocess.run(["sync"])
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")


def attach_time(argv, ready, cold):
    """(seconds, error)."""
    if cold:
        drop_caches()
    try:
        t = Traced(argv, ready, timeout=60)
    except RuntimeError as e:   # a peer that cannot run here is reported
        text = str(e).strip().splitlines() or ["?"]
        return None, text[-1][:160]
    t.stop()
    return t.attach_s, None


def bench_attach(rounds):
    log("attach: %d rounds cold and warm" % rounds)
    rows = []
    for name, argv, ready in ATTACHERS:
        for cold in (True, False):
            times, errors = [], []
            for _ in range(rounds):
                dt, err = attach_time(argv, ready, cold)
                (errors if dt is None else times).append(
                    err if dt is None else dt)
            rows.append([name, "cold" if cold else "warm",
                         median_spread(times) if times else "-",
                         errors[0] if errors else ""])
    return rows
