"""Decoder.record: the raw event of bpf/rsttrace.h to the JSON record, with
fakes for the stack table and kallsyms."""

import datetime
import ipaddress

import pytest

from rsttrace import abi
from rsttrace.abi import (EV_LINGER, EV_LISTENER, EV_PACKET, EV_SEQ, EV_SOCK,
                          EV_TCP_SOCK, tcp_flags)
from rsttrace.kernel.reasons import ReasonNames
from rsttrace.trace.decode import FIELDS, Decoder
from rsttrace.trace.stacks import base_name, context_of
from test_abi import rst_event_members

EVENT_FIELDS = [name for name, _, _ in rst_event_members()]


def v4(a):
    return b"\0" * 10 + b"\xff\xff" + bytes(int(x) for x in a.split("."))


def v6(a):
    return ipaddress.IPv6Address(a).packed


def raw(**kw):
    """A raw event with exactly the fields of struct rst_event."""
    base = dict(
        ts_ns=1_000_000_000, skaddr=0xffff888001234000, lingertime=0,
        pid=1234, tid=1235, netns=4026531840, stack_key=0, reason=-1,
        seq=1000, ack=2000, rcv_nxt=3000, snd_nxt=4000, rcv_unread=0,
        snd_unsent=0, snd_unacked=0, backlog=0, backlog_max=0, seg_len=0,
        linger2=0,
        sport=80, dport=40000, saddr=v4("10.0.0.1"), daddr=v4("10.0.0.2"),
        family=4, kind=abi.KIND_SENT, hook=1, state=1, flags=EV_SOCK,
        seg_flags=0, facts=0, comm=b"curl".ljust(16, b"\0"),
        owner_pid=0, sock_ino=0, owner_comm=b"\0" * 16)
    unknown = set(kw) - set(base)
    assert not unknown, unknown
    base.update(kw)
    assert set(base) == set(EVENT_FIELDS)
    return abi.RawEvent(**base)


def test_time_text_matches_datetime():
    dec = Decoder(REASONS, 250)
    for ts in (0, 999, 1_000_000_000, 1_999_999_999, 5 * 10 ** 17 + 123456789):
        for off in (0, 1_796_000_000_000_000_000):
            dec.offset_ns = off
            want = datetime.datetime.fromtimestamp(
                (ts + off) // 1000 / 1e6, datetime.timezone.utc).isoformat(
                timespec="microseconds")
            assert dec.time(ts) == want


REASONS = ReasonNames({0: "NOT_SPECIFIED", 1: "NO_SOCKET",
                       11: "TCP_ABORT_ON_CLOSE"})

SOFTIRQ_STACK = {
    0x10: "bpf_prog_6deef7357e7b4530_rst_tp",
    0x11: "bpf_trace_run3",
    0x12: "__bpf_trace_tcp_send_reset",
    0x13: "tcp_v4_send_reset",
    0x14: "tcp_v4_rcv",
    0x15: "ip_protocol_deliver_rcu",
    0x16: "__netif_receive_skb_one_core",
    0x17: "process_backlog",
    0x18: "net_rx_action",
    0x19: "handle_softirqs",
    0x1a: "do_softirq.part.0",
}
PROCESS_STACK = {
    0x20: "bpf_prog_1234_kprobe",
    0x21: "kprobe_ftrace_handler",
    0x22: "tcp_send_active_reset",
    0x23: "__tcp_close",
    0x24: "tcp_close",
    0x25: "__x64_sys_close",
    0x26: "do_syscall_64",
    0x27: "entry_SYSCALL_64_after_hwframe",
}
STACKS = {7: list(SOFTIRQ_STACK), 8: list(PROCESS_STACK),
          # shares frames with stack 7
          9: [0x13, 0x14, 0x18]}
SYMS = {**SOFTIRQ_STACK, **PROCESS_STACK}


class Kallsyms:
    def __init__(self):
        self.calls = []
        self.lookups = []

    def stack(self, stack_key):
        self.lookups.append(stack_key)
        return list(STACKS[stack_key])

    def ksym(self, addr):
        self.calls.append(addr)
        return SYMS[addr]


@pytest.fixture()
def ks():
    return Kallsyms()


@pytest.fixture()
def dec(ks):
    return Decoder(REASONS, 250, ks.stack, ks.ksym)


# -- shape ---------------------------------------------------------------------

def test_fake_event_matches_header():
    assert "comm" in EVENT_FIELDS and "seg_flags" in EVENT_FIELDS
    assert len(EVENT_FIELDS) == len(set(EVENT_FIELDS))


