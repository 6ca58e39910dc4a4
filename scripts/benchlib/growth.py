"""Growth: rsttrace's cost per event and memory against the number of
distinct kernel stacks, flows and network namespaces in a stream of
events. User space is measured on made-up events (the decoder and the
JSON writer, as a flood drives them; each point in a process of its own,
for its memory); the kernel's netns filter on a real flood."""

import json
import os
import subprocess
import sys

from benchlib.common import (HERE, RSTTRACE, BpfStats, Traced, log,
                             prog_stats, runs_between, storm)

POINTS = {"stacks": (1, 1000, 16384, 65536, 200000),
          "flows": (1, 1000, 65536, 200000),
          "namespaces": (1, 1000, 200000)}
def point(kind, n, events):
    """µs per event and the process's peak memory for `events` events that
    cycle through `n` distinct stacks, flows or namespaces."""
    from benchlib import synthetic
    raws = synthetic.raw_events(n, **{
        "stacks": {"stacks": n}, "flows": {"peers": n},
        "namespaces": {"namespaces": n}}[kind])
    raws = (raws * (events // n + 1))[:events]
    us = synthetic.stream_cost(synthetic.decoder(), raws)
    # VmHWM: this process's own peak (ru_maxrss would carry the bench's
    # across exec)
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) * 1024 for line in f
                    if line.startswith("VmHWM:"))
    print(json.dumps({"us": us, "peak": peak}))


def bench_user(points=POINTS, events=200000):
    out = {}
    for kind, ns in points.items():
        for n in ns:
            res = subprocess.run(
                [sys.executable, "-c", "import sys; sys.path[:0] = %r; "
                 "from benchlib.growth import point; point(%r, %d, %d)" % (
                     [os.path.dirname(os.path.dirname(__file__)), HERE],
                     kind, n, max(events, 2 * n))],
                capture_output=True, text=True)
            if res.returncode:
                raise RuntimeError(res.stderr[-500:])
            out[kind, n] = json.loads(res.stdout)
            log("  growth %s %d: %.2f us/event, %.0f MB" % (
                kind, n, out[kind, n]["us"], out[kind, n]["peak"] / 1e6))
    return out


def bench_netns_filter(pair, seconds, sizes=(1, 200)):
    """Kernel ns per run with a --netns filter of 1 and of many namespaces
    (a hash lookup: flat)."""
    out = {}
    extra = ["rsttrace-bench-%d-%d" % (os.getpid(), i)
             for i in range(max(sizes) - 1)]
    try:
        for name in extra:
            subprocess.run(["ip", "netns", "add", name], check=True)
        with BpfStats():
            for size in sizes:
                args = ["--netns", pair.names["b"]]
                for name in extra[:size - 1]:
                    args += ["--netns", name]
                t = Traced([RSTTRACE, "trace", "--summary-only", *args])
                before = prog_stats(t.pid)
                storm(pair, ["--flood"], seconds)
                out[size] = runs_between(before, prog_stats(t.pid))[1]
                t.stop()
                log("  netns filter of %d: %.0f ns/run" % (size, out[size]
                                                            or 0))
    finally:
        for name in extra:
            subprocess.run(["ip", "netns", "delete", name],
                           stderr=subprocess.DEVNULL)
    return out
