"""Facts, the classifier's one input: built from the kernel's FACT_* bits
(event stream and summary mode) or from a saved record, they must decide
the same cause. Summary mode's path (trace.kernel_summary.key_facts, from a
struct agg_key) is replayed here on every recorded event."""

import collections

import pytest

from rsttrace import abi
from rsttrace.attribution import attribute, attribute_record
from rsttrace.facts import Facts, bits_of_record
from rsttrace.kernel.reasons import ReasonNames
from rsttrace.trace.decode import Decoder
from rsttrace.trace.hooks import HOOK_NAMES
from rsttrace.trace.kernel_summary import key_facts
from test_attribution import recorded

AggKey = collections.namedtuple("AggKey", [n for n, _ in abi.AGG_KEY_FIELDS])
EVENTS = [p.values[0] for p in recorded()]
REASONS = sorted({e["reason"] for e in EVENTS if e.get("reason")})
FRAMES = sorted({f for e in EVENTS for f in e.get("stack") or ()})


def inverse(table):
    return {v: k for k, v in table.items()}


def flag_byte(text):
    names = set((text or "").split("|"))
    return sum(b for b, n in abi.TCP_FLAG_NAMES if n in names)


class Kernel:
    """The stack table and kallsyms of a fake kernel holding every
    recorded stack: an address is a frame's index in FRAMES, plus one."""

    def __init__(self):
        self.stacks = {}

    def key_of(self, stack):
        if not stack:
            return 0
        key = len(self.stacks) + 1
        self.stacks[key] = [FRAMES.index(f) + 1 for f in stack]
        return key

    def ksym(self, addr):
        return FRAMES[addr - 1]


def agg_key(rec, kernel):
    """The struct agg_key summary mode counts `rec`'s event under."""
    return AggKey(
        stack_key=kernel.key_of(rec.get("stack")),
        reason=REASONS.index(rec["reason"]) if rec.get("reason") else -1,
        # an abort is what a receive hook reported (facts.own_abort)
        kind=inverse(abi.KIND_NAMES)[rec["kind"] if rec["kind"] != "abort"
                                     else "received"],
        hook=inverse(HOOK_NAMES)[rec["hook"]],
        state=inverse(abi.TCP_STATES)[rec["state"]] if rec.get("state")
        else 0,
        family=rec.get("family") or 0, seg_flags=flag_byte(rec["seg_flags"]),
        pad0=0, facts=bits_of_record(rec), local_port=0, pad1=0, netns=0,
        pad=b"")


@pytest.fixture(scope="module")
def summary_mode():
    kernel = Kernel()
    dec = Decoder(ReasonNames(dict(enumerate(REASONS))), 250,
                  kernel.stacks.get, kernel.ksym, attribute=attribute)
    return kernel, dec


def test_there_are_recordings_to_replay():
    assert len(EVENTS) > 200 and len(REASONS) > 3 and len(FRAMES) > 50


@pytest.mark.parametrize("event", recorded())
def test_summary_mode_decides_as_the_event_stream(event, summary_mode):
    kernel, dec = summary_mode
    facts, frames, family = key_facts(agg_key(event, kernel), dec)
    assert facts == Facts.of_record(event)
    assert attribute(facts) == attribute_record(event)
    assert attribute(facts)[0] == event["cause"]
    assert frames == event["stack"] and family == event["family"]


BASE = {"kind": "sent", "hook": "tcp_v4_send_reset", "state": "ESTABLISHED",
        "reason": None, "seg_flags": None, "seg_len": None, "seq": 5,
        "linger": None, "linger2": None, "rcv_unread": None, "backlog": None,
        "backlog_max": None, "stack": ["tcp_v4_send_reset", "tcp_v4_rcv",
                                       "__netif_receive_skb", "x"]}