def test_every_field_in_order(dec):
    rec = dec.record(raw(stack_key=7, flags=0xff))
    assert tuple(rec) == FIELDS
    assert list(rec)[-1] == "stack"
    rec = dec.record(raw(family=0, flags=0))
    assert tuple(rec) == FIELDS


def test_basic_record(dec):
    rec = dec.record(raw(stack_key=0))
    assert rec["ts_ns"] == 1_000_000_000
    assert rec["kind"] == "sent"
    assert rec["hook"] == "tcp_v4_send_reset"
    assert rec["family"] == 4
    assert (rec["saddr"], rec["sport"]) == ("10.0.0.1", 80)
    assert (rec["daddr"], rec["dport"]) == ("10.0.0.2", 40000)
    assert rec["state"] == "ESTABLISHED"
    assert rec["reason"] is None
    assert rec["netns"] == 4026531840
    assert rec["pid"] == 1234
    assert rec["comm"] == "curl"
    assert rec["cause"] is None and rec["explanation"] is None
    assert rec["stack"] == [] and rec["context"] is None


def test_hook_and_kind_names(dec):
    rec = dec.record(raw(hook=7, kind=abi.KIND_RECEIVED))
    assert (rec["kind"], rec["hook"]) == ("received", "tcp:tcp_receive_reset")
    rec = dec.record(raw(hook=5, kind=abi.KIND_CHALLENGE_ACK))
    assert (rec["kind"], rec["hook"]) == ("challenge_ack",
                                          "tcp_send_challenge_ack")
    rec = dec.record(raw(hook=99, kind=42))
    assert (rec["kind"], rec["hook"]) == ("unknown", "hook_99")


# -- addresses -----------------------------------------------------------------

def test_v4_mapped_shown_as_ipv4(dec):
    rec = dec.record(raw(family=4, saddr=v4("192.168.1.10"),
                         daddr=v4("8.8.8.8")))
    assert rec["saddr"] == "192.168.1.10" and rec["daddr"] == "8.8.8.8"


def test_ipv6(dec):
    rec = dec.record(raw(family=6, saddr=v6("2001:db8::1"),
                         daddr=v6("fe80::2")))
    assert rec["family"] == 6
    assert rec["saddr"] == "2001:db8::1" and rec["daddr"] == "fe80::2"


def test_v4_mapped_with_family_6_stays_v6(dec):
    # (the BPF program reports v4-mapped peers as family 4; if it says 6,
    # the address is printed as IPv6, spelled as this Python spells it)
    rec = dec.record(raw(family=6, saddr=v4("10.0.0.1")))
    assert ":" in rec["saddr"]
    assert ipaddress.ip_address(rec["saddr"]) == ipaddress.IPv6Address(
        "::ffff:10.0.0.1")


def test_no_family_no_endpoints(dec):
    rec = dec.record(raw(family=0))
    assert rec["family"] is None
    assert rec["saddr"] is rec["daddr"] is None
    assert rec["sport"] is rec["dport"] is None


# -- flags gating ----------------------------------------------------------------

def test_no_tcp_sock_no_queue_fields(dec):
    rec = dec.record(raw(flags=EV_SOCK, rcv_unread=5, snd_unsent=6,
                         snd_unacked=7))
    assert rec["rcv_unread"] is rec["snd_unsent"] is rec["snd_unacked"] \
        is None
    rec = dec.record(raw(flags=EV_SOCK | EV_TCP_SOCK, rcv_unread=5,
                         snd_unsent=6, snd_unacked=7))
    assert (rec["rcv_unread"], rec["snd_unsent"], rec["snd_unacked"]) == \
        (5, 6, 7)
    # zero is a value, not "absent"
    rec = dec.record(raw(flags=EV_SOCK | EV_TCP_SOCK))
    assert rec["rcv_unread"] == 0


def test_listener_backlog(dec):
    rec = dec.record(raw(flags=EV_SOCK, backlog=3, backlog_max=4))
    assert rec["backlog"] is None and rec["backlog_max"] is None
    rec = dec.record(raw(flags=EV_SOCK | EV_LISTENER, state=10, backlog=5,
                         backlog_max=4))
    assert (rec["backlog"], rec["backlog_max"]) == (5, 4)
    assert rec["state"] == "LISTEN"


def test_linger(dec):
    assert dec.record(raw(flags=EV_SOCK, lingertime=500))["linger"] is None
    rec = dec.record(raw(flags=EV_SOCK | EV_LINGER, lingertime=0))
    assert rec["linger"] == 0 and isinstance(rec["linger"], int)
    rec = dec.record(raw(flags=EV_SOCK | EV_LINGER, lingertime=500))
    assert rec["linger"] == 2 and isinstance(rec["linger"], int)
    rec = dec.record(raw(flags=EV_SOCK | EV_LINGER, lingertime=125))
    assert rec["linger"] == 0.5


