"""No silent loss: with a buffer too small for a burst, every event is
either delivered or counted as lost, and the two add up to what the kernel
sent (nstat OutRsts in the namespace)."""

import os
import signal
import subprocess
import sys

import pytest

from schema import check_line

from rsttrace.lab import craft

from rsttrace.lab import traffic

pytestmark = pytest.mark.root

RSTTRACE = os.path.join(os.path.dirname(sys.executable), "rsttrace")
BURST = 3000


def out_rsts(pair, side):
    out = pair.run(side, "nstat", "-az", "TcpOutRsts")
    return int(out.split("TcpOutRsts")[1].split()[0])


@pytest.fixture()
def pair():
    from rsttrace.lab.netns import NamespacePair
    with NamespacePair() as p:
        yield p


@pytest.mark.parametrize("buffer", ["ring", "perf"])
def test_small_buffer_counts_every_loss(pair, buffer):
    """Through either event buffer (the perf buffer forced where the
    kernel has a ring buffer: it is what kernels before 5.8 use). After
    the burst, one more RST: the perf buffer reports its losses only
    when it next has room for a record (PERF_RECORD_LOST), and those
    events were already counted lost in the kernel; they must not count
    twice."""
    import bcc.table
    from rsttrace.trace.filters import Filters
    from rsttrace.trace.session import Session
    from rsttrace.trace.tracer import Tracer

    delivered = []
    session = Session(Tracer(filters=Filters(netns=pair.inodes()),
                             buffer_pages=1, buffer=buffer),
                      on_record=delivered.append).start()
    kind = {"ring": bcc.table.RingBuf, "perf": bcc.table.PerfEventArray}
    assert type(session.tracer.bpf[b"events"]) is kind[buffer]
    try:
        before = out_rsts(pair, "b")
        port = traffic.free_port(pair, "b", 4)
        craft.syn_burst(pair, "a", "b", port, BURST)   # nobody reads
        traffic.settle(0.2)
        session.drain()
        after = traffic.closed_port(pair, 4)           # b sends, a receives
        traffic.settle(0.2)
        sent = out_rsts(pair, "b") - before
        session.drain()
        matched, lost = session.tracer.counts()
    finally:
        session.finish()
    assert sent == BURST + 1
    assert lost > 0                       # the buffer was too small
    assert matched == sent + 1            # and a's receipt of the last one
    assert len(delivered) + lost == matched
    assert all(r["cause"] == "no-listener" for r in delivered[:-2])
    # the last two found room: the buffer was read in between
    assert [(r["kind"], r["sport"]) for r in delivered[-2:]] == [
        ("sent", after.sport), ("received", after.sport)]


def test_cli_reports_loss(pair):
    proc = subprocess.Popen(
        [RSTTRACE, "trace", "--json", "--summary", "--buffer-pages", "1",
         "--netns", pair.names["b"]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "tracing in" in proc.stderr.readline()
    port = traffic.free_port(pair, "b", 4)
    before = out_rsts(pair, "b")
    craft.syn_burst(pair, "a", "b", port, BURST)
    traffic.settle(0.5)
    sent = out_rsts(pair, "b") - before
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    recs = [check_line(line) for line in out.splitlines()]
    events = [r for r in recs if r["kind"] == "sent"]
    lost = sum(r["count"] for r in recs if r["kind"] == "lost")
    summary = recs[-1]
    assert summary["kind"] == "summary"
    assert summary["lost"] == lost
    assert summary["kernel_events"] == sent == BURST
    assert lost > 0                       # one page cannot hold the burst
    assert len(events) + lost == sent
    assert "rsttrace: lost" in err


def test_summary_only_counts_a_burst_in_the_kernel(pair):
    """--summary-only: no event stream, every RST counted in the kernel,
    attributed per distinct key."""
    proc = subprocess.Popen(
        [RSTTRACE, "trace", "--summary-only", "--json", "--buffer-pages", "1",
         "--netns", pair.names["a"], "--netns", pair.names["b"]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "counting in the kernel" in proc.stderr.readline()
    port = traffic.free_port(pair, "b", 4)
    before = out_rsts(pair, "b")
    craft.syn_burst(pair, "a", "b", port, BURST)
    traffic.linger_zero(pair, 4)
    traffic.settle(0.3)
    sent_b = out_rsts(pair, "b") - before
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    (summary,) = [check_line(line) for line in out.splitlines()]
    assert summary["lost"] == 0
    assert summary["events"] == summary["kernel_events"] == sent_b + 2
    rows = {(r["cause"], r["kind"]): r["count"] for r in summary["rows"]}
    assert rows[("no-listener", "sent")] == BURST
    assert rows[("linger-zero-close", "sent")] == 1
    assert rows[("reset-received", "received")] == 1


def test_summary_map_full_counts_the_rest(pair):
    """Summary mode with a map of 2 keys (AGG_ENTRIES made tiny): the RSTs
    of keys that no longer fit are counted lost in the kernel and said so,
    never dropped silently; the keys already in the map keep counting."""
    from rsttrace.trace.filters import Filters
    from rsttrace.trace.kernel_summary import KernelSummary
    from rsttrace.trace.session import Session
    from rsttrace.trace.tracer import Tracer

    warnings = []
    session = Session(Tracer(filters=Filters(netns=pair.inodes()),
                             summary_only=True, agg_entries=2),
                      warn=warnings.append).start()
    counted = KernelSummary(session.tracer, session.decoder)
    try:
        # no harvest in between: a harvest swaps the kernel's count maps
        # (take_counts), which would give the next keys an empty map
        traffic.closed_port(pair, 4)      # 2 keys: b's sent, a's received
        traffic.settle()
        traffic.linger_zero(pair, 4)      # 2 new keys: no room
        port = traffic.free_port(pair, "b", 4)
        craft.syn_burst(pair, "a", "b", port, 50)   # b's first key again
        traffic.settle(0.3)
        session.drain()
        live = session.tracer.bpf[session.tracer._agg_live]
        keys = len(live)
        last = counted.summary()
    finally:
        session.finish()
    assert keys == 2
    assert last.kernel_events == 2 + 2 + 50
    assert last.events + last.lost == last.kernel_events
    assert last.lost >= 2                 # linger-zero's two, at least
    by_cause = last.by("cause")
    assert "linger-zero-close" not in by_cause
    assert by_cause["reset-received"] == 1
    assert by_cause["no-listener"] + last.lost == 1 + 2 + 50
    assert warnings == ["lost %d events (summary map full: %d keys), %d "
                        "in all" % (last.lost, 2, last.lost)], warnings
