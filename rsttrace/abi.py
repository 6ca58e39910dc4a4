"""What rsttrace's BPF program and its Python side share: the constants and
struct layouts of bpf/rsttrace.h, mirrored here once and nowhere else.

tests/unit/test_abi.py reads the header and holds every name below to it,
so a change to one side that forgets the other fails there.
"""

import collections
import ctypes
import struct

AF_INET = 2
AF_INET6 = 10

# include/net/tcp_states.h, stable (exported to user space by inet_diag)
TCPS_ESTABLISHED = 1
TCPS_SYN_SENT = 2
TCPS_SYN_RECV = 3
TCPS_FIN_WAIT1 = 4
TCPS_TIME_WAIT = 6
TCPS_LAST_ACK = 9
TCPS_LISTEN = 10
TCPS_NEW_SYN_RECV = 12
TCP_STATES = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1",
    5: "FIN_WAIT2", 6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT",
    9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV",
    13: "BOUND_INACTIVE",
}

# TCP header flag bits (byte 13 of the header)
TCPF_FIN = 0x01
TCPF_SYN = 0x02
TCPF_RST = 0x04
TCPF_PSH = 0x08
TCPF_ACK = 0x10
TCPF_URG = 0x20
TCPF_ECE = 0x40
TCPF_CWR = 0x80
TCP_FLAG_NAMES = ((TCPF_SYN, "SYN"), (TCPF_FIN, "FIN"), (TCPF_RST, "RST"),
                  (TCPF_PSH, "PSH"), (TCPF_ACK, "ACK"), (TCPF_URG, "URG"),
                  (TCPF_ECE, "ECE"), (TCPF_CWR, "CWR"))


def tcp_flag_set(bits):
    """The names of the flags set in a TCP header's flag byte."""
    return frozenset(n for b, n in TCP_FLAG_NAMES if bits & b)


def tcp_flags(bits):
    """The same as text, e.g. "SYN|ACK" ("none" for none)."""
    return "|".join(n for b, n in TCP_FLAG_NAMES if bits & b) or "none"

KIND_SENT = 1
KIND_RECEIVED = 2
KIND_CHALLENGE_ACK = 3
KIND_NAMES = {KIND_SENT: "sent", KIND_RECEIVED: "received",
              KIND_CHALLENGE_ACK: "challenge_ack"}

HOOK_ID_TCP_V4_SEND_RESET = 1
HOOK_ID_TCP_V6_SEND_RESET = 2
HOOK_ID_TCP_SEND_ACTIVE_RESET = 3
HOOK_ID_TCP_RESET = 4
HOOK_ID_TCP_SEND_CHALLENGE_ACK = 5
HOOK_ID_TP_TCP_SEND_RESET = 6
HOOK_ID_TP_TCP_RECEIVE_RESET = 7
HOOK_ID_NF_SEND_RESET = 8
HOOK_ID_NF_SEND_RESET6 = 9
HOOK_ID_TP_NET_DEV_QUEUE = 10
HOOK_ID_INET_TWSK_DESCHEDULE_PUT = 11
HOOK_ID_TP_KFREE_SKB = 12

# rst_event.flags: which fields are valid
EV_SOCK = 0x01
EV_TCP_SOCK = 0x02
EV_LISTENER = 0x04
EV_LINGER = 0x08
EV_PACKET = 0x10
EV_SEQ = 0x20
EV_OWNER = 0x40

# rst_event.facts and agg_key.facts: what attribution decides on, computed
# once in the kernel (facts_of() in bpf/rsttrace.bpf.c; rsttrace/facts.py)
FACT_PACKET = 0x01
FACT_SEG_DATA = 0x02
FACT_SEQ_ZERO = 0x04
FACT_LINGER_ZERO = 0x08
FACT_UNREAD = 0x10
FACT_QUEUE_FULL = 0x20
FACT_LINGER2_NEG = 0x40
FACT_TCP_SOCK = 0x80
FACT_ACK_NXT = 0x100

FILTER_MAX = 256

COUNT_MATCHED = 0
COUNT_LOST = 1
COUNT_STACK_WALKS = 2
COUNT_MEMO_HITS = 3
COUNT_MEMO_WRONG = 4
COUNT_SLOTS = 5

STACK_DEPTH = 32

# struct rst_event, member by member. Events are read with one
# struct.unpack (native alignment, as the C compiler lays it out) instead
# of ctypes attribute access, which costs more per event than the rest of
# the decoding.
RAW_FIELDS = (
    ("ts_ns", "Q"), ("skaddr", "Q"), ("lingertime", "Q"),
    ("stack_key", "Q"), ("pid", "I"), ("tid", "I"), ("netns", "I"),
    ("reason", "i"),
    ("seq", "I"), ("ack", "I"), ("rcv_nxt", "I"), ("snd_nxt", "I"),
    ("rcv_unread", "I"), ("snd_unsent", "I"), ("snd_unacked", "I"),
    ("backlog", "I"), ("backlog_max", "I"), ("seg_len", "I"),
    ("linger2", "i"), ("sport", "H"), ("dport", "H"), ("saddr", "16s"),
    ("daddr", "16s"), ("family", "B"), ("kind", "B"), ("hook", "B"),
    ("state", "B"), ("flags", "B"), ("seg_flags", "B"), ("facts", "H"),
    ("comm", "16s"), ("owner_pid", "I"), ("sock_ino", "I"),
    ("owner_comm", "16s"))
RAW_STRUCT = struct.Struct("@" + "".join(f for _, f in RAW_FIELDS))
RawEvent = collections.namedtuple("RawEvent", [n for n, _ in RAW_FIELDS])
# sizeof(struct rst_event): the members plus the tail padding to its
# alignment (8, for the u64 members)
RAW_SIZE = -(-RAW_STRUCT.size // 8) * 8


# The raw event at an offset of a buffer (the ring buffer's memory), as
# the reader hands it on: a plain tuple in RAW_FIELDS order, read by index
# (AT[name]); a RawEvent of it costs more per event than reading it.
unpack_from = RAW_STRUCT.unpack_from
AT = {name: i for i, (name, _) in enumerate(RAW_FIELDS)}


def unpack(data, size):
    """The RawEvent at address `data` (a ring or perf buffer record)."""
    if size < RAW_SIZE:
        raise ValueError("event of %d bytes, struct rst_event has %d"
                         % (size, RAW_SIZE))
    return RawEvent._make(RAW_STRUCT.unpack(ctypes.string_at(
        data, RAW_STRUCT.size)))


# struct agg_key, summary mode's map key (bcc builds the ctypes class
# from the program; these are its members, for the test and for readers).
AGG_KEY_FIELDS = (("stack_key", "Q"), ("reason", "i"), ("kind", "B"),
                  ("hook", "B"), ("state", "B"), ("family", "B"),
                  ("seg_flags", "B"), ("pad0", "B"), ("facts", "H"),
                  ("local_port", "H"), ("pad1", "H"), ("netns", "I"),
                  ("pad", "4s"))
