"""The summary of a run: RSTs counted by cause, kind, hook, state, reason,
family and kernel path. One builder for the event stream (`--summary`:
add() per record) and for summary mode (rsttrace.trace.kernel_summary,
which counts in the kernel), so both print the same table and the same
`{"kind": "summary"}` record (docs/json-schema.md)."""

import collections

from rsttrace.causes import CAUSES
from rsttrace.output.tables import table
from rsttrace.trace.stacks import path_of

# Frames of the kernel path a row shows: the emitting function and its
# callers, the part that tells RST paths apart.
PATH_DEPTH = 3


class Summary:
    ROW = ("cause", "kind", "hook", "state", "reason", "family", "path")
    MARGINALS = ("kind", "hook", "state", "reason", "cause")

    def __init__(self):
        self.rows = collections.Counter()   # {ROW tuple: count}
        self.lost = 0
        self.kernel_events = None   # events that passed the kernel filters

    def add(self, record, count=1):
        """Count an event record (or `count` events like it)."""
        self.rows[(record.get("cause") or "unknown", record["kind"],
                   record.get("hook") or "-", record.get("state") or "-",
                   record.get("reason") or "-", record.get("family"),
                   path_of(record.get("stack"), PATH_DEPTH))] += count

    @property
    def events(self):
        return sum(self.rows.values())

    def by(self, field):
        """{value of `field`: count}, most common first."""
        i = self.ROW.index(field)
        out = collections.Counter()
        for row, n in self.rows.items():
            out[row[i]] += n
        return dict(out.most_common())

    def as_dict(self):
        return {"kind": "summary", "events": self.events, "lost": self.lost,
                "kernel_events": self.kernel_events,
                "rows": [dict(zip(self.ROW, row), count=n)
                         for row, n in self.rows.most_common()],
                **{"by_" + f: self.by(f) for f in self.MARGINALS}}

    def cause_table(self):
        """The causes seen, with their counts and meaning."""
        return table([(c, n, CAUSES[c].what if c in CAUSES else "")
                      for c, n in self.by("cause").items()],
                     ["cause", "events", "what it means"], [None, None, 70])

    def as_text(self):
        head = "%d events, %d lost" % (self.events, self.lost)
        if self.kernel_events is not None:
            head += " (%d matched in the kernel)" % self.kernel_events
        if not self.rows:
            return head
        rows = table([[r if r is not None else "-" for r in row] + [n]
                      for row, n in self.rows.most_common()],
                     list(self.ROW) + ["count"],
                     [None, None, None, None, None, None, 60])
        return "\n\n".join((head, self.cause_table(), rows))
