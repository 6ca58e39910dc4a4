"""Where event records go. Every writer has the same four methods:

    event(record)           one event record (rsttrace.trace.decode.FIELDS)
    lost(count, total)      events the kernel had no room for
    summary(summary)        an rsttrace.output.summary.Summary, at the end
    flush()                 after every batch the session reads

JsonWriter writes JSON lines (docs/json-schema.md), RowWriter readable rows,
rsttrace.output.pcapng.PcapngWriter a pcapng capture (`-w`); Tee writes to
several at once. Adding an output format: a class with these methods here
(or in a module of its own beside this one), and its option in
rsttrace/cli/trace.py.
"""

import json
import textwrap

from rsttrace.output.tables import (container_text, endpoint, owner_text,
                                    who_text)

# The record's keys that repeat within a storm (a few causes, explanations
# and stacks): JsonWriter encodes them once per combination.
TAIL = ("cause", "explanation", "stack")
TAILS_KEPT = 4096


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


class JsonWriter:
    """One JSON object per line. Lines are flushed by flush(), which the
    session calls after every batch it reads (at most 100 ms apart), not
    per line: in a storm a flush per event would cost more than the event.
    """

    def __init__(self, stream, stacks=True):
        self.stream = stream
        self.stacks = stacks
        self._dumps = json.JSONEncoder(separators=(",", ":")).encode
        self._tails = {}

    def event(self, record):
        # The explanation is a long sentence and the stack a long list, so
        # encoding them is most of a line's cost: the tail is made once per
        # value of those keys, the rest of the line each time.
        key = tuple((k, _hashable(record[k])) for k in TAIL
                    if k in record and (self.stacks or k != "stack"))
        tail = self._tails.get(key)
        if tail is None:
            if len(self._tails) > TAILS_KEPT:
                self._tails.clear()
            tail = self._tails[key] = "".join(
                ',"%s":%s' % (k, self._dumps(v)) for k, v in key) + "}\n"
        head = self._dumps({k: v for k, v in record.items()
                            if k not in TAIL})
        line = head[:-1] + tail
        self.stream.write(line if line[1] != "," else "{" + line[2:])

    def lost(self, count, total):
        self._write({"kind": "lost", "count": count, "total": total})

    def summary(self, summary):
        self._write(summary.as_dict())

    def flush(self):
        self.stream.flush()

    def _write(self, obj):
        self.stream.write(self._dumps(obj) + "\n")
        self.stream.flush()


# (heading, width, value of a record). The default row fits 80 columns
# (IPv4), with who is behind the RST on the line below it; --wide adds the
# hook, reason, task, context, owner and container as columns.
_TIME = ("TIME", 12, lambda r: r["time"][11:23])
_KIND = ("KIND", 8, lambda r: r["kind"])
_STATE = ("STATE", 11, lambda r: r["state"] or "-")
_SOURCE = ("SOURCE", 21, lambda r: endpoint(r["saddr"], r["sport"]))
_DEST = ("DEST", 21, lambda r: endpoint(r["daddr"], r["dport"]))
NARROW = (_TIME, _KIND, _STATE, _SOURCE, _DEST)
WIDE = (("TIME", 15, lambda r: r["time"][11:26]), _KIND,
        ("HOOK", 22, lambda r: r["hook"]), _STATE,
        ("REASON", 18, lambda r: r["reason"] or "-"),
        ("SOURCE", 27, _SOURCE[2]), ("DEST", 27, _DEST[2]),
        ("PID", 7, lambda r: r["pid"]), ("COMM", 15, lambda r: r["comm"]),
        ("CTX", 7, lambda r: r["context"] or "-"),
        ("OWNER", 22, owner_text), ("CONTAINER", 16, container_text))
LINE_WIDTH = 79


class RowWriter:
    """A row per event, its cause below it, the kernel stack indented."""

    def __init__(self, stream, stacks=True, wide=False):
        self.stream = stream
        self.stacks = stacks
        self.columns = WIDE if wide else NARROW
        self.wide = wide
        self.header_done = False

    def _line(self, values):
        # A value longer than its column (an IPv6 endpoint) pushes the rest
        # right rather than being cut.
        return " ".join(str(v).ljust(w) for v, (_, w, _)
                        in zip(values, self.columns)).rstrip()

    def event(self, record):
        out = []
        if not self.header_done:
            out.append(self._line([h for h, _, _ in self.columns]))
            self.header_done = True
        out.append(self._line([get(record) for _, _, get in self.columns]))
        who = None if self.wide else who_text(record)
        if who:
            out.append("\n".join(textwrap.wrap(
                who, LINE_WIDTH, initial_indent="    ",
                subsequent_indent="      ")))
        if record.get("cause"):
            text = "cause: %s: %s" % (record["cause"],
                                      record["explanation"])
            out.append("    " + text if self.wide else "\n".join(textwrap.wrap(
                text, LINE_WIDTH, initial_indent="    ",
                subsequent_indent="      ")))
        if self.stacks:
            out.extend("    " + f for f in record.get("stack") or ())
        self.stream.write("\n".join(out) + "\n")

    def flush(self):
        self.stream.flush()

    def lost(self, count, total):
        self.stream.write("LOST %d events (event buffer full), %d in all\n"
                          % (count, total))
        self.stream.flush()

    def summary(self, summary):
        self.stream.write(summary.as_text() + "\n")
        self.stream.flush()


class Tee:
    """Several writers as one (`trace -w FILE --json`)."""

    def __init__(self, *writers):
        self.writers = writers

    def event(self, record):
        for w in self.writers:
            w.event(record)

    def lost(self, count, total):
        for w in self.writers:
            w.lost(count, total)

    def summary(self, summary):
        for w in self.writers:
            w.summary(summary)

    def flush(self):
        for w in self.writers:
            w.flush()


class SummaryOnly:
    """A writer's losses and summary without its events (`trace -w FILE
    --summary`: the capture holds the events, the text output the rest)."""

    def __init__(self, writer):
        self.writer = writer

    def event(self, record):
        pass

    def lost(self, count, total):
        self.writer.lost(count, total)

    def summary(self, summary):
        self.writer.summary(summary)

    def flush(self):
        self.writer.flush()
