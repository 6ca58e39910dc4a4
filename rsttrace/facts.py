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

from rsttrace import abi
from rsttrace.trace.stacks import own_frames


class Facts(collections.namedtuple("Facts", (
        "kind",         # "sent", "received", "challenge_ack"
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
        "frames",       # the RST's own kernel path (stacks.own_frames)
))):
    """What attribution reads of one event, nothing else."""

    __slots__ = ()

    @classmethod
    def of_bits(cls, kind, hook, state, reason, flag_set, bits, own):
        """From the kernel's FACT_* bits (rst_event.facts, agg_key.facts);
        `flag_set`: the names of the packet's TCP flags (ignored when
        FACT_PACKET is not set); `own`: stacks.own_frames of the stack."""
        return cls(kind, hook, state, reason,
                   flag_set if bits & abi.FACT_PACKET else None,
                   *_bit_facts(bits), own)

    @classmethod
    def of_record(cls, rec):
        """From an event record (rsttrace.trace.decode.FIELDS), e.g. one read
        back from a `trace --json` capture."""
        flags = rec.get("seg_flags") or ""
        return cls.of_bits(rec["kind"], rec.get("hook") or "",
                           rec.get("state"), rec.get("reason"),
                           frozenset(flags.split("|")) - {"none", ""},
                           bits_of_record(rec), own_frames(rec.get("stack")))


def _bit_facts(bits):
    """seg_data ... linger2_neg of Facts, from FACT_* bits."""
    return (bool(bits & abi.FACT_SEG_DATA), bool(bits & abi.FACT_SEQ_ZERO),
            bool(bits & abi.FACT_LINGER_ZERO), bool(bits & abi.FACT_UNREAD),
            bool(bits & abi.FACT_QUEUE_FULL),
            bool(bits & abi.FACT_LINGER2_NEG)
            if bits & abi.FACT_TCP_SOCK else None)


def bits_of_record(rec):
    """The FACT_* bits facts_of() (bpf/rsttrace.bpf.c) computes for the
    event behind a record: the same rule, from the record's fields."""
    bits = 0
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
    return bits
