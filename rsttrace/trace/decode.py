"""The BPF program's raw event (rsttrace.abi.RawEvent) to rsttrace's event
record (a dict, what `--json` prints; see FIELDS and docs/json-schema.md)
and the Facts its cause is decided on (rsttrace.facts).

Most of a record is the same for every event of one kind of RST (a storm
repeats one): the names of its kind, hook, state and reason, its packet
flags, its kernel stack and context, its facts and cause. That part is its
Shape, made once per distinct combination of the raw values it comes from
and shared by the records (record.shape); per event only the values of
that event are read (time, addresses, ports, sequence numbers, queues).
"""

import datetime
import functools
import ipaddress
import operator
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
# The keys whose values come from the record's Shape: equal for every
# record of one shape.
SHAPE_FIELDS = ("kind", "hook", "family", "state", "reason", "context",
                "seg_flags", "cause", "explanation", "stack")

# Keys that hold an int in every record that has a value for them, and
# text rsttrace makes from numbers (a time, an address), which JSON needs
# no escaping for: rsttrace.output.writers formats them without looking.
INT_FIELDS = ("ts_ns", "sport", "dport", "pid", "seq", "ack", "rcv_unread",
              "snd_unsent", "snd_unacked", "snd_nxt", "backlog",
              "backlog_max", "seg_len")
PLAIN_TEXT_FIELDS = ("time", "saddr", "daddr")
# The keys whose values come from the raw event itself (a layout's `own`
# where it has values for them all).
_EVENT_FIELDS = tuple(k for k in FIELDS
                      if k not in SHAPE_FIELDS and k not in WHO_FIELDS)

# The raw values a Shape and a Layout are made from (rst_event members).
_SHAPE_KEY = operator.itemgetter(*(
    abi.AT[name] for name in (
        "kind", "hook", "state", "flags", "reason", "family", "seg_flags",
        "facts", "stack_key")))

# Caches, each bounded, and each kept because scripts/bench-caches shows
# it pays (bench/CACHES.md): a storm repeats its values (few shapes, peers
# and names) while the first computation is costly: a shape's stack is a
# map lookup and a kallsyms search per frame, its cause an attribution;
# ipaddress and datetime formatting cost more than the rest of a record.
# The kernel keeps STACK_ENTRIES (16384) stacks.
SHAPES_KEPT = 16384
SYMBOLS_KEPT = 65536
COMMS_KEPT = 4096


@functools.lru_cache(maxsize=65536)
def address(raw, family):
    """An address of the event (16 bytes, IPv4 v4-mapped) as text."""
    addr = ipaddress.IPv6Address(raw)
    if family == 4:
        return str(addr.ipv4_mapped or addr)
    return str(addr)


def _comm(raw):
    """A task name (16 bytes, NUL-padded) as text."""
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


class Shape:
    """The part of a record that events of one kind share (SHAPE_FIELDS),
    and its Facts. One object per shape: equal shapes are the same object."""

    __slots__ = SHAPE_FIELDS + ("facts",)

    def __init__(self, **values):
        for name in self.__slots__:
            setattr(self, name, values[name])


class Layout:
    """Which keys the records of one shape and one set of rst_event.flags
    have values for: the others (`absent`) are None in all of them, as the
    flags say the kernel had no value (no socket, no packet...). `base` is
    such a record before its event's values; `own` the keys (FIELDS order,
    WHO_FIELDS aside) each event has a value of its own for, which
    values(ev) reads from a raw event (a tuple, `own` order;
    Decoder._valuer)."""

    __slots__ = ("shape", "absent", "base", "own", "family", "values")

    def __init__(self, shape, flags):
        self.shape = shape
        self.family = shape.family
        self.absent, self.own = _keys_of(flags, bool(shape.family))
        base = dict.fromkeys(FIELDS)
        for k in SHAPE_FIELDS:
            base[k] = getattr(shape, k)
        self.base = base
        self.values = None      # values(ev): Decoder._valuer

    def record(self, values, who=None):
        """The record of an event of this layout: its own values (from
        values(ev)) and who is behind it (WHO_FIELDS order; None: not
        asked)."""
        rec = Record(self.base)
        rec.update(zip(self.own, values))
        if who is not None:
            rec.update(zip(WHO_FIELDS, who))
        rec.layout = self
        return rec


