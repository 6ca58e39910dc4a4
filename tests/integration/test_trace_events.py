"""Real RSTs between two network namespaces, observed through the real BPF
program: each test provokes one RST and checks the events both sides'
kernels reported for it."""


import os

import pytest

from bpfcheck import require_bpf
from rsttrace.facts import bits_of_record
from rsttrace.kernel import history
from rsttrace.lab import craft, traffic
from rsttrace.trace.decode import FIELDS
from rsttrace.trace.stacks import base_name
from rsttrace.trace.filters import Filters

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def traced():
    """(pair, session, records): one tracer for the module, filtered to the
    pair's two namespaces so host traffic cannot leak in."""
    require_bpf()
    from rsttrace.lab.netns import NamespacePair
    from rsttrace.trace.session import Session
    from rsttrace.trace.tracer import Tracer

    records = []
    with NamespacePair() as pair:
        tracer = Tracer(filters=Filters(netns=pair.inodes()))
        session = Session(tracer, on_record=records.append)
        session.start()
        # what the kernel decided as facts (rst_event.facts), by record
        record_of = session.decoder.record
        session.kernel_bits = {}

        def record_and_keep(ev):
            record = record_of(ev)
            session.kernel_bits[id(record)] = ev.facts
            return record
        session.decoder.record = record_and_keep
        try:
            yield pair, session, records
        finally:
            session.finish()


def provoke_and_collect(traced, fn, family):
    pair, session, records = traced
    start = len(records)
    p = fn(pair, family)
    traffic.settle()
    session.drain()
    mine = [r for r in records[start:]
            if {(r["saddr"], r["sport"]), (r["daddr"], r["dport"])} ==
            {(p.saddr, p.sport), (p.daddr, p.dport)}]
    sent = [r for r in mine if r["kind"] == "sent"]
    received = [r for r in mine if r["kind"] == "received"]
    return pair, p, sent, received


def frames(record):
    return [base_name(f) for f in record["stack"]]


def reason_since_6_10(name):
    """The reason an RST of this kernel must carry: `name` from 6.10 on,
    none before (decided by the release, not by rsttrace's own reason
    discovery, which is what is under test)."""
    return name if history.since(os.uname().release, history.RST_REASON) \
        else None


def check_direction(record, p):
    """Addresses and ports in the RST's own direction."""
    assert (record["saddr"], record["sport"]) == (p.saddr, p.sport)
    assert (record["daddr"], record["dport"]) == (p.daddr, p.dport)


@pytest.mark.parametrize("family", [4, 6])
def test_closed_port(traced, family):
    pair, p, sent, received = provoke_and_collect(
        traced, traffic.closed_port, family)
    assert p.error == "Connection refused"
    assert len(sent) == 1 and len(received) == 1, (sent, received)
    s, r = sent[0], received[0]

    send_fn = "tcp_v4_send_reset" if family == 4 else "tcp_v6_send_reset"
    rcv_fn = "tcp_v4_rcv" if family == 4 else "tcp_v6_rcv"
    assert s["hook"] in ("tcp:tcp_send_reset", send_fn)
    assert frames(s)[:2] == [send_fn, rcv_fn]
    assert s["state"] is None            # no socket at all
    assert s["family"] == family
    check_direction(s, p)
    assert s["netns"] == pair.inode("b")
    assert s["seg_flags"] == "SYN" and s["seg_len"] == 0
    # A reply to a SYN carries seq 0 and acks the SYN (RFC 793 reset
    # generation, tcp_v4_send_reset()).
    assert s["seq"] == 0 and s["ack"] > 0
    assert s["context"] == "softirq"
    assert s["rcv_unread"] is None and s["backlog"] is None
    assert s["reason"] == reason_since_6_10("NO_SOCKET")

    assert r["hook"] in ("tcp:tcp_receive_reset", "tcp_reset")
    assert frames(r)[0] == "tcp_reset"
    assert r["state"] == "SYN_SENT"
    assert r["family"] == family
    check_direction(r, p)
    assert r["netns"] == pair.inode("a")
    assert r["reason"] is None
    assert (s["cause"], r["cause"]) == ("no-listener", "reset-received")


def test_no_reply_to_an_rst(traced):
    """An RST that finds no socket is not answered (tcp_v4_send_reset
    returns early): a probe on the function's entry must not report it as
    sent."""
    pair, session, records = traced
    start = len(records)
    port = traffic.free_port(pair, "b", 4)
    craft.send_segment(pair, "a", "b", 40002, port, seq=1000, ack=0,
                       flags=craft.RST)
    traffic.settle(0.2)
    session.drain()
    assert [r for r in records[start:] if r["kind"] == "sent"] == []


