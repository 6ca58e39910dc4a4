"""Real RSTs between two network namespaces, observed through the real BPF
program: each test provokes one RST and checks the events both sides'
kernels reported for it. Every test runs in each attach mode the kernel
offers (--mode forced; which ones is decided by tests/kernel_modes.py from
facts it checks itself), and once more through the perf buffer."""


import os

import pytest

import kernel_modes
import provoke
from bpfcheck import require_bpf
from kernel_modes import reason_since_6_10, sees_socketless
from rsttrace import abi
from rsttrace.facts import bits_of_record
from rsttrace.lab import craft, traffic
from rsttrace.trace.decode import FIELDS
from rsttrace.trace.stacks import base_name, emitter
from rsttrace.trace.filters import Filters

pytestmark = pytest.mark.root

RST_FUNCTIONS = ("tcp_v4_send_reset", "tcp_v6_send_reset",
                 "tcp_send_active_reset", "tcp_reset",
                 "tcp_send_challenge_ack")
def hook_name(mode, fn):
    """The `hook` of an event whose RST function is `fn` in `mode`."""
    if mode == "tracepoint":
        return ("tcp:tcp_receive_reset" if fn == "tcp_reset" else
                "tcp:tcp_send_reset")
    return fn


def modes():
    """Each mode the kernel offers, or must offer (RSTTRACE_TEST_MODES),
    with the ring buffer; the last of them with the perf buffer too."""
    names = sorted(set(kernel_modes.offered()) | set(kernel_modes.required()),
                   key=kernel_modes.MODES.index) or ["tracepoint"]
    return [pytest.param((m, "ring"), id=m) for m in names] + [
        pytest.param((names[-1], "perf"), id=names[-1] + "-perf")]


def must_attach(mode):
    """The hooks `mode` must attach on this kernel: the tracepoints; or
    each RST function kallsyms has (for fentry, under its own name: a
    compiler clone cannot be reached through a trampoline)."""
    if mode == "tracepoint":
        return {"tcp:tcp_send_reset", "tcp:tcp_receive_reset"}
    with open("/proc/kallsyms") as f:
        syms = {line.split()[2] for line in f if line.split()[1] in "tT"}
    return {fn for fn in RST_FUNCTIONS if fn in syms or (
        mode == "kprobe" and any(s.startswith(fn + ".") and ".cold" not in s
                                 for s in syms))}


class Traced:
    def __init__(self, pair, session, records, mode):
        self.pair, self.session, self.records = pair, session, records
        self.mode = mode


@pytest.fixture(scope="module", params=modes())
def traced(request):
    """One tracer per mode (and buffer) for the module, filtered to the
    pair's two namespaces so host traffic cannot leak in."""
    require_bpf()
    mode, buffer = request.param
    assert mode in kernel_modes.offered(), (
        "this kernel must offer %s mode (%s=%s) but does not: %s"
        % (mode, kernel_modes.REQUIRED_ENV,
           os.environ.get(kernel_modes.REQUIRED_ENV), kernel_modes.__doc__))
    from rsttrace.lab.netns import NamespacePair
    from rsttrace.trace.session import Session
    from rsttrace.trace.tracer import Tracer

    records = []
    with NamespacePair() as pair:
        tracer = Tracer(mode=mode, buffer=buffer,
                        filters=Filters(netns=pair.inodes()))
        session = Session(tracer, on_record=records.append)
        session.start()
        assert tracer.mode == mode and tracer.ringbuf == (buffer == "ring")
        # an attach that fails where the kernel allows it is a failure
        attached = {p.hook.name for p in tracer.attached()}
        assert must_attach(mode) <= attached, (mode, attached)
        # what the kernel decided as facts (rst_event.facts), by record:
        # the session decodes an event, then hands on its record
        event_of, last = session.decoder.event, {}
        session.kernel_bits = {}

        def event_and_keep(ev):
            last["facts"] = ev[abi.AT["facts"]]
            return event_of(ev)

        def record_and_keep(record):
            session.kernel_bits[id(record)] = last.pop("facts")
            records.append(record)
        session.decoder.event = event_and_keep
        session.on_record = record_and_keep
        try:
            yield Traced(pair, session, records, mode)
        finally:
            session.finish()