def _keys_of(flags, family):
    """(absent, own) of a Layout with these rst_event.flags, with or
    without addresses (`family`)."""
    tcp_sock = flags & abi.EV_TCP_SOCK
    listener = flags & abi.EV_LISTENER
    present = {
        "sport": family, "dport": family, "saddr": family,
        "daddr": family, "seq": flags & abi.EV_SEQ,
        "ack": flags & abi.EV_SEQ, "rcv_unread": tcp_sock,
        "snd_unsent": tcp_sock, "snd_unacked": tcp_sock,
        "snd_nxt": tcp_sock, "linger2": tcp_sock,
        "linger": flags & abi.EV_LINGER, "backlog": listener,
        "backlog_max": listener, "seg_len": flags & abi.EV_PACKET}
    absent = frozenset(k for k, v in present.items() if not v)
    return absent, tuple(k for k in _EVENT_FIELDS if k not in absent)


class Record(dict):
    """An event record (FIELDS, in this order) and its Layout, with the
    Shape its SHAPE_FIELDS were taken from (record.shape). Its SHAPE_FIELDS
    and the keys its layout has no values for are read-only once made:
    writers may encode them once for all the records of a layout
    (rsttrace.output.writers); the other keys (WHO_FIELDS) are filled in
    per record."""

    __slots__ = ("layout",)

    @property
    def shape(self):
        return self.layout.shape


