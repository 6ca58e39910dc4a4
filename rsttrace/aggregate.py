"""Summary mode: RSTs counted in the kernel (bpf/rsttrace.bpf.c,
SUMMARY_ONLY), read out here, attributed once per distinct key.

A storm then costs one map update per RST; user space touches each distinct
(hook, state, reason, flags, stack) once per refresh, however many RSTs it
stands for.
"""

import collections


from .attribution import attribute
from .event import (EV_LINGER, EV_LISTENER, EV_PACKET, EV_SOCK, EV_TCP_SOCK,
                    TCP_STATES, tcp_flags)
from .hooks import HOOK_NAMES, KIND_NAMES
from .output import path_of, table

# bpf/rsttrace.h
AGG_SEG_DATA = 0x01
AGG_LINGER_ZERO = 0x02
AGG_UNREAD = 0x04
AGG_BACKLOG_FULL = 0x08
AGG_LINGER2_NEG = 0x10


def key_record(key, decoder):
    """A record with just what attribution reads, from one map key."""
    flags, facts = key.flags, key.facts
    packet = bool(flags & EV_PACKET)
    listener = bool(flags & EV_LISTENER)
    return {
        "kind": KIND_NAMES.get(key.kind, "unknown"),
        "hook": HOOK_NAMES.get(key.hook, "hook_%d" % key.hook),
        "state": TCP_STATES.get(key.state) if flags & EV_SOCK and key.state
        else None,
        "reason": decoder.reasons.name(key.reason),
        "family": key.family or None,
        "seg_flags": tcp_flags(key.seg_flags) if packet else None,
        "seg_len": (1 if facts & AGG_SEG_DATA else 0) if packet else None,
        "linger": (0 if facts & AGG_LINGER_ZERO else 1)
        if flags & EV_LINGER else None,
        "rcv_unread": (1 if facts & AGG_UNREAD else 0)
        if flags & EV_TCP_SOCK else None,
        "linger2": (-1 if facts & AGG_LINGER2_NEG else 0)
        if flags & EV_TCP_SOCK else None,
        "backlog": (1 if facts & AGG_BACKLOG_FULL else 0) if listener
        else None,
        "backlog_max": 0 if listener else None,
        "stack": decoder.frames(key.stack_key,
                                HOOK_NAMES.get(key.hook)),
    }


class KernelSummary:
    """Reads the `agg` map and keeps per-key attribution cached."""

    COLUMNS = ("cause", "kind", "hook", "state", "reason", "path")

    def __init__(self, tracer, decoder):
        self.tracer = tracer
        self.decoder = decoder
        self._causes = {}

    def rows(self):
        """{(cause, kind, hook, state, reason, path): count}."""
        table = self.tracer.bpf[b"agg"]
        out = collections.Counter()
        for key, value in table.items():
            ident = bytes(key)
            row = self._causes.get(ident)
            if row is None:
                rec = key_record(key, self.decoder)
                cause, _ = attribute(rec)
                row = (cause, rec["kind"], rec["hook"], rec["state"] or "-",
                       rec["reason"] or "-", path_of(rec["stack"], 3))
                self._causes[ident] = row
            out[row] += value.value
        return out

    def as_dict(self):
        matched, lost = self.tracer.counts()
        rows = self.rows()
        return {"kind": "summary", "events": sum(rows.values()),
                "lost": lost, "kernel_events": matched,
                "rows": [dict(zip(self.COLUMNS, k), count=n)
                         for k, n in rows.most_common()]}

    def as_text(self):
        d = self.as_dict()
        text = table([[r[c] for c in self.COLUMNS] + [r["count"]]
                      for r in d["rows"]], list(self.COLUMNS) + ["count"],
                     [None, None, None, None, None, 60, None])
        return "%d RSTs counted in the kernel, %d lost\n\n%s" % (
            d["events"], d["lost"], text)
