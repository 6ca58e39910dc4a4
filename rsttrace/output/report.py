"""`rsttrace report`: summarise a saved `trace --json` capture offline."""

import collections

from rsttrace.attribution import attribute_record
from rsttrace.causes import CAUSES, explain
from rsttrace.errors import RsttraceError
from rsttrace.output import records
from rsttrace.output.summary import Summary
from rsttrace.output.tables import (container_text, owner_text, pod_text,
                                    table)

# The fields report reads, and the JSON types each may have.
_TYPES = {"kind": (str,), "cause": (str, type(None)),
          "hook": (str, type(None)), "state": (str, type(None)),
          "reason": (str, type(None)), "family": (int, type(None)),
          "saddr": (str, type(None)), "daddr": (str, type(None)),
          "sport": (int, type(None)), "dport": (int, type(None)),
          "seg_flags": (str, type(None)), "stack": (list, type(None)),
          "owner_pid": (int, type(None)), "owner_comm": (str, type(None)),
          "owner_source": (str, type(None)),
          "container": (dict, type(None)), "pod": (dict, type(None))}
# ... and inside `container` and `pod`
_WHO_TYPES = {"container": {"name": (str, type(None)),
                            "id": (str, type(None))},
              "pod": {"namespace": (str, type(None)),
                      "name": (str, type(None))}}


def _malformed(rec):
    """Why an event record cannot be an rsttrace event, or None."""
    for key, types in _TYPES.items():
        if key in rec and (not isinstance(rec[key], types) or
                           isinstance(rec[key], bool)):
            return "%s is %s" % (key, type(rec[key]).__name__)
    for key, types in _WHO_TYPES.items():
        for sub, allowed in types.items():
            if not isinstance((rec.get(key) or {}).get(sub), allowed):
                return "%s.%s is %s" % (key, sub, type(
                    rec[key][sub]).__name__)
    if rec.get("cause") is not None and rec["cause"] not in CAUSES:
        return "cause %r is not one of rsttrace's" % rec["cause"][:40]
    if any(not isinstance(f, str) for f in rec.get("stack") or ()):
        return "stack holds something other than frame names"
    return None


def load(path, warn):
    """(events, lost) of a capture: its event records and the events it
    says were lost. Records that are not events are skipped with a
    warning; a file with no events at all is an error."""
    events, lost, skipped = [], 0, []
    for n, rec in records.read(path, "`rsttrace trace --json`", warn):
        kind = rec.get("kind")
        if kind == "lost" and isinstance(rec.get("count"), int):
            lost += rec["count"]
        elif kind in records.EVENT_KINDS and not _malformed(rec):
            events.append(rec)
        elif kind not in records.OTHER_KINDS:
            skipped.append("line %d: %s" % (
                n, _malformed(rec) if kind in records.EVENT_KINDS
                else "kind %r" % (kind,)))
    if skipped:
        warn("%s: skipped %d records that are not rsttrace events (%s)"
             % (path, len(skipped), "; ".join(skipped[:3])))
    return events, lost


def _owner(rec):
    """An event's owner as counted: comm[pid], else why it has none."""
    if rec.get("owner_pid") is None and rec.get("owner_source"):
        return "none (%s)" % rec["owner_source"]
    return owner_text(rec)


# report key -> an event's value for it (`-`: none, or an older capture)
WHO = {"by_owner": _owner, "by_container": container_text,
       "by_pod": pod_text}


def summarise(capture, path):
    """The report of (events, lost) from load()."""
    events, lost = capture
    if not events:
        raise RsttraceError("no events in %s" % path,
                            "give a capture of `rsttrace trace --json` that "
                            "saw RSTs")
    summary = Summary()
    by_peer = collections.Counter()
    by_port = collections.Counter()
    by_who = {k: collections.Counter() for k in WHO}
    for r in events:
        if not r.get("cause"):          # older capture: attribute now
            r = dict(r, cause=attribute_record(r)[0])
        summary.add(r)
        # The peer is the remote end: the destination of an RST we sent,
        # the source of one we received.
        if r["kind"] == "received":
            peer, port = r.get("saddr"), r.get("dport")
        else:
            peer, port = r.get("daddr"), r.get("sport")
        by_peer[peer or "?"] += 1
        by_port[port if port is not None else "?"] += 1
        for key, text in WHO.items():
            by_who[key][text(r)] += 1
    return {
        "events": len(events), "lost": lost,
        "by_cause": [{"cause": c, "count": n, "explanation": explain(c)}
                     for c, n in summary.by("cause").items()],
        "by_peer": dict(by_peer.most_common(20)),
        "by_local_port": {str(k): v for k, v in by_port.most_common(20)},
        **{key: dict(c.most_common(20)) for key, c in by_who.items()},
    }


def as_text(rep):
    parts = ["%d events, %d lost" % (rep["events"], rep["lost"])]
    parts.append(table([(c["cause"], c["count"], c["explanation"])
                        for c in rep["by_cause"]],
                       ["cause", "events", "explanation"], [None, None, 80]))
    parts.append(table(rep["by_peer"].items(), ["peer", "events"]))
    parts.append(table(rep["by_local_port"].items(),
                       ["local port", "events"]))
    for key, heading in (("by_owner", "owner"), ("by_container", "container"),
                         ("by_pod", "pod")):
        if set(rep[key]) - {"-"}:       # a capture with who-fields
            parts.append(table(rep[key].items(), [heading, "events"]))
    return "\n\n".join(parts)
