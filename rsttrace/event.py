"""Turn the BPF program's raw event into rsttrace's event record (a dict).

The record is what `--json` prints, one per line; see FIELDS for its keys.
"""

import collections
import ctypes
import datetime
import ipaddress
import struct
import time

from .hooks import HOOK_NAMES, KIND_NAMES

# include/net/tcp_states.h; stable (exported to user space by inet_diag).
TCP_STATES = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1",
    5: "FIN_WAIT2", 6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT",
    9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV",
    13: "BOUND_INACTIVE",
}

# bpf/rsttrace.h
EV_SOCK = 0x01
EV_TCP_SOCK = 0x02
EV_LISTENER = 0x04
EV_LINGER = 0x08
EV_PACKET = 0x10
EV_SEQ = 0x20

# struct rst_event of bpf/rsttrace.h, member by member. Events are read
# with one struct.unpack (native alignment, as the C compiler lays it out)
# instead of ctypes attribute access, which costs more per event than the
# rest of the decoding; tests/unit/test_event.py holds this to the header.
RAW_FIELDS = (
    ("ts_ns", "Q"), ("skaddr", "Q"), ("lingertime", "Q"),
    ("stack_key", "Q"), ("pid", "I"), ("tid", "I"), ("netns", "I"),
    ("reason", "i"),
    ("seq", "I"), ("ack", "I"), ("rcv_nxt", "I"), ("snd_nxt", "I"),
    ("rcv_unread", "I"), ("snd_unsent", "I"), ("snd_unacked", "I"),
    ("backlog", "I"), ("backlog_max", "I"), ("seg_len", "I"),
    ("linger2", "i"), ("sport", "H"), ("dport", "H"), ("saddr", "16s"),
    ("daddr", "16s"), ("family", "B"), ("kind", "B"), ("hook", "B"),
    ("state", "B"), ("flags", "B"), ("seg_flags", "B"), ("pad", "2s"),
    ("comm", "16s"))
