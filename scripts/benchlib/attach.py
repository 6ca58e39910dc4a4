"""Time to attached: process start to probes attached (the tool's own
ready line), cold (page cache dropped first) and warm, next to bcc's
tcpdrop and tcpstates and a bpftrace one-liner."""

import signal
import subprocess
import time

from benchlib.common import BPFTRACE_COUNT, RSTTRACE, Traced, log, \
    median_spread

ATTACHERS = [
    ("rsttrace trace", [RSTTRACE, "trace"], ("stderr", "rsttrace: tracing")),
    ("rsttrace trace --summary-only", [RSTTRACE, "trace", "--summary-only"],
     ("stderr", "rsttrace: counting")),
    ("bcc tcpdrop", ["/usr/sbin/tcpdrop-bpfcc"], ("stdout", "TIME")),
    ("bcc tcpstates", ["/usr/sbin/tcpstates-bpfcc"], ("stdout", "SKADDR")),
    ("bpftrace one-liner", ["bpftrace", "-e", BPFTRACE_COUNT],
     ("stdout", "attached")),
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
        if ready[0] == "stdout":
            t0 = time.monotonic()
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            seen = []
            while time.monotonic() < t0 + 60:
                line = proc.stdout.readline()
                if not line:
                    proc.wait()
                    last = [s.strip() for s in seen if s.strip()][-1:]
                    return None, "exits with %s" % (last[0][:150] if last
                                                    else proc.returncode)
                seen.append(line)
                if ready[1] in line:
                    dt = time.monotonic() - t0
                    proc.send_signal(signal.SIGINT)
                    proc.wait(timeout=120)
                    return dt, None
            proc.kill()
            return None, "no attach line in 60 s"
        t = Traced(argv, ready)
        t.stop()
        return t.attach_s, None
    except Exception as e:  # a peer that cannot run here is reported
        return None, str(e).strip().splitlines()[-1][:160]


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
