"""`rsttrace demo`: trace while provoking RSTs in two namespaces, then show
what was seen next to what was provoked."""

import sys

from tabulate import tabulate

from . import provoke
from .filters import Filters
from .netns import NamespacePair
from .output import JsonWriter, Summary, path_of
from .session import Session
from .tracer import Tracer, require_root


def matches(record, p):
    """Is `record` an event of provocation `p` (same RST, either side)?"""
    return (record["family"] == p.family and
            {(record["saddr"], record["sport"]),
             (record["daddr"], record["dport"])} ==
            {(p.saddr, p.sport), (p.daddr, p.dport)})


def run_demo(mode="auto", as_json=False, out=sys.stdout):
    require_root()
    records = []
    with NamespacePair() as pair:
        tracer = Tracer(mode=mode, filters=Filters(netns=pair.inodes()))
        session = Session(tracer, on_record=records.append)
        session.start()
        print("rsttrace demo: tracing in %s mode, namespaces %s and %s"
              % (tracer.mode, pair.names["a"], pair.names["b"]),
              file=sys.stderr)
        done = []
        try:
            for _, fn, family in provoke.DEMO:
                p = fn(pair, family)
                provoke.settle()
                session.drain()
                done.append(p)
        finally:
            session.finish()
    rows, ok = [], True
    for p in done:
        mine = [r for r in records if matches(r, p)]
        sent = [r for r in mine if r["kind"] == "sent"]
        recv = [r for r in mine if r["kind"] == "received"]
        verdict = "seen" if sent and recv else "MISSING " + (
            "sent" if not sent else "received")
        ok = ok and bool(sent and recv)
        rows.append([p.name, "IPv%d" % p.family, p.error or "-",
                     _fmt(sent), _fmt(recv), verdict])
    if as_json:
        w = JsonWriter(out)
        for r in records:
            w.event(r)
    else:
        print(tabulate(rows, headers=["provoked", "family", "application saw",
                                      "RST sent (hook, state, reason, path)",
                                      "RST received (hook, state)",
                                      "verdict"]), file=out)
        summary = Summary()
        for r in records:
            summary.add(r)
        print(file=out)
        print(summary.as_text(), file=out)
    return ok


def _fmt(records):
    if not records:
        return "-"
    r = records[0]
    parts = [r["hook"], r["state"] or "no socket"]
    if r["kind"] == "sent":
        parts.append(r["reason"] or "-")
        parts.append(path_of(r["stack"], 3))
    return ", ".join(parts)