def test_linger2_in_seconds_for_full_sockets_only(dec):
    assert dec.record(raw(flags=EV_SOCK, linger2=-1))["linger2"] is None
    rec = dec.record(raw(flags=EV_SOCK | EV_TCP_SOCK, linger2=-1))
    assert rec["linger2"] == -1
    rec = dec.record(raw(flags=EV_SOCK | EV_TCP_SOCK, linger2=0))
    assert rec["linger2"] == 0
    rec = dec.record(raw(flags=EV_SOCK | EV_TCP_SOCK, linger2=2500))
    assert rec["linger2"] == 10


def test_linger_at_other_hz(ks):
    d = Decoder(REASONS, 1000, ks.stack, ks.ksym)
    assert d.record(raw(flags=EV_LINGER, lingertime=500))["linger"] == 0.5
    d = Decoder(REASONS, 0, ks.stack, ks.ksym)      # HZ unknown
    assert d.record(raw(flags=EV_LINGER, lingertime=500))["linger"] is None


def test_seq_ack_only_when_valid(dec):
    rec = dec.record(raw(flags=EV_SOCK))
    assert rec["seq"] is None and rec["ack"] is None
    rec = dec.record(raw(flags=EV_SEQ, seq=0, ack=77))
    assert (rec["seq"], rec["ack"]) == (0, 77)


def test_packet_fields(dec):
    rec = dec.record(raw(flags=EV_SOCK, seg_flags=0x14, seg_len=10))
    assert rec["seg_flags"] is None and rec["seg_len"] is None
    rec = dec.record(raw(flags=EV_PACKET, seg_flags=0x14, seg_len=0))
    assert (rec["seg_flags"], rec["seg_len"]) == ("RST|ACK", 0)


def test_state(dec):
    assert dec.record(raw(flags=0, state=1))["state"] is None
    assert dec.record(raw(flags=EV_SOCK, state=0))["state"] is None
    assert dec.record(raw(flags=EV_SOCK, state=7))["state"] == "CLOSE"
    assert dec.record(raw(flags=EV_SOCK, state=12))["state"] == \
        "NEW_SYN_RECV"
    assert dec.record(raw(flags=EV_SOCK, state=99))["state"] == "STATE_99"


def test_reason_names(dec):
    assert dec.record(raw(reason=-1))["reason"] is None
    assert dec.record(raw(reason=0))["reason"] == "NOT_SPECIFIED"
    assert dec.record(raw(reason=11))["reason"] == "TCP_ABORT_ON_CLOSE"
    assert dec.record(raw(reason=30))["reason"] == "REASON_30"


def test_netns_zero_is_unknown(dec):
    assert dec.record(raw(netns=0))["netns"] is None


def test_comm(dec):
    assert dec.record(raw(comm=b"nc\0garbage\0\0\0\0\0\0"))["comm"] == "nc"
    assert dec.record(raw(comm=b"x" * 15 + b"\0"))["comm"] == "x" * 15
    assert dec.record(raw(comm=b"\xff\xfeab".ljust(16, b"\0")))["comm"] == \
        "\ufffd\ufffdab"


def test_time(dec):
    dec.offset_ns = 1_700_000_000 * 10**9 - 1_000_000_000
    rec = dec.record(raw(ts_ns=1_000_000_000 + 123_456_000))
    assert rec["time"] == "2023-11-14T22:13:20.123456+00:00"
    dec.offset_ns = 0
    assert dec.time(0) == "1970-01-01T00:00:00.000000+00:00"


# -- stacks -------------------------------------------------------------------------

def test_tracing_frames_dropped(dec):
    rec = dec.record(raw(stack_key=7))
    assert rec["stack"] == [
        "tcp_v4_send_reset", "tcp_v4_rcv", "ip_protocol_deliver_rcu",
        "__netif_receive_skb_one_core", "process_backlog", "net_rx_action",
        "handle_softirqs", "do_softirq.part.0"]
    rec = dec.record(raw(stack_key=8))
    assert rec["stack"][0] == "tcp_send_active_reset"
    assert not any(f.startswith(("bpf_", "kprobe_")) for f in rec["stack"])


def test_context(dec):
    assert dec.record(raw(stack_key=7))["context"] == "softirq"
    assert dec.record(raw(stack_key=8))["context"] == "process"
    assert dec.record(raw(stack_key=0))["context"] is None


