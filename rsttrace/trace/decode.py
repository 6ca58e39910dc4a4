"""The BPF program's raw event (rsttrace.abi.RawEvent) to rsttrace's event
record (a dict, what `--json` prints; see FIELDS and docs/json-schema.md)
and the Facts its cause is decided on (rsttrace.facts).
"""

import datetime
import functools
import ipaddress
import time

from rsttrace import abi
from rsttrace.facts import Facts
from rsttrace.trace.hooks import HOOK_NAMES
from rsttrace.trace.stacks import context_of, kernel_path, own_frames

# Every key of an event record, in output order.
FIELDS = ("time", "ts_ns", "kind", "hook", "family", "saddr", "sport",
          "daddr", "dport", "state", "reason", "netns", "netns_name",
          "container", "pod", "pid", "comm", "context", "owner_pid",
          "owner_comm", "owner_source", "seq", "ack", "rcv_unread", "snd_unsent", "snd_unacked",
          "snd_nxt", "linger", "linger2", "backlog", "backlog_max", "seg_flags", "seg_len",
          "cause", "explanation", "stack")
# The keys rsttrace.context fills (who is behind the RST); optional in
# the schema, as they joined version 1 late (docs/record.schema.json).
WHO_FIELDS = ("netns_name", "container", "pod", "owner_pid", "owner_comm",
              "owner_source")

# Caches, each bounded, and each kept because a storm repeats its values
# (few stacks, peers and names) while the first computation is costly:
# a stack is a map lookup and a kallsyms search per frame; ipaddress and
# datetime formatting cost more than the rest of a record.
STACKS_KEPT = 65536
SYMBOLS_KEPT = 65536


@functools.lru_cache(maxsize=65536)
def address(raw, family):
    """An address of the event (16 bytes, IPv4 v4-mapped) as text."""
    addr = ipaddress.IPv6Address(raw)
    if family == 4:
        return str(addr.ipv4_mapped or addr)
    return str(addr)