class Decoder:
    """Builds records for one tracer run: knows the kernel's reason names,
    its HZ, how to symbolise stacks (each stack once), and, when given,
    how to decide a cause (attribute(facts) -> (cause, explanation), once
    per shape)."""

    def __init__(self, reasons, hz, stack_lookup=None, ksym=None,
                 refresh=None, attribute=None):
        self.reasons = reasons
        self.hz = hz
        self.stack_lookup = stack_lookup
        self.ksym = ksym
        self.refresh = refresh      # () -> True when kernel symbols changed
        self.attribute = attribute
        self.offset_ns = monotonic_to_wall_offset()
        self._shapes = {}           # raw values (_SHAPE_KEY) -> Layout
        self._by_values = {}        # shape()'s arguments -> Shape
        self._syms = {}             # address -> kernel symbol
        self._valuers = {}          # see _valuer()
        self._comms = {}            # 16 bytes of a task name -> its text
        self.missing_stacks = 0     # stacks the kernel table no longer had
        self._sec_us = -1 << 64     # the second time() last wrote
        self._sec_format = None

    # -- stacks ---------------------------------------------------------------

    def stack(self, stack_key, hook=None):
        """(frames, own frames, context) of a kernel stack (stack_key 0:
        none), or None when the kernel's table no longer has it; see
        rsttrace.trace.stacks. (Asked once per shape: not kept.)"""
        addrs = None
        if stack_key and self.stack_lookup is not None:
            addrs = self.stack_lookup(stack_key)
            if addrs is None:
                # gone from the kernel's table before it was read (more new
                # stacks than the table holds): counted, looked up again
                # next time
                self.missing_stacks += 1
                return None
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
        return frames, own_frames(frames), context_of(frames)

    def frames(self, stack_key, hook=None):
        return (self.stack(stack_key, hook) or ([],))[0]

    # -- shapes ---------------------------------------------------------------

    def names(self, kind, hook, state, reason):
        """The names of an event's kind, hook, state (0: none) and reason."""
        return (abi.KIND_NAMES.get(kind, "unknown"),
                HOOK_NAMES.get(hook, "hook_%d" % hook),
                abi.TCP_STATES.get(state, "STATE_%d" % state) if state
                else None,
                self.reasons.name(reason))

    def shape(self, kind, hook, state, reason, family, seg_flags, bits,
              stack_key):
        """(Shape, missing) of events with these raw values: state 0 for no
        socket, seg_flags None for no packet, bits the kernel's FACT_*;
        missing: the stack table no longer had the stack (the shape then
        has none, and is not kept)."""
        key = (kind, hook, state, reason, family, seg_flags, bits, stack_key)
        shape = self._by_values.get(key)
        if shape is not None:
            return shape, False
        shape, missing = self._make_shape(*key)
        if not missing:
            if len(self._by_values) > SHAPES_KEPT:
                self._by_values.clear()
            self._by_values[key] = shape
        return shape, missing

    def _make_shape(self, kind, hook, state, reason, family, seg_flags, bits,
                    stack_key):
        kind, hook, state, reason = self.names(kind, hook, state, reason)
        stack = self.stack(stack_key, hook)
        missing = stack is None
        frames, own, context = stack or ([], (), None)
        flag_set = abi.tcp_flag_set(seg_flags or 0)
        facts = Facts.of_bits(kind, hook, state, reason, flag_set, bits, own)
        cause, explanation = self.attribute(facts) if self.attribute \
            else (None, None)
        # the kind as Facts has it (an abort is not an RST received)
        shape = Shape(kind=facts.kind, hook=hook, family=family or None,
                      state=state, reason=reason, context=context,
                      seg_flags=abi.tcp_flags(seg_flags)
                      if seg_flags is not None else None,
                      cause=cause, explanation=explanation, stack=frames,
                      facts=facts)
        return shape, missing

    def _new_layout(self, ev, key):
        """The Layout (and Shape) of a raw event seen first (`key`: its
        _SHAPE_KEY), kept unless its stack was missing."""
        ev = abi.RawEvent._make(ev)
        shape, missing = self.shape(
            ev.kind, ev.hook, ev.state if ev.flags & abi.EV_SOCK else 0,
            ev.reason, ev.family, ev.seg_flags if ev.flags &
            abi.EV_PACKET else None, ev.facts, ev.stack_key)
        layout = Layout(shape, ev.flags)
        layout.values = self._valuer(layout)
        if not missing:     # else looked up again (Decoder.stack)
            if len(self._shapes) > SHAPES_KEPT:
                self._shapes.clear()
            self._shapes[key] = layout
        return layout

    # -- one event ------------------------------------------------------------

    def event(self, ev):
        """(layout, values) of one raw event: its Layout (shape and cause
        included) and its own values (layout.own)."""
        key = _SHAPE_KEY(ev)
        layout = self._shapes.get(key) or self._new_layout(ev, key)
        return layout, layout.values(ev)

    def decode(self, ev):
        """(record, facts) of one raw event."""
        record = self.record(ev)
        return record, record.layout.shape.facts

    def record(self, ev):
        """The record of one raw event, with its cause."""
        layout, values = self.event(ev)
        return layout.record(values)

    def _valuer(self, layout):
        """values(ev) -> the own values (layout.own) of a raw event of
        `layout`: the ints as they are, the rest made readable. Written out
        as one expression (a loop over the keys costs more than the rest of
        the event), once per set of own keys."""
        key = (layout.own, layout.family)
        values = self._valuers.get(key)
        if values is not None:
            return values
        at = {name: "ev[%d]" % i for name, i in abi.AT.items()}
        made = {
            "time": "time(%s)" % at["ts_ns"],
            "saddr": "address(%s, %d)" % (at["saddr"], layout.family or 0),
            "daddr": "address(%s, %d)" % (at["daddr"], layout.family or 0),
            "netns": "(%s or None)" % at["netns"],
            "comm": "(comms.get(%s) or comm(%s))" % (at["comm"], at["comm"]),
            "linger": "seconds(%s)" % at["lingertime"],
            "linger2": "linger2(%s)" % at["linger2"]}
        exprs = [made.get(k) or at[k] for k in layout.own]
        scope = {"time": self.time, "address": address, "comm": self._comm,
                 "comms": self._comms, "seconds": self._seconds,
                 "linger2": self._linger2}
        exec("def values(ev):\n    return (%s,)\n" % ", ".join(exprs),
             scope)
        values = self._valuers[key] = scope["values"]
        return values

    def _seconds(self, jiffies):
        """Jiffies as seconds (an int when whole); None without HZ."""
        if not self.hz:
            return None
        secs = jiffies / self.hz
        return int(secs) if secs == int(secs) else secs

    def _comm(self, raw):
        """_comm(raw), kept in _comms (a storm repeats a few names)."""
        if len(self._comms) > COMMS_KEPT:
            self._comms.clear()
        text = self._comms[raw] = _comm(raw)
        return text

    def _linger2(self, value):
        """tcp_sock.linger2 (a negative value as it is: no FIN_WAIT2 wait),
        as seconds."""
        return value if value < 0 else self._seconds(value)

    def time(self, ts_ns):
        """ISO 8601 UTC with microseconds; the format of the text up to
        the second is made once per second."""
        wall_us = (ts_ns + self.offset_ns) // 1000
        usec = wall_us - self._sec_us
        if not 0 <= usec < 1000000:
            usec = wall_us % 1000000
            self._sec_us = sec_us = wall_us - usec
            self._sec_format = datetime.datetime.fromtimestamp(
                sec_us // 1000000, datetime.timezone.utc).strftime(
                    "%Y-%m-%dT%H:%M:%S") + ".%06d+00:00"
        return self._sec_format % usec