def test_rsttrace_agrees_on_the_modes():
    """rsttrace's own checks (hooks.check_mode) accept exactly the modes
    tests/kernel_modes.py finds, and refuse the others in one line."""
    require_bpf()
    from rsttrace.errors import RsttraceError
    from rsttrace.trace import hooks
    offered = kernel_modes.offered()
    assert set(kernel_modes.required()) <= set(offered), offered
    assert "tracepoint" in offered
    for mode in kernel_modes.MODES:
        if mode in offered:
            hooks.check_mode(mode)
        else:
            with pytest.raises(RsttraceError) as e:
                hooks.check_mode(mode)
            assert "\n" not in str(e.value)


def collect(traced, start, ends):
    """The events since `start` of the connection between `ends`."""
    traffic.settle()
    traced.session.drain()
    want = set(ends)
    return [r for r in traced.records[start:]
            if {(r["saddr"], r["sport"]), (r["daddr"], r["dport"])} == want]


def provoke_and_collect(traced, fn, family):
    start = len(traced.records)
    p = fn(traced.pair, family)
    mine = collect(traced, start, [(p.saddr, p.sport), (p.daddr, p.dport)])
    sent = [r for r in mine if r["kind"] == "sent"]
    received = [r for r in mine if r["kind"] == "received"]
    return traced.pair, p, sent, received


def frames(record):
    return [base_name(f) for f in record["stack"]]


def check_direction(record, p):
    """Addresses and ports in the RST's own direction."""
    assert (record["saddr"], record["sport"]) == (p.saddr, p.sport)
    assert (record["daddr"], record["dport"]) == (p.daddr, p.dport)


@pytest.mark.parametrize("family", [4, 6])
def test_closed_port(traced, family):
    pair, p, sent, received = provoke_and_collect(
        traced, traffic.closed_port, family)
    assert p.error == "Connection refused"
    # no socket: before 6.10 the tracepoint does not fire (kernel_modes)
    visible = sees_socketless(traced.mode)
    assert len(sent) == visible and len(received) == 1, (sent, received)
    r = received[0]

    send_fn = "tcp_v4_send_reset" if family == 4 else "tcp_v6_send_reset"
    rcv_fn = "tcp_v4_rcv" if family == 4 else "tcp_v6_rcv"
    for s in sent:
        check_closed_port_sent(s, p, pair, traced.mode, family)

    assert r["hook"] == hook_name(traced.mode, "tcp_reset")
    assert frames(r)[0] == "tcp_reset"
    assert r["state"] == "SYN_SENT"
    assert r["family"] == family
    check_direction(r, p)
    assert r["netns"] == pair.inode("a")
    assert r["reason"] is None
    assert r["cause"] == "reset-received"


def check_closed_port_sent(s, p, pair, mode, family):
    send_fn = "tcp_v4_send_reset" if family == 4 else "tcp_v6_send_reset"
    rcv_fn = "tcp_v4_rcv" if family == 4 else "tcp_v6_rcv"
    assert s["hook"] == hook_name(mode, send_fn)
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
    assert s["cause"] == "no-listener"


@pytest.mark.parametrize("family", [4, 6])
def test_no_reply_to_an_rst(traced, family):
    """An RST that finds no socket is not answered (tcp_v4/v6_send_reset
    return early): a probe on the function's entry must not report it as
    sent. A SYN to the same port, after it, is answered and reported (so
    the tracer was watching)."""
    pair, session, records = traced.pair, traced.session, traced.records
    start = len(records)
    port = traffic.free_port(pair, "b", family)
    craft.send_segment(pair, "a", "b", 40002, port, seq=1000, ack=0,
                       flags=craft.RST, family=family)
    craft.send_segment(pair, "a", "b", 40003, port, seq=1000, ack=0,
                       flags=craft.SYN, family=family)
    traffic.settle(0.2)
    session.drain()
    sent = [(r["dport"], r["seg_flags"]) for r in records[start:]
            if r["kind"] == "sent"]
    assert sent == [(40003, "SYN")] * sees_socketless(traced.mode)


@pytest.mark.parametrize("family", [4, 6])
def test_linger_zero(traced, family):
    pair, p, sent, received = provoke_and_collect(
        traced, traffic.linger_zero, family)
    assert p.error == "Connection reset by peer"
    assert len(sent) == 1 and len(received) == 1, (sent, received)
    s, r = sent[0], received[0]
    assert s["hook"] == hook_name(traced.mode, "tcp_send_active_reset")
    assert s["family"] == r["family"] == family
    assert s["reason"] == reason_since_6_10("TCP_STATE")
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
    assert r["hook"] == hook_name(traced.mode, "tcp_reset")
    assert r["netns"] == pair.inode("b")
    check_direction(r, p)
    assert (s["cause"], r["cause"]) == ("linger-zero-close", "reset-received")


