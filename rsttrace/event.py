"""Turn the BPF program's raw event into rsttrace's event record (a dict).

The record is what `--json` prints, one per line; see FIELDS for its keys.
"""

import datetime
import ipaddress
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


def iso_time(ts_ns, offset_ns):
    wall = (ts_ns + offset_ns) / 1e9
    return datetime.datetime.fromtimestamp(
        wall, datetime.timezone.utc).isoformat(timespec="microseconds")


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
    its HZ and how to symbolise stacks (each stack id once)."""

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

    def frames(self, stack_id, hook=None):
        """Symbolised frames of a stack id, innermost first. With `hook`
        (a function name), frames before it are dropped when it is among
        the first three: an fentry stack starts in the BPF trampoline,
        which bcc names after whatever symbol precedes it."""
        if stack_id < 0 or self.stack_lookup is None:
            return []
        cached = self._stacks.get(stack_id)
        if cached is not None:
            return cached
        if self.refresh is not None and self.refresh():
            self._syms.clear()
        out = []
        for addr in self.stack_lookup(stack_id):
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
        self._stacks[stack_id] = out
        return out

    def context(self, stack_id, frames):
        ctx = self._contexts.get(stack_id)
        if ctx is None and stack_id >= 0:
            ctx = self._contexts[stack_id] = context_of(frames)
        return ctx if stack_id >= 0 else None

    def address(self, raw, family):
        """Address text, cached: a storm has few distinct peers."""
        key = (bytes(raw), family)
        text = self._addrs.get(key)
        if text is None:
            if len(self._addrs) > 65536:
                self._addrs.clear()
            text = self._addrs[key] = address(key[0], family)
        return text

    def record(self, ev):
        flags = ev.flags
        family = ev.family or None
        hook = HOOK_NAMES.get(ev.hook, "hook_%d" % ev.hook)
        frames = self.frames(ev.stack_id, hook)
        tcp_sock = bool(flags & EV_TCP_SOCK)
        listener = bool(flags & EV_LISTENER)
        linger = None
        if flags & EV_LINGER:
            linger = (ev.lingertime / self.hz) if self.hz else None
            if linger is not None and linger == int(linger):
                linger = int(linger)
        linger2 = None
        if tcp_sock:
            linger2 = ev.linger2 if ev.linger2 < 0 else (
                ev.linger2 // self.hz if self.hz else None)
        seq_ok = bool(flags & EV_SEQ)
        has_sock = bool(flags & EV_SOCK)
        return {
            "time": iso_time(ev.ts_ns, self.offset_ns),
            "ts_ns": ev.ts_ns,
            "kind": KIND_NAMES.get(ev.kind, "unknown"),
            "hook": hook,
            "family": family,
            "saddr": self.address(ev.saddr, family) if family else None,
            "sport": ev.sport if family else None,
            "daddr": self.address(ev.daddr, family) if family else None,
            "dport": ev.dport if family else None,
            "state": TCP_STATES.get(ev.state, "STATE_%d" % ev.state)
            if has_sock and ev.state else None,
            "reason": self.reasons.name(ev.reason),
            "netns": ev.netns or None,
            "pid": ev.pid,
            "comm": bytes(ev.comm).split(b"\0", 1)[0].decode("utf-8",
                                                            "replace"),
            "context": self.context(ev.stack_id, frames),
            "seq": ev.seq if seq_ok else None,
            "ack": ev.ack if seq_ok else None,
            "rcv_unread": ev.rcv_unread if tcp_sock else None,
            "snd_unsent": ev.snd_unsent if tcp_sock else None,
            "snd_unacked": ev.snd_unacked if tcp_sock else None,
            "linger": linger,
            "linger2": linger2,
            "backlog": ev.backlog if listener else None,
            "backlog_max": ev.backlog_max if listener else None,
            "seg_flags": tcp_flags(ev.seg_flags) if flags & EV_PACKET
            else None,
            "seg_len": ev.seg_len if flags & EV_PACKET else None,
            "cause": None,
            "explanation": None,
            "stack": frames,            # last: JsonWriter relies on it
        }
