"""Which of rsttrace's user-space caches pay (issue 10): the cost per event
of a flood (one shape), of a varied stream (many shapes, stacks and
peers) and of attributing saved records (`rsttrace report` on a capture
without causes), each with every cache on and with one of them off."""

import contextlib
import functools
import glob
import json
import os
import time

from benchlib import synthetic
from benchlib.common import HERE, log

def stream_cost(raws, repeat=3):
    """µs per event: unpack, record, JSON line (best of `repeat`, each with
    a new decoder and writer)."""
    return min(synthetic.stream_cost(synthetic.decoder(), raws)
               for _ in range(repeat))


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
    """(name, context manager that turns that cache off; "+ name": one
    rsttrace does without, put back)."""
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
    def symbols():
        stack = decode.Decoder.stack

        def uncached(self, key, hook=None):
            self._syms.clear()
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

    # caches rsttrace no longer has, put back to show they do not pay
    @contextlib_patch
    def stacks():
        stack = decode.Decoder.stack

        def cached(self, key, hook=None):
            kept = self.__dict__.setdefault("_stacks", {})
            if (key, hook) not in kept:
                kept[key, hook] = stack(self, key, hook)
            return kept[key, hook]
        return [(decode.Decoder, "stack", cached)]

    def lru(module, name, size):
        return [(module, name, functools.lru_cache(size)(
            getattr(module, name)))]

    return [
        ("Decoder shapes (per shape: names, stack, facts, cause)", shapes),
        ("Decoder symbols (per address)", symbols),
        ("decode.address lru_cache", contextlib_patch(
            lambda: unwrap(decode, "address"))),
        ("attribution.attribute lru_cache", contextlib_patch(
            lambda: unwrap(attribution, "attribute"))),
        ("JsonWriter line templates (per shape)", templates),
        ("+ Decoder stacks (per stack key)", stacks),
        ("+ decode._comm lru_cache", contextlib_patch(
            lambda: lru(decode, "_comm", 4096))),
        ("+ abi.tcp_flags, tcp_flag_set lru_cache", contextlib_patch(
            lambda: lru(abi, "tcp_flags", 256) +
            lru(abi, "tcp_flag_set", 256))),
        ("+ facts._bit_facts lru_cache", contextlib_patch(
            lambda: lru(facts, "_bit_facts", 256))),
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
    workloads = [
        ("flood", functools.partial(stream_cost, synthetic.raw_events(
            events))),
        ("varied", functools.partial(stream_cost, synthetic.raw_events(
            events, stacks=100, peers=2000, variants=4))),
        ("new stacks", functools.partial(stream_cost, synthetic.raw_events(
            events // 10, stacks=events // 10), repeat=1)),
        ("report", report_cost)]
    rows = [("all on", [fn() for _, fn in workloads])]
    for name, off in switches():
        with off():
            rows.append((name, [fn() for _, fn in workloads]))
        log("  caches: %s off: %s" % (name, ", ".join(
            "%s %.2f" % (w, v) for (w, _), v in zip(workloads, rows[-1][1]))))
    return [w for w, _ in workloads], rows