def test_linger_zero(traced):
    pair, p, sent, received = provoke_and_collect(
        traced, traffic.linger_zero, 4)
    assert p.error == "Connection reset by peer"
    assert len(sent) == 1 and len(received) == 1, (sent, received)
    s, r = sent[0], received[0]
    assert s["hook"] in ("tcp:tcp_send_reset", "tcp_send_active_reset")
    f = frames(s)
    assert f[0] == "tcp_send_active_reset"
    assert "tcp_disconnect" in f and "tcp_close" in f
    assert s["state"] == "CLOSE"
    assert s["linger"] == 0
    assert s["netns"] == pair.inode("a")
    assert s["context"] == "process"
    assert s["seg_flags"] is None        # no packet caused it
    check_direction(s, p)

    assert r["state"] == "ESTABLISHED"
    assert r["netns"] == pair.inode("b")
    check_direction(r, p)
    assert (s["cause"], r["cause"]) == ("linger-zero-close", "reset-received")


@pytest.mark.parametrize("family", [4, 6])
def test_unread_data_close(traced, family):
    pair, p, sent, received = provoke_and_collect(
        traced, traffic.unread_data_close, family)
    assert len(sent) == 1 and len(received) == 1, (sent, received)
    s, r = sent[0], received[0]
    f = frames(s)
    assert f[0] == "tcp_send_active_reset"
    assert "__tcp_close" in f and "tcp_disconnect" not in f
    assert s["rcv_unread"] == 1000       # the bytes it never read
    assert s["linger"] is None
    assert s["family"] == family
    assert s["netns"] == pair.inode("a")
    check_direction(s, p)
    assert s["reason"] == reason_since_6_10("TCP_ABORT_ON_CLOSE")
    assert r["state"] == "ESTABLISHED"
    assert r["netns"] == pair.inode("b")
    assert (s["cause"], r["cause"]) == ("unread-data-close", "reset-received")


def test_records_have_every_field(traced):
    _, _, sent, received = provoke_and_collect(traced, traffic.closed_port, 4)
    assert len(sent) == 1 and len(received) == 1
    for rec in sent + received:
        assert tuple(rec) == FIELDS
        assert rec["cause"] in ("no-listener", "reset-received")
        assert rec["explanation"].endswith(".")
        assert rec["time"].endswith("+00:00")
        assert rec["comm"]


def test_no_loss_counted(traced):
    _, session, records = traced
    provoke_and_collect(traced, traffic.closed_port, 4)
    matched, lost = session.tracer.counts()
    assert lost == 0
    assert matched == len(records) >= 2


def test_listener_fields(traced):
    """An ACK that reaches a listener with no matching request: the listener
    answers with an RST (tcp_v4_rcv -> tcp_v4_do_rcv -> ... send_reset) and
    rsttrace reports the listener's backlog. Made with a raw socket that
    sends a lone ACK to a listening port."""
    pair, session, records = traced
    lst = pair.socket("b")
    lst.bind((pair.ipv4["b"], 0))
    lst.listen(7)
    port = lst.getsockname()[1]
    start = len(records)
    craft.send_segment(pair, "a", "b", 40000, port, seq=1000, ack=2000,
                       flags=craft.ACK)
    traffic.settle()
    session.drain()
    mine = [r for r in records[start:] if r["sport"] == port]
    assert len(mine) == 1, records[start:]
    s = mine[0]
    assert s["kind"] == "sent"
    assert s["state"] == "LISTEN"
    assert s["backlog"] == 0 and s["backlog_max"] == 7
    assert s["seg_flags"] == "ACK"
    assert s["seq"] == 2000              # RST seq = the ACK's ack number
    assert (s["saddr"], s["daddr"], s["dport"]) == (
        pair.ipv4["b"], pair.ipv4["a"], 40000)
    assert s["cause"] == "no-connection"
    lst.close()


def test_facts_of_saved_records_are_the_kernels(traced):
    """The facts the kernel computed for each event (facts_of() in the BPF
    program) are what Facts.of_record derives from its saved record, for
    every event this module saw: a capture is attributed offline as it was
    live, and summary mode counts by the same facts."""
    pair, session, records = traced
    for fn in (traffic.closed_port, traffic.linger_zero,
               traffic.unread_data_close):
        provoke_and_collect(traced, fn, 4)
    assert len(records) >= 6
    for r in records:
        assert bits_of_record(r) == session.kernel_bits[id(r)], r