def test_context_of():
    assert context_of(["tcp_v4_send_reset", "net_rx_action"]) == "softirq"
    assert context_of(["tcp_reset", "handle_softirqs"]) == "softirq"
    assert context_of(["tcp_reset", "__do_softirq.cold"]) == "softirq"
    assert context_of(["tcp_close", "__x64_sys_close"]) == "process"
    assert context_of([]) is None
    assert context_of(None) is None


def test_no_stack_table(ks):
    d = Decoder(REASONS, 250)
    rec = d.record(raw(stack_key=7))
    assert rec["stack"] == [] and rec["context"] is None


def test_symbols_resolved_once(dec, ks):
    r1 = dec.record(raw(stack_key=7))
    n = len(ks.calls)
    assert n == len(SOFTIRQ_STACK)
    r2 = dec.record(raw(stack_key=7))
    assert len(ks.calls) == n                    # no new ksym calls
    assert ks.lookups == [7]                     # stack walked once
    assert r2["stack"] is r1["stack"]            # JsonWriter relies on it
    assert r2["context"] == "softirq"
    # another stack sharing addresses resolves only the new ones (none)
    r3 = dec.record(raw(stack_key=9))
    assert len(ks.calls) == n
    assert r3["stack"] == ["tcp_v4_send_reset", "tcp_v4_rcv",
                           "net_rx_action"]
    assert sorted(ks.calls) == sorted(SOFTIRQ_STACK)


# -- helpers --------------------------------------------------------------------------

def test_tcp_flags():
    assert tcp_flags(0) == "none"
    assert tcp_flags(0x04) == "RST"
    assert tcp_flags(0x14) == "RST|ACK"
    assert tcp_flags(0x12) == "SYN|ACK"
    assert tcp_flags(0x11) == "FIN|ACK"
    assert tcp_flags(0xff) == "SYN|FIN|RST|PSH|ACK|URG|ECE|CWR"


def test_base_name():
    assert base_name("tcp_send_challenge_ack.constprop.0") == \
        "tcp_send_challenge_ack"
    assert base_name("tcp_v4_send_reset.isra.0") == "tcp_v4_send_reset"
    assert base_name("tcp_reset") == "tcp_reset"


def test_fentry_trampoline_frame_is_dropped():
    """Seen on 6.1 in fentry mode: the trampoline's address was named
    after a freed module init symbol, before the hooked function."""
    from rsttrace.trace.decode import Decoder
    from rsttrace.kernel.reasons import ReasonNames
    names = {1: "mptcp_diag_init", 2: "tcp_reset", 3: "tcp_rcv_state_process"}
    dec = Decoder(ReasonNames({}), 250, stack_lookup=lambda sid: [1, 2, 3],
                  ksym=names.get)
    assert dec.frames(7, "tcp_reset") == ["tcp_reset",
                                         "tcp_rcv_state_process"]
    dec = Decoder(ReasonNames({}), 250, stack_lookup=lambda sid: [1, 2, 3],
                  ksym=names.get)
    assert dec.frames(7, "tcp:tcp_receive_reset")[0] == "mptcp_diag_init"


def test_a_stack_gone_from_the_table_is_counted_not_kept(ks):
    """The kernel's LRU stack table may drop a stack before it is read:
    that event has no frames, it is counted, and the stack is looked up
    again next time instead of staying empty."""
    table = {}
    d = Decoder(REASONS, 250, lambda key: table.get(key), ks.ksym)
    rec = d.record(raw(stack_key=7))
    assert rec["stack"] == [] and rec["context"] is None
    assert d.missing_stacks == 1
    table[7] = list(STACKS[7])
    rec = d.record(raw(stack_key=7))
    assert rec["stack"] and rec["context"] == "softirq"
    assert d.missing_stacks == 1


def test_wall_offset_is_read_between_two_wall_clock_reads(monkeypatch):
    """The monotonic -> wall offset comes from the tightest bracket of
    wall-clock reads around a monotonic read: one read preempted for 5 ms
    does not put every record 5 ms off tcpdump's clock."""
    import time
    from rsttrace.trace import decode
    wall = iter([1000_000, 6000_000,        # a 5 ms gap: preempted
                 7000_000, 7002_000] + [9000_000, 9050_000] * 14)
    mono = iter([100_000, 6500_000] + [8000_000] * 14)
    monkeypatch.setattr(time, "time_ns", lambda: next(wall))
    monkeypatch.setattr(time, "monotonic_ns", lambda: next(mono))
    # the second try: (7000000 + 7002000) / 2 - 6500000, to the microsecond
    assert decode.monotonic_to_wall_offset() == 501_000
