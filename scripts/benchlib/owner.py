"""Who is behind each RST (issue 12), the cost: SYN|ACKs flooded at a
listener another process owns, streamed with the who-fields (owner from
the kernel's record or from /proc/*/fd, netns name, container) and with
--no-owner; and the kernel's time per run of the probe that records
owners (sock:inet_sock_set_state, on every TCP state change)."""

import json
import subprocess
import sys
import tempfile
import time

from benchlib.common import (RSTTRACE, BpfStats, Traced, log, median_spread,
                             ns, prog_stats, storm)
from benchlib.storm import delivered_and_lost

PORT = 7777
LISTENER = ("import socket, sys, time; s = socket.socket(); "
            "s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(8); "
            "time.sleep(1e6)")
CHURN = ("import socket, sys\nl = socket.socket()\nl.bind(('127.0.0.1', 0))\n"
         "l.listen(64)\nfor _ in range(int(sys.argv[1])):\n"
         "    c = socket.create_connection(l.getsockname())\n"
         "    a, _ = l.accept()\n    c.close()\n    a.close()\n")
# (row, rsttrace options, the listener starts after rsttrace, owner_source)
CONFIGS = [
    ("listener started under rsttrace (kernel record)", [], True, "socket"),
    ("listener started before (found in /proc/*/fd)", [], False, "fd"),
    ("--no-owner", ["--no-owner"], False, None),
]


def listener(pair, port):
    """A listener in namespace b, owned by a process of its own."""
    return subprocess.Popen(ns(pair, "b", sys.executable, "-c", LISTENER,
                               pair.ipv4["b"], str(port)))


def first_event(text):
    for line in text.splitlines():
        if '"kind":"sent"' in line[:200]:
            return json.loads(line)
    return None


def owner_round(pair, extra, seconds, fresh, source):
    port = PORT + 1 if fresh else PORT
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as f:
        t = Traced([RSTTRACE, "trace", "--netns", pair.names["b"], "--json",
                    "-o", f.name, "--no-stack"] + extra)
        lst = listener(pair, port) if fresh else None
        time.sleep(0.5)
        try:
            sent, rate = storm(pair, ["--flood", "-A"], seconds, port=port)
            cpu, _ = t.stop()
        finally:
            if lst is not None:
                lst.kill()
                lst.wait()
        with open(f.name) as out:   # the file rsttrace put in its place
            text = out.read()
    events, _ = delivered_and_lost(text)
    first = first_event(text)
    if first is not None and first.get("owner_source") != source:
        raise RuntimeError("expected owners from %s, got %r" % (source,
                                                                first))
    return {"rate": rate, "eps": rate * events / max(sent, 1),
            "share": 100.0 * events / max(sent, 1),
            "cpu": cpu / max(events, 1) * 1e5}


def state_change_ns(pair, connections=3000):
    """(ns per run, runs, name) of the program that ran most while
    connections opened and closed (no RSTs): the owner probe, on every
    TCP state change."""
    t = Traced([RSTTRACE, "trace", "--netns", pair.names["b"], "--json",
                "-o", "/dev/null"])
    try:
        with BpfStats():
            before = prog_stats(t.pid)
            subprocess.run(ns(pair, "a", sys.executable, "-c", CHURN,
                              str(connections)), check=True)
            after = prog_stats(t.pid)
        runs, took, prog = max(
            ((c - before.get(k, (0, 0))[0], n - before.get(k, (0, 0))[1], k)
             for k, (c, n) in after.items()), default=(0, 0, None))
        if not runs:
            return None, 0, None
        name = json.loads(subprocess.run(   # (while the program is loaded)
            ["bpftool", "prog", "show", "id", str(prog), "--json"],
            capture_output=True, text=True, check=True).stdout).get("name")
    finally:
        t.stop()
    return took / runs, runs, name


def bench_owner(pair, rounds, seconds):
    """Rows of the storm table, and the owner probe's cost."""
    log("owner: SYN|ACK flood at a listener, %d rounds of %ds" % (rounds,
                                                                 seconds))
    rows = []
    old = listener(pair, PORT)
    time.sleep(0.5)
    try:
        for label, extra, fresh, source in CONFIGS:
            runs = [owner_round(pair, extra, seconds, fresh, source)
                    for _ in range(rounds)]
            rows.append([label] + [median_spread([r[k] for r in runs], fmt)
                                   for k, fmt in (("rate", "%.0f"),
                                                  ("eps", "%.0f"),
                                                  ("share", "%.1f"),
                                                  ("cpu", "%.2f"))])
            log("  %s: %s" % (label, rows[-1][1:]))
        kernel = state_change_ns(pair)
    finally:
        old.kill()
        old.wait()
    return rows, kernel