@functools.lru_cache(maxsize=4096)
def _comm(raw):
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def monotonic_to_wall_offset():
    """Nanoseconds to add to a CLOCK_MONOTONIC stamp for wall time, a whole
    number of microseconds: then a record's `time` (microseconds) and the
    nanoseconds of its `ts_ns` make its exact wall time in nanoseconds
    (rsttrace.output.pcapng.WallClock), live and from a saved capture."""
    # read between two wall-clock reads, the tightest of a few tries: a
    # preemption between the reads (a loaded host) would otherwise put
    # every record off the wire's clock (tcpdump's) by as long as it lasted
    best = None
    for _ in range(16):
        before = time.time_ns()
        mono = time.monotonic_ns()
        after = time.time_ns()
        if best is None or after - before < best[0]:
            best = (after - before, (before + after) // 2 - mono)
    return round(best[1], -3)


class Decoder:
    """Builds records and facts for one tracer run: knows the kernel's
    reason names, its HZ and how to symbolise stacks (each stack once)."""

    def __init__(self, reasons, hz, stack_lookup=None, ksym=None,
                 refresh=None):
        self.reasons = reasons
        self.hz = hz
        self.stack_lookup = stack_lookup
        self.ksym = ksym
        self.refresh = refresh      # () -> True when kernel symbols changed
        self.offset_ns = monotonic_to_wall_offset()
        self._stacks = {}           # stack_key -> (frames, own, context)
        self._syms = {}             # address -> kernel symbol
        self.missing_stacks = 0     # stacks the kernel table no longer had
        self._sec = self._sec_text = None

    # -- stacks ---------------------------------------------------------------

    def stack(self, stack_key, hook=None):
        """(frames, own frames, context) of a kernel stack (stack_key 0:
        none); see rsttrace.trace.stacks."""
        hit = self._stacks.get(stack_key)
        if hit is not None:
            return hit
        addrs = None
        if stack_key and self.stack_lookup is not None:
            addrs = self.stack_lookup(stack_key)
            if addrs is None:
                # gone from the kernel's table before it was read (more new
                # stacks than the table holds): counted, looked up again
                # next time
                self.missing_stacks += 1
        if not addrs:
            return [], (), None
        if self.refresh is not None and self.refresh():
            self._syms.clear()
        if len(self._syms) > SYMBOLS_KEPT:
            self._syms.clear()
        names = []
        for addr in addrs:
            name = self._syms.get(addr)
            if name is None:
                name = self._syms[addr] = self.ksym(addr)
            names.append(name)
        frames = kernel_path(names, hook)
        if len(self._stacks) > STACKS_KEPT:
            self._stacks.clear()
        hit = self._stacks[stack_key] = (frames, own_frames(frames),
                                         context_of(frames))
        return hit

    def frames(self, stack_key, hook=None):
        return self.stack(stack_key, hook)[0]

    # -- one event ------------------------------------------------------------

    def names(self, kind, hook, state, reason):
        """The names of an event's kind, hook, state (0: none) and reason."""
        return (abi.KIND_NAMES.get(kind, "unknown"),
                HOOK_NAMES.get(hook, "hook_%d" % hook),
                abi.TCP_STATES.get(state, "STATE_%d" % state) if state
                else None,
                self.reasons.name(reason))

    def decode(self, ev):
        """(record, facts) of one raw event."""
        state = ev.state if ev.flags & abi.EV_SOCK else 0
        kind, hook, state, reason = self.names(ev.kind, ev.hook, state,
                                               ev.reason)
        frames, own, context = self.stack(ev.stack_key, hook)
        facts = Facts.of_bits(kind, hook, state, reason,
                              abi.tcp_flag_set(ev.seg_flags), ev.facts, own)
        # the kind as Facts has it (an abort is not an RST received)
        return self._record(ev, facts.kind, hook, state, reason, frames,
                            context), facts

    def record(self, ev):
        return self.decode(ev)[0]

    def _record(self, ev, kind, hook, state, reason, frames, context):
        flags = ev.flags
        family = ev.family or None
        tcp_sock = flags & abi.EV_TCP_SOCK
        listener = flags & abi.EV_LISTENER
        seq_ok = flags & abi.EV_SEQ
        packet = flags & abi.EV_PACKET
        return {
            "time": self.time(ev.ts_ns),
            "ts_ns": ev.ts_ns,
            "kind": kind,
            "hook": hook,
            "family": family,
            "saddr": address(ev.saddr, family) if family else None,
            "sport": ev.sport if family else None,
            "daddr": address(ev.daddr, family) if family else None,
            "dport": ev.dport if family else None,
            "state": state,
            "reason": reason,
            "netns": ev.netns or None,
            # who: filled by rsttrace.context.Enricher (from ev's owner
            # fields, /proc and the container runtimes' state)
            "netns_name": None,
            "container": None,
            "pod": None,
            "pid": ev.pid,
            "comm": _comm(ev.comm),
            "context": context,
            "owner_pid": None,
            "owner_comm": None,
            "owner_source": None,
            "seq": ev.seq if seq_ok else None,
            "ack": ev.ack if seq_ok else None,
            "rcv_unread": ev.rcv_unread if tcp_sock else None,
            "snd_unsent": ev.snd_unsent if tcp_sock else None,
            "snd_unacked": ev.snd_unacked if tcp_sock else None,
            "snd_nxt": ev.snd_nxt if tcp_sock else None,
            "linger": self._seconds(ev.lingertime)
            if flags & abi.EV_LINGER else None,
            "linger2": (ev.linger2 if ev.linger2 < 0 else
                        self._seconds(ev.linger2)) if tcp_sock else None,
            "backlog": ev.backlog if listener else None,
            "backlog_max": ev.backlog_max if listener else None,
            "seg_flags": abi.tcp_flags(ev.seg_flags) if packet else None,
            "seg_len": ev.seg_len if packet else None,
            "cause": None,
            "explanation": None,
            "stack": frames,
        }

    def _seconds(self, jiffies):
        """Jiffies as seconds (an int when whole); None without HZ."""
        if not self.hz:
            return None
        secs = jiffies / self.hz
        return int(secs) if secs == int(secs) else secs

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