@pytest.mark.parametrize("family", [4, 6])
def test_unread_data_close(traced, family):
    pair, p, sent, received = provoke_and_collect(
        traced, traffic.unread_data_close, family)
    assert len(sent) == 1 and len(received) == 1, (sent, received)
    s, r = sent[0], received[0]
    assert s["hook"] == hook_name(traced.mode, "tcp_send_active_reset")
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
    _, _, sent, received = provoke_and_collect(traced, traffic.linger_zero, 4)
    assert len(sent) == 1 and len(received) == 1
    for rec in sent + received:
        assert tuple(rec) == FIELDS
        assert rec["cause"] in ("linger-zero-close", "reset-received")
        assert rec["explanation"].endswith(".")
        assert rec["time"].endswith("+00:00")
        assert rec["comm"]


def test_no_loss_counted(traced):
    """Alone or after the other tests: every event the kernel let through
    (its own count) was delivered, none lost."""
    provoke_and_collect(traced, traffic.linger_zero, 4)
    matched, lost = traced.session.tracer.counts()
    assert lost == 0
    assert matched == len(traced.records) >= 2


@pytest.mark.parametrize("family", [4, 6])
def test_listener_fields(traced, family):
    """An ACK that reaches a listener with no matching request: the listener
    answers with an RST (tcp_v4_rcv -> tcp_v4_do_rcv -> ... send_reset) and
    rsttrace reports the listener's backlog. Made with a raw socket that
    sends a lone ACK to a listening port."""
    pair, session, records = traced.pair, traced.session, traced.records
    fam = traffic.FAMILIES[family]
    lst = pair.socket("b", fam)
    lst.bind((pair.addr("b", fam), 0))
    lst.listen(7)
    port = lst.getsockname()[1]
    start = len(records)
    craft.send_segment(pair, "a", "b", 40000, port, seq=1000, ack=2000,
                       flags=craft.ACK, family=family)
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
        pair.addr("b", fam), pair.addr("a", fam), 40000)
    assert s["hook"] == hook_name(traced.mode, "tcp_v%d_send_reset" % family)
    assert s["cause"] == "no-connection"
    lst.close()


def test_facts_of_saved_records_are_the_kernels(traced):
    """The facts the kernel computed for each event (facts_of() in the BPF
    program) are what Facts.of_record derives from its saved record, for
    every event this module saw: a capture is attributed offline as it was
    live, and summary mode counts by the same facts."""
    session, records = traced.session, traced.records
    for fn in (traffic.closed_port, traffic.linger_zero,
               traffic.unread_data_close):
        provoke_and_collect(traced, fn, 4)
    assert len(records) >= 6
    for r in records:
        assert bits_of_record(r) == session.kernel_bits[id(r)], r


CASES = [pytest.param(family, name, id="%s-ipv%d" % (name, family))
         for family in (4, 6) for name in provoke.cases(family)]


@pytest.mark.parametrize("family, name", CASES)
def test_cause(traced, family, name):
    """Every cause that exists on both families (tests/provoke.py says
    which, and what each must make the kernels report): exactly the events
    wanted, each with its side, kind, cause, state, RST function, hook
    name in this mode and the kernel's reason; an RST sent without a socket
    only where the mode sees those, challenge ACKs only where a function
    hook exists (not in tracepoint mode)."""
    fn, wants = provoke.cases(family)[name]
    start = len(traced.records)
    ends = fn(traced.pair, family)
    traffic.settle(0.1)
    got = collect(traced, start, ends)
    sides = {traced.pair.inode(s): s for s in ("a", "b")}
    left = list(got)
    for want in wants:
        shown = ((want.kind != "challenge_ack" and not want.function_hook)
                 or traced.mode != "tracepoint"
                 ) and (not want.socketless or sees_socketless(traced.mode))
        mine = [r for r in left if (sides[r["netns"]], r["kind"],
                                    r["cause"]) == (want.side, want.kind,
                                                    want.cause)]
        if not want.optional:
            assert len(mine) == shown, (want, got)
        assert len(mine) <= 1, (want, mine)
        for r in mine:
            left.remove(r)
            assert r["family"] == family
            assert r["state"] == want.state, (want, r)
            assert emitter(r["stack"]) == want.emitter, (want, r["stack"])
            assert r["hook"] == (want.function_hook or
                                 hook_name(traced.mode, want.emitter))
            assert r["reason"] == reason_since_6_10(want.reason), (want, r)
    assert left == [], left
