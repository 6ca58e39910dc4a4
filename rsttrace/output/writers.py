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
import operator
import textwrap

from rsttrace.output.tables import (container_text, endpoint, owner_text,
                                    who_text)
from rsttrace.trace.decode import (FIELDS, INT_FIELDS, PLAIN_TEXT_FIELDS,
                                   WHO_FIELDS)

TEMPLATES_KEPT = 65536
_encode = json.JSONEncoder(separators=(",", ":")).encode
_encode_str = json.encoder.encode_basestring_ascii


def _getter(keys):
    """record -> the tuple of its values of `keys`."""
    if len(keys) > 1:
        return operator.itemgetter(*keys)
    return lambda record: tuple(record[k] for k in keys)


_WHO_OF = _getter(WHO_FIELDS)
WHO_TEXTS_KEPT = 4096


def _runs(keys, order):
    """The runs of `keys` next to each other in `order`: tuples of their
    indices in `keys`."""
    runs, last = [], None
    for i, k in enumerate(order):
        if k in keys:
            if last != i - 1:
                runs.append(())
            runs[-1] += (keys.index(k),)
            last = i
    return tuple(runs)


# The runs of who-fields in a line: each is one piece of JSON text per who
# answer (JsonWriter._who_text).
_WHO_RUNS = _runs(WHO_FIELDS, FIELDS)


