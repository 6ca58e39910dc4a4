"""Which of rsttrace's user-space caches pay (issue 10): the cost per event
of a flood (one shape), of a varied stream (many shapes, stacks and
peers) and of attributing saved records (`rsttrace report` on a capture
without causes), each with every cache on and with one of them off."""

import contextlib
import functools
import glob
import ipaddress
import json
import os
import time

from benchlib.common import HERE, log

FRAMES = ["tcp_v4_rcv", "ip_protocol_deliver_rcu", "ip_local_deliver_finish",
          "__netif_receive_skb_one_core", "process_backlog", "__napi_poll",
          "net_rx_action", "handle_softirqs"]


def raw_events(shapes, peers, n):
    """n raw events cycling through `shapes` distinct stacks and fact bits
    and `peers` distinct addresses."""
    from rsttrace import abi
    base = dict(ts_ns=10 ** 12, skaddr=0, lingertime=0, stack_key=1 << 20,
                pid=123, tid=123, netns=4026532255, reason=1, seq=0, ack=7,
                rcv_nxt=0, snd_nxt=0, rcv_unread=0, snd_unsent=0,
                snd_unacked=0, backlog=0, backlog_max=0, seg_len=0,
                linger2=0, sport=9, dport=1024,
                saddr=ipaddress.IPv6Address("::ffff:198.18.1.2").packed,
                daddr=ipaddress.IPv6Address("::ffff:198.18.1.1").packed,
                family=4, kind=1, hook=6, state=0,
                flags=abi.EV_PACKET | abi.EV_SEQ, seg_flags=2,
                facts=abi.FACT_PACKET | abi.FACT_SEQ_ZERO, pad=0,
                comm=b"hping3".ljust(16, b"\0"))
    out = []
    for i in range(n):
        v = dict(base, ts_ns=10 ** 12 + i * 3000, dport=1024 + i % 50000)
        s, p = i % shapes, i % peers
        v["stack_key"] = (1 << 20) + s // 4
        v["seg_flags"] = (2, 0x12, 0x10, 0x11)[s % 4]
        v["daddr"] = v["daddr"][:12] + (0x0a000000 + p).to_bytes(4, "big")
        out.append(abi.RAW_STRUCT.pack(*[v[k] for k, _ in abi.RAW_FIELDS])
                   .ljust(abi.RAW_SIZE, b"\0"))
    return out


def decoder():
    from rsttrace.attribution import attribute
    from rsttrace.kernel.reasons import ReasonNames
    from rsttrace.trace.decode import Decoder

    def ksym(addr):
        return ("tcp_v4_send_reset_%x" % addr if addr >= 1 << 20 else
                FRAMES[addr - 1])
    return Decoder(ReasonNames({1: "NO_SOCKET"}), 250,
                   lambda key: [key] + list(range(1, len(FRAMES) + 1)),
                   ksym, None, attribute)


def stream_cost(raws, repeat=3):
    """µs per event: unpack, record, JSON line (best of `repeat`)."""
    from rsttrace import abi
    from rsttrace.output.writers import JsonWriter
    best = None
    for _ in range(repeat):
        dec = decoder()
        with open(os.devnull, "w") as sink:
            w = JsonWriter(sink)
            record, write = dec.record, w.event
            t0 = time.process_time()
            for raw in raws:
                write(record(abi.unpack_from(raw, 0)))
            w.flush()
            took = time.process_time() - t0
        best = took if best is None else min(best, took)
    return best / len(raws) * 1e6


def report_cost(repeat=3):
    """µs per saved record attributed (a capture without causes)."""
    from rsttrace.attribution import attribute_record
    recs = []
    for path in glob.glob(os.path.join(HERE, "tests", "data", "*.jsonl")):
        with open(path) as f:
            recs += [json.loads(l) for l in f]
    recs = [r for r in recs if r.get("kind") in ("sent", "received",
                                                 "challenge_ack")] * 20
    best = None
    for _ in range(repeat):
        t0 = time.process_time()
        for r in recs:
            attribute_record(r)
        took = time.process_time() - t0
        best = took if best is None else min(best, took)
    return best / len(recs) * 1e6


def switches():
    """(name, context manager that turns that cache off)."""
    from rsttrace import abi, attribution, facts
    from rsttrace.output import writers
    from rsttrace.trace import decode

    @contextlib_patch
    def shapes():
        def uncached(self, ev):
            return self._make_shape(
                ev.kind, ev.hook, ev.state if ev.flags & abi.EV_SOCK else 0,
                ev.reason, ev.family, ev.seg_flags if ev.flags &
                abi.EV_PACKET else None, ev.facts, ev.stack_key)[0]
        return [(decode.Decoder, "_shape_of", uncached)]

    @contextlib_patch
    def stacks():
        stack = decode.Decoder.stack

        def uncached(self, key, hook=None):
            self._stacks.clear()
            return stack(self, key, hook)
        return [(decode.Decoder, "stack", uncached)]

    @contextlib_patch
    def symbols():
        stack = decode.Decoder.stack

        def uncached(self, key, hook=None):
            self._syms.clear()
            self._stacks.clear()
            return stack(self, key, hook)
        return [(decode.Decoder, "stack", uncached)]

    def unwrap(module, name):
        return [(module, name, getattr(module, name).__wrapped__)]

    @contextlib_patch
    def templates():
        event = writers.JsonWriter.event

        def untemplated(self, record):
            return event(self, dict(record))
        return [(writers.JsonWriter, "event", untemplated)]

    return [
        ("Decoder shapes (per shape: names, stack, facts, cause)", shapes),
        ("Decoder stacks (per stack key)", stacks),
        ("Decoder symbols (per address; stacks off too)", symbols),
        ("decode.address lru_cache", contextlib_patch(
            lambda: unwrap(decode, "address"))),
        ("decode._comm lru_cache", contextlib_patch(
            lambda: unwrap(decode, "_comm"))),
        ("abi.tcp_flags, tcp_flag_set lru_cache", contextlib_patch(
            lambda: unwrap(abi, "tcp_flags") + unwrap(abi, "tcp_flag_set"))),
        ("facts._bit_facts lru_cache", contextlib_patch(
            lambda: unwrap(facts, "_bit_facts"))),
        ("attribution.attribute lru_cache", contextlib_patch(
            lambda: unwrap(attribution, "attribute"))),
        ("JsonWriter line templates (per shape)", templates),
    ]


def contextlib_patch(patches):
    """A context manager that sets each (object, attribute, value) of
    patches() and puts them back."""
    @contextlib.contextmanager
    def patched():
        todo = patches()
        old = [(o, a, getattr(o, a)) for o, a, _ in todo]
        for o, a, v in todo:
            setattr(o, a, v)
        try:
            yield
        finally:
            for o, a, v in old:
                setattr(o, a, v)
    return patched


def bench_caches(events=60000):
    workloads = [("flood", functools.partial(
        stream_cost, raw_events(1, 1, events))),
        ("varied", functools.partial(
            stream_cost, raw_events(400, 2000, events))),
        ("report", report_cost)]
    rows = [("all on", [fn() for _, fn in workloads])]
    for name, off in switches():
        with off():
            rows.append((name, [fn() for _, fn in workloads]))
        log("  caches: %s off: %s" % (name, ", ".join(
            "%s %.2f" % (w, v) for (w, _), v in zip(workloads, rows[-1][1]))))
    return [w for w, _ in workloads], rows