@pytest.mark.parametrize("fields,bits", [
    ({}, 0),
    ({"seg_flags": "ACK", "seg_len": 0}, abi.FACT_PACKET),
    ({"seg_flags": "none", "seg_len": 3},
     abi.FACT_PACKET | abi.FACT_SEG_DATA),
    ({"seq": 0}, abi.FACT_SEQ_ZERO),
    ({"seq": None}, abi.FACT_SEQ_ZERO),
    ({"linger": 0}, abi.FACT_LINGER_ZERO),
    ({"linger": 5}, 0),
    ({"rcv_unread": 7, "linger2": 0}, abi.FACT_UNREAD | abi.FACT_TCP_SOCK),
    ({"rcv_unread": 0, "linger2": -1},
     abi.FACT_TCP_SOCK | abi.FACT_LINGER2_NEG),
    ({"backlog": 3, "backlog_max": 2}, abi.FACT_QUEUE_FULL),
    ({"backlog": 2, "backlog_max": 2}, 0),
    # a reply to a segment acknowledging exactly snd_nxt (its ACK is the
    # RST's seq)
    ({"seg_flags": "SYN|ACK", "seg_len": 0, "seq": 9, "snd_nxt": 9,
      "linger2": 0},
     abi.FACT_PACKET | abi.FACT_TCP_SOCK | abi.FACT_ACK_NXT),
    ({"seg_flags": "SYN|ACK", "seg_len": 0, "seq": 8, "snd_nxt": 9,
      "linger2": 0}, abi.FACT_PACKET | abi.FACT_TCP_SOCK),
    ({"seg_flags": "SYN", "seg_len": 0, "seq": 9, "snd_nxt": 9,
      "linger2": 0}, abi.FACT_PACKET | abi.FACT_TCP_SOCK),
    ({"kind": "received", "seg_flags": "RST|ACK", "seg_len": 0, "seq": 9,
      "snd_nxt": 9, "linger2": 0}, abi.FACT_PACKET | abi.FACT_TCP_SOCK),
])
def test_bits_of_record(fields, bits):
    assert bits_of_record(dict(BASE, **fields)) == bits


def test_facts_of_bits():
    f = Facts.of_bits("sent", "h", "LISTEN", "R", frozenset({"SYN"}),
                      abi.FACT_PACKET | abi.FACT_QUEUE_FULL, ("a", "b"))
    assert f.seg_flags == {"SYN"} and f.queue_full and not f.unread
    assert f.linger2_neg is None and f.frames == ("a", "b")
    # no packet: the flag names are not facts
    f = Facts.of_bits("sent", "h", None, None, frozenset({"SYN"}),
                      abi.FACT_TCP_SOCK, ())
    assert f.seg_flags is None and f.linger2_neg is False


def test_own_frames_stop_at_the_softirq_boundary():
    f = Facts.of_record(BASE)
    assert f.frames == ("tcp_v4_send_reset", "tcp_v4_rcv")


def test_facts_are_the_whole_input():
    """Two records that differ only in fields Facts leave out (addresses,
    ports, pid, time, netns...) get the same facts and cause."""
    a = dict(BASE, seg_flags="SYN", seg_len=0, state=None)
    b = dict(a, saddr="10.0.0.1", sport=1, daddr="10.0.0.2", dport=2,
             pid=77, comm="x", netns=5, time="t", ts_ns=9, ack=3)
    assert Facts.of_record(a) == Facts.of_record(b)
    assert attribute_record(a) == attribute_record(b)
    assert attribute_record(a)[0] == "no-listener"


class CountingTracer:
    """What KernelSummary reads of a summary-mode tracer: take_counts()
    hands out each interval's counts once, as the kernel's swapped maps
    do."""

    def __init__(self, intervals):
        self.intervals = list(intervals)

    def take_counts(self):
        return self.intervals.pop(0) if self.intervals else []

    def counts(self):
        return 0, 0


def test_harvests_add_up_and_carry_the_opt_in_keys(summary_mode):
    from rsttrace.trace.kernel_summary import KernelSummary
    kernel, dec = summary_mode
    event = next(e for e in EVENTS if e["cause"] == "no-listener")
    key = agg_key(event, kernel)._replace(netns=4026532000, local_port=80)
    ks = KernelSummary(CountingTracer([[(key, 3)], [(key, 4)]]), dec)
    first = ks.harvest()
    assert [(r["cause"], r["netns"], r["local_port"], n)
            for r, n in first] == [("no-listener", 4026532000, 80, 3)]
    assert ks.summary().by("cause") == {"no-listener": 7}
    assert ks.harvest() == [] and ks.summary().events == 7
