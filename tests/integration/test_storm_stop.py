"""Stopping in the middle of a storm: --duration, --count and SIGINT end
`rsttrace trace` promptly while RSTs keep coming faster than it reads
them, and every event the kernel matched is still accounted for
(delivered + lost). See STOP in rsttrace/trace/session.py and the ring
buffer's rare wakeups in bpf/rsttrace.bpf.c."""

import json
import signal
import subprocess
import sys
import time

import pytest

from schema import check_line
from test_cli import Running, events, ns_args

from rsttrace.lab import traffic

pytestmark = pytest.mark.root

# SYNs to a closed port in a tight loop, from inside namespace a, until
# killed: two of these send more RSTs than rsttrace reads.
GENERATOR = r"""
import socket, sys
sys.path[:0] = [%r]
from rsttrace.lab.craft import SYN, tcp_segment
src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
segs = [tcp_segment(src, dst, 20000 + i, port, seq=i, ack=0, flags=SYN)
        for i in range(20000)]
while True:
    for s in segs:
        raw.sendto(s, (dst, 0))
"""


class Storm:
    def __init__(self, pair, procs=2):
        import rsttrace
        code = GENERATOR % (rsttrace.__path__[0].rsplit("/", 1)[0],)
        port = traffic.free_port(pair, "b", 4)
        self.procs = [subprocess.Popen(
            ["ip", "netns", "exec", pair.names["a"], sys.executable, "-c",
             code, pair.ipv4["a"], pair.ipv4["b"], str(port)])
            for _ in range(procs)]

    def stop(self):
        for p in self.procs:
            p.kill()
            p.wait()


@pytest.fixture()
def pair():
    from rsttrace.lab.netns import NamespacePair
    with NamespacePair() as p:
        yield p


@pytest.fixture()
def storm(pair):
    s = Storm(pair)
    time.sleep(0.5)
    yield s
    s.stop()


def jsonl(text):
    """The records of a storm's output: every line JSON, the first and the
    last ones checked against the schema too (all of them would take
    minutes)."""
    lines = text.splitlines()
    return [check_line(l) if i < 50 or i >= len(lines) - 10 else
            json.loads(l) for i, l in enumerate(lines)]


def accounted(out):
    recs = jsonl(out)
    summary = recs[-1]
    assert summary["kind"] == "summary"
    lost = sum(r["count"] for r in recs if r["kind"] == "lost")
    assert summary["lost"] == lost
    assert summary["events"] == len(events(recs))
    return summary


def test_duration_ends_a_storm_on_time(pair, storm):
    run = Running("--json", "--summary", "--duration", "2", *ns_args(pair))
    t0 = time.monotonic()       # attached
    rc, out, err = run.wait()
    took = time.monotonic() - t0
    assert rc == 0, err
    summary = accounted(out)
    assert summary["events"] > 1000                 # it was a storm
    assert summary["events"] + summary["lost"] == summary["kernel_events"]
    assert took < 2 + 5         # the last drain, and exit


def test_count_ends_a_storm_at_the_count(pair, storm):
    run = Running("--json", "--count", "300", *ns_args(pair))
    t0 = time.monotonic()
    rc, out, err = run.wait()
    assert rc == 0, err
    assert len(events(jsonl(out))) == 300
    assert time.monotonic() - t0 < 10


def test_sigint_ends_a_storm(pair, storm):
    run = Running("--json", "--summary", *ns_args(pair))
    time.sleep(1.5)
    t0 = time.monotonic()
    run.proc.send_signal(signal.SIGINT)
    out, err = run.proc.communicate(timeout=30)
    assert run.proc.returncode == 0, err
    assert time.monotonic() - t0 < 10
    summary = accounted(out)
    assert summary["events"] > 1000
    assert summary["events"] + summary["lost"] == summary["kernel_events"]
