"""`rsttrace report`: summarise a saved `trace --json` capture offline."""

import collections

from rsttrace.attribution import attribute_record
from rsttrace.causes import CAUSES, explain
from rsttrace.errors import RsttraceError
from rsttrace.facts import Facts
from rsttrace.output import records
from rsttrace.output.summary import Summary
from rsttrace.output.tables import (container_text, owner_text, pod_text,
                                    table)

# The fields report reads, and the JSON types each may have: those it
# counts by, and those an older capture without causes is attributed from
# (Facts.of_record compares linger2 and the backlog with numbers; the other
# facts are read as true or false, which any value is).
_NONE = type(None)
_TYPES = {"kind": (str,), "cause": (str, _NONE), "hook": (str, _NONE),
          "state": (str, _NONE), "reason": (str, _NONE),
          "family": (int, _NONE), "saddr": (str, _NONE),
          "daddr": (str, _NONE), "sport": (int, _NONE), "dport": (int, _NONE),
          "seg_flags": (str, _NONE), "stack": (list, _NONE),
          "linger2": (int, float, _NONE), "backlog": (int, _NONE),
          "backlog_max": (int, _NONE), "owner_pid": (int, _NONE),
          "owner_comm": (str, _NONE), "owner_source": (str, _NONE),
          "container": (dict, _NONE), "pod": (dict, _NONE)}
# ... and inside `container` and `pod`
_WHO_TYPES = {"container": {"name": (str, _NONE), "id": (str, _NONE)},
              "pod": {"namespace": (str, _NONE), "name": (str, _NONE)}}


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


def _owner(rec):
    """An event's owner as counted: comm[pid], else why it has none."""
    if rec.get("owner_pid") is None and rec.get("owner_source"):
        return "none (%s)" % rec["owner_source"]
    return owner_text(rec)


# report key -> an event's value for it (`-`: none, or an older capture)
WHO = {"by_owner": _owner, "by_container": container_text,
       "by_pod": pod_text}


class Tally:
    """What a report counts, one event record at a time."""

    def __init__(self):
        self.summary = Summary()
        self.by_peer = collections.Counter()
        self.by_port = collections.Counter()
        self.by_who = {k: collections.Counter() for k in WHO}
        self.lost = 0

    def add(self, r):
        if r["kind"] == "received":
            # a capture of schema version 1 called the kernel's own aborts
            # received (facts.own_abort): they are not counted as such
            r = dict(r, kind=Facts.of_record(r).kind)
        if not r.get("cause"):          # older capture: attribute now
            r = dict(r, cause=attribute_record(r)[0])
        self.summary.add(r)
        # The peer is the remote end: the destination of an RST we sent,
        # the source of one we received (or of the segment an abort
        # answers).
        if r["kind"] in ("received", "abort"):
            peer, port = r.get("saddr"), r.get("dport")
        else:
            peer, port = r.get("daddr"), r.get("sport")
        self.by_peer[peer or "?"] += 1
        self.by_port[port if port is not None else "?"] += 1
        for key, text in WHO.items():
            self.by_who[key][text(r)] += 1


def events(paths, warn, on_lost=None):
    """The event records of a capture, in order: the files of `paths` (one
    path or several; a rotated set is found from its first file, see
    records.capture_files). `lost` records go to on_lost(count); records
    that are not events are skipped with a warning per file."""
    for path in records.capture_files([paths] if isinstance(paths, str)
                                      else paths):
        skipped, examples = 0, []
        for n, rec in records.lines(path, "`rsttrace trace --json`", warn):
            kind = rec.get("kind")
            if kind == "lost" and isinstance(rec.get("count"), int):
                if on_lost is not None:
                    on_lost(rec["count"])
            elif kind in records.EVENT_KINDS and not _malformed(rec):
                yield rec
            elif kind not in records.OTHER_KINDS:
                skipped += 1
                if len(examples) < 3:
                    examples.append("line %d: %s" % (
                        n, _malformed(rec) if kind in records.EVENT_KINDS
                        else "kind %r" % (kind,)))
        if skipped:
            warn("%s: skipped %d records that are not rsttrace events (%s)"
                 % (path, skipped, "; ".join(examples)))


def load(paths, warn):
    """The Tally of a capture (see events())."""
    tally = Tally()

    def lost(count):
        tally.lost += count
    for rec in events(paths, warn, lost):
        tally.add(rec)
    return tally


def summarise(tally, shown):
    """The report of a Tally from load(); `shown` names the capture."""
    if not tally.summary.events:
        raise RsttraceError("no events in %s" % shown,
                            "give a capture of `rsttrace trace --json` that "
                            "saw RSTs")
    return {
        "events": tally.summary.events, "lost": tally.lost,
        # sent and received RSTs, challenge ACKs and the kernel's own aborts
        "by_kind": tally.summary.by("kind"),
        "by_cause": [{"cause": c, "count": n, "explanation": explain(c)}
                     for c, n in tally.summary.by("cause").items()],
        "by_peer": dict(tally.by_peer.most_common(20)),
        "by_local_port": {str(k): v
                          for k, v in tally.by_port.most_common(20)},
        **{key: dict(c.most_common(20)) for key, c in tally.by_who.items()},
    }


def as_text(rep):
    parts = ["%d events (%s), %d lost" % (
        rep["events"], ", ".join("%d %s" % (n, k.replace("_", " "))
                                 for k, n in rep["by_kind"].items()),
        rep["lost"])]
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
