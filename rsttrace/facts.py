"""The facts of one RST that its cause is decided on: the classifier's only
input (rsttrace.attribution), the key its decisions are cached by, and what
summary mode counts by in the kernel.

The kernel computes the yes/no facts once per event (facts_of() in
bpf/rsttrace.bpf.c, FACT_* bits); Facts.of_bits() turns them, with the
hook, state, reason, packet flags and stack, into this value. A record read
back from a saved capture has no bits: Facts.of_record() derives the same
bits from the record's fields (bits_of_record, the kernel's rule restated
for saved data; tests/integration/test_trace_events.py holds it to what the
kernel computed for real events).
"""

import collections
import functools

from rsttrace import abi
from rsttrace.trace.stacks import own_frames


# The states in which tcp_rcv_state_process() aborts a socket itself when
# data arrives after the application shut down reading (RCV_SHUTDOWN):
# FIN_WAIT1/2, and CLOSE_WAIT/CLOSING/LAST_ACK for data overlapping the
# peer's FIN (net/ipv4/tcp_input.c, "step 7", 5.10 to 7.x).
ABORT_ON_DATA_STATES = frozenset(("FIN_WAIT1", "FIN_WAIT2", "CLOSE_WAIT",
                                  "CLOSING", "LAST_ACK"))


def own_abort(state, seg_flags, frames):
    """Whether a tcp_reset() hook (tcp:tcp_receive_reset, kprobe/fentry on
    tcp_reset) fired for the kernel aborting its own socket rather than for
    an RST that arrived.

    tcp_reset() is how the kernel takes in an RST, and of the kernel's own
    aborts the only one that goes through it is tcp_rcv_state_process()'s
    on data after close (TCPAbortOnData; the RST it answers with is a `sent`
    event right after; the others, tcp_done() and tcp_write_err(), pass no
    hook). With the segment in hand (kprobe/fentry, 5.11+) that is a
    segment without RST. Without it (tcp:tcp_receive_reset, 5.10 kprobes)
    the caller tells: the abort calls tcp_reset() from
    tcp_rcv_state_process() itself, while an RST that arrives reaches it
    through tcp_validate_incoming() (every state that can abort on data;
    never inlined there on 5.10 to 7.x), tcp_rcv_synsent_state_process()
    (inlined, but SYN_SENT never aborts on data) or tcp_check_req(). The
    send hook's event cannot tell: it comes after, from the same softirq.
    Without packet and stack nothing tells, and the event stays received."""
    if seg_flags is not None:
        return "RST" not in seg_flags
    return state in ABORT_ON_DATA_STATES and \
        tuple(frames[:2]) == ("tcp_reset", "tcp_rcv_state_process")


class Facts(collections.namedtuple("Facts", (
        "kind",         # "sent", "received", "challenge_ack", "abort" (the
        #                 kernel's own abort seen by a receive hook: own_abort)
        "hook",         # the hook that fired (rsttrace.trace.hooks names)
        "state",        # TCP state name, None: no socket
        "reason",       # enum sk_rst_reason name, None: none
        "seg_flags",    # frozenset of TCP flag names of the packet handled,
        #                 None: no packet
        "seg_data",     # that packet carried payload
        "seq_zero",     # the RST's seq is 0 or unknown
        "linger_zero",  # SO_LINGER on with time 0
        "unread",       # unread bytes in the receive queue
        "queue_full",   # a listener's accept queue above its limit
        "linger2_neg",  # TCP_LINGER2 < 0; None: unknown (not a full TCP
        #                 socket, or a capture from before rsttrace read it)
        "ack_nxt",      # a reply RST to a segment acknowledging exactly
        #                 the socket's snd_nxt
        "frames",       # the RST's own kernel path (stacks.own_frames)
))):
    """What attribution reads of one event, nothing else."""

    __slots__ = ()

    @classmethod
    def of_bits(cls, kind, hook, state, reason, flag_set, bits, own):
        """From the kernel's FACT_* bits (rst_event.facts, agg_key.facts);
        `flag_set`: the names of the packet's TCP flags (ignored when
        FACT_PACKET is not set); `own`: stacks.own_frames of the stack."""
        seg_flags = flag_set if bits & abi.FACT_PACKET else None
        if kind == "received" and own_abort(state, seg_flags, own):
            kind = "abort"
        return cls(kind, hook, state, reason, seg_flags, *_bit_facts(bits),
                   own)

    @classmethod
    def of_record(cls, rec):
        """From an event record (rsttrace.trace.decode.FIELDS), e.g. one read
        back from a `trace --json` capture."""
        flags = rec.get("seg_flags") or ""
        return cls.of_bits(rec["kind"], rec.get("hook") or "",
                           rec.get("state"), rec.get("reason"),
                           frozenset(flags.split("|")) - {"none", ""},
                           bits_of_record(rec), own_frames(rec.get("stack")))


@functools.lru_cache(maxsize=256)
def _bit_facts(bits):
    """seg_data ... linger2_neg of Facts, from FACT_* bits."""
    return (bool(bits & abi.FACT_SEG_DATA), bool(bits & abi.FACT_SEQ_ZERO),
            bool(bits & abi.FACT_LINGER_ZERO), bool(bits & abi.FACT_UNREAD),
            bool(bits & abi.FACT_QUEUE_FULL),
            bool(bits & abi.FACT_LINGER2_NEG)
            if bits & abi.FACT_TCP_SOCK else None,
            bool(bits & abi.FACT_ACK_NXT))


def bits_of_record(rec):
    """The FACT_* bits facts_of() (bpf/rsttrace.bpf.c) computes for the
    event behind a record: the same rule, from the record's fields."""
    bits = 0
    flags = rec.get("seg_flags") or ""
    if rec.get("seg_flags") is not None:
        bits |= abi.FACT_PACKET
        if rec.get("seg_len"):
            bits |= abi.FACT_SEG_DATA
    if not rec.get("seq"):
        bits |= abi.FACT_SEQ_ZERO
    if rec.get("linger") == 0:
        bits |= abi.FACT_LINGER_ZERO
    if rec.get("rcv_unread"):
        bits |= abi.FACT_UNREAD
    if rec.get("linger2") is not None:      # a full TCP socket
        bits |= abi.FACT_TCP_SOCK
        if rec["linger2"] < 0:
            bits |= abi.FACT_LINGER2_NEG
    if rec.get("backlog") is not None and \
            rec["backlog"] > (rec.get("backlog_max") or 0):
        bits |= abi.FACT_QUEUE_FULL
    if rec["kind"] == "sent" and "ACK" in flags.split("|") and \
            rec.get("snd_nxt") is not None and rec.get("seq") == rec["snd_nxt"]:
        bits |= abi.FACT_ACK_NXT
    return bits
