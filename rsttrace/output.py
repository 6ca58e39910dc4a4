"""Writing events: JSON lines, readable rows, and the summary tables."""

import collections
import json

import textwrap

from tabulate import tabulate

from .event import base_name

ROW_COLUMNS = (("TIME", 15), ("KIND", 8), ("HOOK", 22), ("STATE", 11),
               ("REASON", 18), ("SOURCE", 27), ("DEST", 27), ("PID", 7),
               ("COMM", 15), ("CTX", 7))


def _endpoint(addr, port):
    if addr is None:
        return "?"
    return ("[%s]:%s" % (addr, port)) if ":" in addr else "%s:%s" % (addr,
                                                                     port)


def _compact_dumps():
    """json.dumps(obj, separators=(",", ":")), with the C encoder made once
    instead of per call where this Python has it."""
    enc = json.JSONEncoder(separators=(",", ":"))
    try:
        from json.encoder import c_make_encoder, encode_basestring_ascii
    except ImportError:
        c_make_encoder = None
    if c_make_encoder is None:
        return enc.encode
    c = c_make_encoder(None, enc.default, encode_basestring_ascii, None,
                       ":", ",", False, False, True)

    def dumps(obj):
        if isinstance(obj, (dict, list)):
            return "".join(c(obj, 0))
        return enc.encode(obj)
    return dumps


class JsonWriter:
    """One JSON object per line. Lines are flushed by flush(), which the
    session calls after every batch it reads (at most 100 ms apart), not
    per line: in a storm a flush per event would cost more than the event.
    """

    def __init__(self, stream):
        self.stream = stream
        self._dumps = _compact_dumps()
        self._tails = {}

    def event(self, record):
        # cause, explanation and stack are the record's last keys and, in a
        # storm, the same few values again and again (the decoder keeps one
        # stack list per stack; the explanation, a long sentence, comes
        # from a small set): their JSON is made once per combination.
        if not {"cause", "explanation", "stack"} <= record.keys():
            self.stream.write(self._dumps(record) + "\n")
            return
        cause = record.pop("cause")
        explanation = record.pop("explanation")
        stack = record.pop("stack")
        try:
            key = (cause, explanation, id(stack))
            tail = self._tails.get(key)
            if tail is None or tail[0] is not stack:
                if len(self._tails) > 4096:
                    self._tails.clear()
                tail = self._tails[key] = (stack, ',"cause":%s,"explanation":'
                                           '%s,"stack":%s}\n' % (
                                               self._dumps(cause),
                                               self._dumps(explanation),
                                               self._dumps(stack)))
            self.stream.write(self._dumps(record)[:-1] + tail[1])
        finally:
            record["cause"] = cause
            record["explanation"] = explanation
            record["stack"] = stack

    def lost(self, count, total):
        self._write({"kind": "lost", "count": count, "total": total})

    def summary(self, summary):
        self._write(dict(kind="summary", **summary.as_dict()))

    def flush(self):
        self.stream.flush()

    def _write(self, obj):
        self.stream.write(self._dumps(obj) + "\n")
        self.stream.flush()


class RowWriter:
    """A fixed-width row per event, the kernel stack indented below it."""

    def __init__(self, stream, stacks=True):
        self.stream = stream
        self.stacks = stacks
        self.header_done = False

    def _line(self, values):
        return "  ".join(str(v)[:w].ljust(w) for v, (_, w)
                         in zip(values, ROW_COLUMNS)).rstrip()

    def event(self, record):
        if not self.header_done:
            self.stream.write(self._line([c for c, _ in ROW_COLUMNS]) + "\n")
            self.header_done = True
        row = [record["time"][11:26], record["kind"], record["hook"],
               record["state"] or "-", record["reason"] or "-",
               _endpoint(record["saddr"], record["sport"]),
               _endpoint(record["daddr"], record["dport"]),
               record["pid"], record["comm"], record["context"] or "-"]
        out = [self._line(row)]
        if record.get("cause"):
            out.append("    cause: %s: %s" % (record["cause"],
                                              record["explanation"]))
        if self.stacks:
            out.extend("    " + f for f in record.get("stack") or ())
        self.stream.write("\n".join(out) + "\n")

    def flush(self):
        self.stream.flush()

    def lost(self, count, total):
        self.stream.write("LOST %d events (ring buffer full), %d in all\n"
                          % (count, total))
        self.stream.flush()

    def summary(self, summary):
        self.stream.write(summary.as_text() + "\n")
        self.stream.flush()


class Summary:
    """Counts by kind, hook, state, reason, cause and kernel path."""

    KEYS = ("kind", "hook", "state", "reason", "cause")

    def __init__(self):
        self.total = 0
        self.lost = 0
        self.kernel_events = None   # events that passed the kernel filters
        self.by = {k: collections.Counter() for k in self.KEYS}
        self.paths = collections.Counter()

    def add(self, record):
        self.total += 1
        for k in self.KEYS:
            self.by[k][record.get(k) or "-"] += 1
        self.paths[path_of(record["stack"])] += 1

    def as_dict(self):
        return {"events": self.total, "lost": self.lost,
                "kernel_events": self.kernel_events,
                **{"by_" + k: dict(self.by[k].most_common()) for k in self.KEYS},
                "top_paths": dict(self.paths.most_common(10))}

    def as_text(self):
        parts = ["%d events, %d lost" % (self.total, self.lost)]
        for k in self.KEYS:
            if self.by[k]:
                parts.append(tabulate(self.by[k].most_common(),
                                      headers=[k, "count"]))
        if self.paths:
            parts.append(tabulate(self.paths.most_common(10),
                                  headers=["kernel path (innermost first)",
                                           "count"]))
        return "\n\n".join(parts)


def path_of(stack, depth=4):
    """The first frames of a stack, the part that tells RST paths apart."""
    if not stack:
        return "-"
    return " < ".join(base_name(f) for f in stack[:depth])


def table(rows, headers, widths=()):
    """tabulate, with the cells of column i wrapped at widths[i] characters
    (None: not wrapped). Wrapped here: tabulate's own maxcolwidths came in
    0.8.10, and Debian 11 and 12 ship 0.8.7 and 0.8.9."""
    def wrap(cell, width):
        if width is None or not isinstance(cell, str):
            return cell
        return "\n".join(line for part in cell.split("\n")
                         for line in (textwrap.wrap(part, width) or [""]))
    widths = list(widths)
    return tabulate([[wrap(c, widths[i] if i < len(widths) else None)
                      for i, c in enumerate(row)] for row in rows],
                    headers=headers)
