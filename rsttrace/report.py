"""`rsttrace report`: summarise a saved `trace --json` capture offline."""

import collections
import json

from tabulate import tabulate

from .attribution import CAUSES, attribute
from .errors import RsttraceError
from .output import table

EVENT_KINDS = ("sent", "received", "challenge_ack")


def load(path):
    """Event records of a JSON-lines capture; other records (lost,
    summary) are kept aside under their kind."""
    records = []
    try:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except ValueError:
                    raise RsttraceError(
                        "%s line %d is not JSON" % (path, n),
                        "give a file written by `rsttrace trace --json`")
    except OSError as e:
        raise RsttraceError("cannot read %s (%s)" % (path, e.strerror),
                            "check the path")
    return records


def summarise(records):
    events = [r for r in records if r.get("kind") in EVENT_KINDS]
    lost = sum(r.get("count", 0) for r in records if r.get("kind") == "lost")
    by_cause = collections.Counter()
    by_peer = collections.Counter()
    by_port = collections.Counter()
    for r in events:
        cause = r.get("cause")
        if not cause and "stack" in r:      # older capture: attribute now
            cause = attribute(r)[0]
        by_cause[cause or "unknown"] += 1
        # The peer is the remote end: the destination of an RST we sent,
        # the source of one we received.
        if r["kind"] == "received":
            peer, port = r.get("saddr"), r.get("dport")
        else:
            peer, port = r.get("daddr"), r.get("sport")
        by_peer[peer or "?"] += 1
        by_port[port if port is not None else "?"] += 1
    return {
        "events": len(events), "lost": lost,
        "by_cause": [{"cause": c, "count": n,
                      "explanation": "%s; %s." % CAUSES.get(
                          c, CAUSES["unknown"])}
                     for c, n in by_cause.most_common()],
        "by_peer": dict(by_peer.most_common(20)),
        "by_local_port": {str(k): v for k, v in by_port.most_common(20)},
    }


def as_text(rep):
    parts = ["%d events, %d lost" % (rep["events"], rep["lost"])]
    parts.append(table([(c["cause"], c["count"], c["explanation"])
                        for c in rep["by_cause"]],
                       ["cause", "events", "explanation"], [None, None, 80]))
    parts.append(tabulate(rep["by_peer"].items(),
                          headers=["peer", "events"]))
    parts.append(tabulate(rep["by_local_port"].items(),
                          headers=["local port", "events"]))
    return "\n\n".join(parts)
