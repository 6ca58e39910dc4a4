"""Two tracers at once (two users, or rsttrace next to another bcc tool on
the same tracepoints): each works and sees every RST, the same ones."""

import os
import signal
import subprocess
import sys
import time

import pytest

from schema import check_line

from rsttrace.lab import craft, traffic

pytestmark = pytest.mark.root

RSTTRACE = os.path.join(os.path.dirname(sys.executable), "rsttrace")
ROUNDS = 10     # of each provocation below
BURST = 3000

# Another bcc tool on the same raw tracepoints as rsttrace's tracepoint
# mode: it counts every RST the host sends and receives.
OTHER_TOOL = rb"""
BPF_ARRAY(hits, u64, 2);
RAW_TRACEPOINT_PROBE(tcp_send_reset) {
    int k = 0; u64 *v = hits.lookup(&k); if (v) __sync_fetch_and_add(v, 1);
    return 0;
}
RAW_TRACEPOINT_PROBE(tcp_receive_reset) {
    int k = 1; u64 *v = hits.lookup(&k); if (v) __sync_fetch_and_add(v, 1);
    return 0;
}
"""


@pytest.fixture()
def pair():
    from rsttrace.lab.netns import NamespacePair
    with NamespacePair() as p:
        yield p


def provoke(pair):
    """Every kind of RST the lab makes cheaply; [Provoked]."""
    done = []
    for _ in range(ROUNDS):
        done.append(traffic.closed_port(pair, 4))
        done.append(traffic.closed_port(pair, 6))
        done.append(traffic.linger_zero(pair, 4))
        done.append(traffic.unread_data_close(pair, 6))
    traffic.settle(0.3)
    return done


def start(pair, extra, tmp_path, n):
    err = open(tmp_path / ("err%d" % n), "w+")
    proc = subprocess.Popen(
        [RSTTRACE, "trace", "--json", "--netns", pair.names["a"],
         "--netns", pair.names["b"]] + extra,
        stdout=subprocess.PIPE, stderr=err, text=True)
    proc.err_path = err.name
    return proc


def wait_attached(proc):
    deadline = time.monotonic() + 120
    while "tracing in" not in open(proc.err_path).read():
        assert proc.poll() is None, open(proc.err_path).read()
        assert time.monotonic() < deadline, "did not attach"
        time.sleep(0.1)


def stop(proc):
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, open(proc.err_path).read()
    return [check_line(line) for line in out.splitlines()]


def key(rec):
    return (rec["kind"], rec["netns"], rec["saddr"], rec["sport"],
            rec["daddr"], rec["dport"], rec["seq"], rec["ack"])


@pytest.mark.parametrize("second", [[], ["--packets"]],
                         ids=["both-default", "one-with-packets"])
def test_two_tracers_see_the_same_rsts(pair, tmp_path, second):
    import bcc
    other = bcc.BPF(text=OTHER_TOOL)         # attaches itself on load
    try:
        procs = [start(pair, [], tmp_path, 0),
                 start(pair, second, tmp_path, 1)]
        for p in procs:
            wait_attached(p)
        hits = other[b"hits"]
        before = [hits[hits.Key(i)].value for i in (0, 1)]
        done = provoke(pair)
        after = [hits[hits.Key(i)].value for i in (0, 1)]
        seen = [stop(p) for p in procs]
    finally:
        other.cleanup()
    # each provocation is one RST, seen sent by one side, received by
    # the other
    n = len(done)
    for recs in seen:
        assert not [r for r in recs if r["kind"] == "lost"]
        assert len(recs) == 2 * n, [key(r) for r in recs]
        assert sorted(r["sport"] for r in recs if r["kind"] == "sent") == \
            sorted(p.sport for p in done)
    assert sorted(map(key, seen[0])) == sorted(map(key, seen[1]))
    causes = [sorted((r["kind"], r["cause"]) for r in recs) for recs in seen]
    assert causes[0] == causes[1]
    # the other tool, on the same tracepoints, saw them too (and whatever
    # else this host reset meanwhile)
    assert after[0] - before[0] >= n and after[1] - before[1] >= n


def test_two_tracers_in_a_syn_burst_account_for_every_rst(pair, tmp_path):
    """A burst to a closed port: each tracer delivers or counts as lost
    every RST, and the ones both delivered are the same."""
    procs = [start(pair, ["--summary"], tmp_path, n) for n in (0, 1)]
    for p in procs:
        wait_attached(p)
    craft.syn_burst(pair, "a", "b", traffic.free_port(pair, "b", 4), BURST)
    traffic.settle(0.5)
    seen = [stop(p) for p in procs]
    delivered = []
    for recs in seen:
        summary = recs[-1]
        events = [r for r in recs if r["kind"] == "sent"]
        assert summary["kind"] == "summary"
        assert summary["kernel_events"] == BURST
        assert len(events) + summary["lost"] == BURST
        delivered.append({key(r) for r in events})
        assert len(delivered[-1]) == len(events)      # each RST once
    if not any(recs[-1]["lost"] for recs in seen):    # (the usual case)
        assert delivered[0] == delivered[1]