class JsonWriter:
    """One JSON object per line. The stream (rsttrace.output.capture.Capture
    in the CLI) holds the lines until flush(), which the session calls after
    every batch it reads (at most 100 ms apart): in a storm a write, let
    alone a flush, per event would cost more than the event.

    An event comes as a record (event(record)) or, where nothing else needs
    the record, as the decoder's (layout, values) and who is behind it
    (event_of(); see rsttrace.trace.decode.Layout): the line is the same.
    The values an event shares with the others of its layout (SHAPE_FIELDS,
    and None where the layout has no value) are encoded once into a line
    template, and only the event's own values per line: its ints and plain
    text (INT_FIELDS, PLAIN_TEXT_FIELDS) by the format itself, the rest
    (the task name...) encoded one by one, who is behind it from a text
    kept per answer (_who_text()).
    """

    def __init__(self, stream, stacks=True):
        self.stream = stream
        self.stacks = stacks
        self._dumps = _encode
        self._templates = {}        # layout -> _template() or None
        self._head_makers = {}      # see _head_maker()
        self._who_texts = {}        # who -> its runs' text (_who_text())

    def event(self, record):
        layout = getattr(record, "layout", None)
        template = self._templates.get(layout) or self._template_of(layout)
        if template is not None:
            head_of, tail, own_of = template
            try:
                head = head_of(own_of(record), _WHO_OF(record))
            except TypeError:       # a value not of its key's type
                pass
            else:
                # two pieces: a line is longer than Python's small objects,
                # and its tail is the same string every time
                self.stream.write(head)
                self.stream.write(tail)
                return
        self._whole(record)

    def event_of(self, layout, values, who):
        """The line of an event of `layout` with its own `values` and `who`
        values (WHO_FIELDS), no record made."""
        template = self._templates.get(layout) or self._template_of(layout)
        if template is not None:
            try:
                head = template[0](values, who)
            except TypeError:
                pass
            else:
                self.stream.write(head)
                self.stream.write(template[1])
                return
        self._whole(layout.record(values, who))

    def _whole(self, record):
        """The line of a record encoded whole (json.dumps), without its
        stack under --no-stack."""
        if not self.stacks:
            record = {k: v for k, v in record.items() if k != "stack"}
        self.stream.write(self._dumps(record) + "\n")

    def _template_of(self, layout):
        """The line template of `layout`; None for a record without one,
        and for a layout's first event (a layout seen once, as a new
        stack's, costs less encoded whole than templated)."""
        if layout is None:
            return None
        template = self._templates.get(layout, False)
        if template:
            return template
        if template is False:
            if len(self._templates) > TEMPLATES_KEPT:
                self._templates.clear()
            self._templates[layout] = None
            return None
        template = self._templates[layout] = self._template(layout)
        return template

    def _template(self, layout):
        """(head(values, who), tail, own_of) of the JSON lines of `layout`'s
        events: a line is head(), a format applied to the event's own
        values and who values, then the tail, the part after its last own
        value (the cause, the explanation and the stack, as a rule: most of
        the line); own_of(record) gives a record's own values. Its ints and
        plain text go into the format as they are (%d, "%s"), the other
        values encoded one by one (None, an int and text inline, anything
        else by json). head() is written out as code (the values by
        position, never a key or a value in the code), a loop over the
        values costing more than the formatting."""
        own = {k: "v%d" % i for i, k in enumerate(layout.own)}
        # a run of who-fields is one value: its text (_who_text())
        own.update((WHO_FIELDS[run[0]], "w%d" % i)
                   for i, run in enumerate(_WHO_RUNS))
        parts, args, fixed = [], [], []
        for k in FIELDS:
            if k == "stack" and not self.stacks:
                continue
            name = own.get(k)
            if name is None:
                if k not in WHO_FIELDS:
                    fixed.append('"%s":%s' % (k, self._dumps(
                        layout.base[k])))
                continue
            # what came before this value, % as %%
            parts += [p.replace("%", "%%") for p in fixed]
            fixed = []
            if name[0] == "w":
                parts.append("%s")
                args.append(name)
            elif k in INT_FIELDS:
                parts.append('"%s":%%d' % k)
                args.append(name)
            elif k in PLAIN_TEXT_FIELDS:
                parts.append('"%s":"%%s"' % k)
                args.append(name)
            else:
                parts.append('"%s":%%s' % k)
                args.append('(%s if %s.__class__ is int else "null" if %s '
                            'is None else enc_str(%s) if %s.__class__ is str '
                            'else enc(%s))' % ((name,) * 6))
        tail = "".join("," + p for p in fixed) + "}\n"
        return (self._head_maker(layout.own, args)("{" + ",".join(parts)),
                tail, _getter(layout.own))

    def _head_maker(self, own, args):
        """fmt -> head(values, who) for events with own values for the keys
        `own`: the code is the same for every layout with those keys (a
        handful per run), only the format differs."""
        maker = self._head_makers.get(own)
        if maker is None:
            scope = {"enc_str": _encode_str, "enc": self._dumps,
                     "texts": self._who_texts, "who_text": self._who_text}
            exec("def maker(fmt):\n"
                 "    def head(values, who):\n"
                 "        %s, = values\n"
                 "        try:\n"
                 "            %s, = texts[who]\n"
                 "        except (KeyError, TypeError):\n"
                 "            %s, = who_text(who)\n"
                 "        return fmt %% (%s,)\n"
                 "    return head\n" % (
                     ", ".join("v%d" % i for i in range(len(own))),
                     ", ".join("w%d" % i for i in range(len(_WHO_RUNS))),
                     ", ".join("w%d" % i for i in range(len(_WHO_RUNS))),
                     ", ".join(args)), scope)
            maker = self._head_makers[own] = scope["maker"]
        return maker

    def _who_text(self, who):
        """The JSON text of each run of who-fields (_WHO_RUNS) of a who
        answer (WHO_FIELDS order), kept when the answer can key a dict (a
        storm repeats a few)."""
        text = tuple(",".join('"%s":%s' % (WHO_FIELDS[i],
                                           self._dumps(who[i])) for i in run)
                     for run in _WHO_RUNS)
        try:
            if len(self._who_texts) > WHO_TEXTS_KEPT:
                self._who_texts.clear()
            self._who_texts[who] = text
        except TypeError:           # not hashable (a plain dict in it)
            pass
        return text

    def lost(self, count, total):
        self._write({"kind": "lost", "count": count, "total": total})

    def summary(self, summary):
        self._write(summary.as_dict())

    def flush(self):
        self.stream.flush()

    def _write(self, obj):
        self.stream.write(self._dumps(obj) + "\n")
        self.flush()


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