RAW_STRUCT = struct.Struct("@" + "".join(f for _, f in RAW_FIELDS))
RawEvent = collections.namedtuple("RawEvent", [n for n, _ in RAW_FIELDS])
# sizeof(struct rst_event): the members plus the tail padding to its
# alignment (8, for the u64 members)
RAW_SIZE = -(-RAW_STRUCT.size // 8) * 8


def unpack(data, size):
    """The RawEvent at address `data` (a ring or perf buffer record)."""
    if size < RAW_SIZE:
        raise ValueError("event of %d bytes, struct rst_event has %d"
                         % (size, RAW_SIZE))
    return RawEvent._make(RAW_STRUCT.unpack(ctypes.string_at(
        data, RAW_STRUCT.size)))


TCP_FLAG_NAMES = ((0x02, "SYN"), (0x01, "FIN"), (0x04, "RST"),
                  (0x08, "PSH"), (0x10, "ACK"), (0x20, "URG"),
                  (0x40, "ECE"), (0x80, "CWR"))

# Every key of a record, in output order.
FIELDS = ("time", "ts_ns", "kind", "hook", "family", "saddr", "sport",
          "daddr", "dport", "state", "reason", "netns", "pid", "comm",
          "context", "seq", "ack", "rcv_unread", "snd_unsent", "snd_unacked",
          "linger", "linger2", "backlog", "backlog_max", "seg_flags", "seg_len",
          "cause", "explanation", "stack")

# Frames that belong to the tracing machinery, not to the kernel path.
TRACING_FRAME_PREFIXES = ("bpf_prog_", "bpf_trace_run", "__bpf_trace_",
                          "__traceiter_", "trace_event_raw_event_",
                          "perf_trace_", "kprobe_", "bpf_trampoline_",
                          "__bpf_prog_enter", "ftrace_", "[unknown]")

# A frame from any of these means the hook ran in softirq context, where the
# current task is whoever happened to be on the CPU, not the socket owner.
SOFTIRQ_FRAMES = frozenset((
    "__do_softirq", "handle_softirqs", "do_softirq", "net_rx_action",
    "run_timer_softirq", "tasklet_action", "__irq_exit_rcu", "irq_exit_rcu",
    "run_ksoftirqd", "process_backlog", "__netif_receive_skb",
    "__napi_poll", "napi_poll",
))


def base_name(frame):
    """A kernel symbol without compiler suffixes: tcp_x.constprop.0 -> tcp_x."""
    return frame.split(".", 1)[0]


def tcp_flags(bits):
    return "|".join(n for b, n in TCP_FLAG_NAMES if bits & b) or "none"


def monotonic_to_wall_offset():
    """Nanoseconds to add to a CLOCK_MONOTONIC stamp for wall time."""
    return time.time_ns() - time.monotonic_ns()


def address(raw, family):
    addr = ipaddress.IPv6Address(bytes(raw))
    if family == 4:
        return str(addr.ipv4_mapped or addr)
    return str(addr)


def context_of(frames):
    if not frames:
        return None
    names = {base_name(f) for f in frames}
    return "softirq" if names & SOFTIRQ_FRAMES else "process"


class Decoder:
    """Builds records for one tracer run: knows the kernel's reason names,
    its HZ and how to symbolise stacks (each stack once)."""

    def __init__(self, reasons, hz, stack_lookup=None, ksym=None,
                 refresh=None):
        self.reasons = reasons
        self.hz = hz
        self.stack_lookup = stack_lookup
        self.ksym = ksym
        self.refresh = refresh      # () -> True when kernel symbols changed
        self.offset_ns = monotonic_to_wall_offset()
        self._stacks = {}
        self._syms = {}
        self._contexts = {}
        self._addrs = {}
        self._shapes = {}
        self.missing_stacks = 0     # stacks the kernel table no longer had
        self._comms = {}
        self._sec = None
        self._sec_text = None

    def frames(self, stack_key, hook=None):
        """Symbolised frames of a stack, innermost first (stack_key 0: no
        stack). With `hook` (a function name), frames before it are dropped
        when it is among the first three: an fentry stack starts in the BPF
        trampoline, which bcc names after whatever symbol precedes it."""
        if not stack_key or self.stack_lookup is None:
            return []
        cached = self._stacks.get(stack_key)
        if cached is not None:
            return cached
        addrs = self.stack_lookup(stack_key)
        if addrs is None:
            # gone from the kernel's table before it was read (more new
            # stacks than the table holds): counted, not kept
            self.missing_stacks += 1
            return []
        if self.refresh is not None and self.refresh():
            self._syms.clear()
        out = []
        for addr in addrs:
            name = self._syms.get(addr)
            if name is None:
                name = self._syms[addr] = self.ksym(addr)
            if not name.startswith(TRACING_FRAME_PREFIXES):
                out.append(name)
        if hook and ":" not in hook:
            for i, name in enumerate(out[:3]):
                if base_name(name) == hook:
                    out = out[i:]
                    break
        if len(self._stacks) > 65536:
            self._stacks.clear()
            self._contexts.clear()
        self._stacks[stack_key] = out
        return out

    def context(self, stack_key, frames):
        if not frames:
            return None
        ctx = self._contexts.get(stack_key)
        if ctx is None:
            ctx = self._contexts[stack_key] = context_of(frames)
        return ctx

    def address(self, raw, family):
        """Address text, cached: a storm has few distinct peers."""
        key = (bytes(raw), family)
        text = self._addrs.get(key)
        if text is None:
            if len(self._addrs) > 65536:
                self._addrs.clear()
            text = self._addrs[key] = address(key[0], family)
        return text

    def _shape(self, ev):
        """What an event shares with every other event of the same kernel
        path and socket facts, decided once: names, stack, context."""
        key = (ev.stack_key, ev.kind, ev.hook, ev.state, ev.reason, ev.flags,
               ev.seg_flags, ev.family, ev.lingertime, ev.linger2)
        shape = self._shapes.get(key)
        if shape is not None:
            return shape
        if len(self._shapes) > 65536:
            self._shapes.clear()
        flags = ev.flags
        hook = HOOK_NAMES.get(ev.hook, "hook_%d" % ev.hook)
        frames = self.frames(ev.stack_key, hook)
        linger = linger2 = None
        if flags & EV_LINGER:
            linger = (ev.lingertime / self.hz) if self.hz else None
            if linger is not None and linger == int(linger):
                linger = int(linger)
        if flags & EV_TCP_SOCK:
            linger2 = ev.linger2 if ev.linger2 < 0 else (
                ev.linger2 // self.hz if self.hz else None)
        shape = (
            KIND_NAMES.get(ev.kind, "unknown"), hook, ev.family or None,
            TCP_STATES.get(ev.state, "STATE_%d" % ev.state)
            if flags & EV_SOCK and ev.state else None,
            self.reasons.name(ev.reason), self.context(ev.stack_key, frames),
            linger, linger2,
            tcp_flags(ev.seg_flags) if flags & EV_PACKET else None,
            frames)
        if frames or not ev.stack_key:      # a missing stack is not kept
            self._shapes[key] = shape
        return shape

    def time(self, ts_ns):
        """ISO 8601 UTC with microseconds; the text up to the second is
        made once per second."""
        wall_us = (ts_ns + self.offset_ns) // 1000
        sec, usec = divmod(wall_us, 1000000)
        if sec != self._sec:
            self._sec = sec
            self._sec_text = datetime.datetime.fromtimestamp(
                sec, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        return "%s.%06d+00:00" % (self._sec_text, usec)

    def comm(self, raw):
        text = self._comms.get(raw)
        if text is None:
            if len(self._comms) > 4096:
                self._comms.clear()
            text = self._comms[raw] = bytes(raw).split(b"\0", 1)[0].decode(
                "utf-8", "replace")
        return text

    def record(self, ev):
        (kind, hook, family, state, reason, context, linger, linger2,
         seg_flags, frames) = self._shape(ev)
        flags = ev.flags
        tcp_sock = flags & EV_TCP_SOCK
        listener = flags & EV_LISTENER
        seq_ok = flags & EV_SEQ
        return {
            "time": self.time(ev.ts_ns),
            "ts_ns": ev.ts_ns,
            "kind": kind,
            "hook": hook,
            "family": family,
            "saddr": self.address(ev.saddr, family) if family else None,
            "sport": ev.sport if family else None,
            "daddr": self.address(ev.daddr, family) if family else None,
            "dport": ev.dport if family else None,
            "state": state,
            "reason": reason,
            "netns": ev.netns or None,
            "pid": ev.pid,
            "comm": self.comm(ev.comm),
            "context": context,
            "seq": ev.seq if seq_ok else None,
            "ack": ev.ack if seq_ok else None,
            "rcv_unread": ev.rcv_unread if tcp_sock else None,
            "snd_unsent": ev.snd_unsent if tcp_sock else None,
            "snd_unacked": ev.snd_unacked if tcp_sock else None,
            "linger": linger,
            "linger2": linger2,
            "backlog": ev.backlog if listener else None,
            "backlog_max": ev.backlog_max if listener else None,
            "seg_flags": seg_flags,
            "seg_len": ev.seg_len if flags & EV_PACKET else None,
            "cause": None,
            "explanation": None,
            "stack": frames,            # last: JsonWriter relies on it
        }
