"""The scenario catalogue across kernels: one table, scenario x kernel.

Input: the results of `rsttrace scenarios run -o FILE` on each kernel and
attach mode: the run's own record (lab.run.run_record: bcc, the hooks it
could not place, or why it could not run at all), then one JSON object per
scenario, with its kernel release, attach mode, events and counter
changes. A kernel and mode that could not run is a column that says why. Each cell says what that kernel did: the cause of each RST
it sent (or received, when nothing was sent), the function that emitted it
and its caller, and the kernel's reason. Where kernels differ the
difference is called out and, when it follows from a known kernel change or
from the attach mode, explained; anything else is marked unexplained.
"""

from tabulate import tabulate

from rsttrace.errors import RsttraceError
from rsttrace.kernel import history
from rsttrace.output import records
from rsttrace.trace import stacks
from rsttrace.trace.visibility import BLIND_SPOTS, Visibility, spot_of

MODES = ("kprobe", "fentry", "tracepoint")


def load(paths, warn=None):
    """Scenario results and run records from `scenarios run -o` files, as
    dicts."""
    results = []
    what = "`rsttrace scenarios run -o FILE`"
    for path in paths:
        for n, r in records.read(path, what, warn or (lambda m: None)):
            if not ("scenario" in r or "run" in r) or "kernel" not in r:
                raise RsttraceError("%s line %d: not a scenario result"
                                    % (path, n), "give files written by "
                                    + what)
            results.append(r)
    return results


class Column:
    def __init__(self, kernel, mode, not_hooked=()):
        self.kernel, self.mode = kernel, mode
        # hooks its tracer could not place (its run record says why)
        self.not_hooked = frozenset(not_hooked)

    @property
    def label(self):
        return "%s (%s)" % (self.kernel, self.mode)

    def has_reasons(self):
        return history.since(self.kernel, history.RST_REASON)

    def sees(self, spot):
        """Whether this column's tracer saw what visibility.BLIND_SPOTS[spot]
        describes (the scenarios run with --packets)."""
        if spot == "challenge_ack" and CHALLENGE_HOOK in self.not_hooked:
            return False
        return Visibility.of_release(self.kernel, self.mode).sees(spot)


def emitter(stack, hook):
    """The RST function on the stack and its caller: 'caller > function'
    (the hook when the stack has none)."""
    return stacks.emitter(stack, caller=True) or hook or "?"


def items(result, everything=False):
    """What a kernel did in one scenario: (side, kind, cause, path, reason),
    sent RSTs and challenge ACKs, or the received ones if none was sent
    (all of them with `everything`)."""
    evs = result["events"] if everything else (
        [e for e in result["events"] if e["kind"] != "received"] or
        result["events"])
    seen = []
    for e in evs:
        it = (e["side"], e["kind"], e["cause"],
              emitter(e.get("stack"), e.get("hook")), e.get("reason"))
        if it not in seen:
            seen.append(it)
    return seen


def cell(result, rules=None):
    """One table cell; rules: the scenario's counter rules {side: {name:
    rule}}, whose counters the cell shows."""
    if result.get("not_run"):
        return "not run here: it %s" % result["not_run"]
    parts = []
    for side, kind, cause, path, reason in items(result):
        k = "" if kind == "sent" else " (%s)" % kind.replace("_", " ")
        parts.append("%s: **%s**%s `%s`%s" % (
            side, cause, k, path, " %s" % reason if reason else ""))
    if not parts:
        parts.append("no RST")
    changed = result.get("counters") or {}
    for side, names in sorted((rules or {}).items()):
        parts.append("%s: %s" % (side, ", ".join(
            "%s +%d" % (n.split(":", 1)[1], changed.get(side, {}).get(n, 0))
            for n in sorted(names))))
    if not result.get("ok", True):
        parts.append("✗ " + result.get("verdict", "failed"))
    return "<br>".join(parts)


REASON_NOTE = ("before 6.10 the send functions take no reason (enum "
               "sk_rst_reason and the reason argument came with 6.10), so "
               "kprobe mode there reports none")
SOCKETLESS_NOTE = ("tracepoint mode before 6.10 does not see RSTs sent "
                   "without a full socket: tcp:tcp_send_reset fires for "
                   "them only since 6.10")
CHALLENGE_NOTE = ("tracepoint mode cannot see challenge ACKs: "
                  "tcp_send_challenge_ack has no tracepoint")
CHALLENGE_HOOK = "tcp_send_challenge_ack"
UNHOOKED_CHALLENGE_NOTE = ("where the tracer row says tcp_send_challenge_ack "
                           "could not be hooked (fentry on a kernel that has "
                           "only a compiler clone of it) challenge ACKs are "
                           "not seen")
TIME_WAIT_NOTE = ("tracepoint mode before 6.11 does not see RSTs that kill "
                  "TIME_WAIT sockets: no tcp tracepoint fires for them, and "
                  "skb:kfree_skb names the socket of a dropped packet only "
                  "since 6.11")
# The blind spots (trace.visibility) that explain an RST missing from some
# columns, and what the matrix says of them.
BLIND_NOTES = {"socketless": SOCKETLESS_NOTE, "time_wait": TIME_WAIT_NOTE}


class Difference:
    """One way kernels differ in a scenario. `explained` is the known
    reason (kernel version, attach mode) or None."""

    def __init__(self, what, text, explained=None):
        self.what, self.text, self.explained = what, text, explained


class _Row:
    """One scenario's results on the kernels that ran it, for comparing."""

    def __init__(self, columns, row, tolerated):
        self.row = row
        self.present = [c for c in columns if c.label in row
                        and not row[c.label].get("not_run")]
        self.tolerated = set(tolerated)

    def sig(self, c, what):
        """What column c did, as far as `what` is concerned."""
        its = items(self.row[c.label], everything=True)
        tol = self.tolerated
        rsts = [(s, k, cause, p, r) for s, k, cause, p, r in its
                if k != "challenge_ack"]
        if what == "cause":
            return frozenset((s, k, cause) for s, k, cause, _, _ in rsts
                             if (s, k, cause) not in tol)
        if what == "cause_seen_everywhere":
            return frozenset((s, k, cause) for s, k, cause, _, _ in rsts
                             if (s, k, cause) not in tol
                             and spot_of(k, cause) not in BLIND_NOTES)
        if what in BLIND_NOTES:         # the causes only some tracers see
            return frozenset((s, k, cause) for s, k, cause, _, _ in rsts
                             if (s, k, cause) not in tol
                             and spot_of(k, cause) == what)
        if what == "extra":
            return frozenset((s, k, cause) for s, k, cause, _, _ in rsts
                             if (s, k, cause) in tol)
        if what == "challenge":
            return frozenset((s, cause) for s, k, cause, _, _ in its
                             if k == "challenge_ack")
        if what == "path":
            return frozenset(p.split(" > ")[-1] for s, k, cause, p, _ in rsts
                             if (s, k, cause) not in tol)
        if what == "reason":
            return frozenset(r for s, k, cause, _, r in rsts if k == "sent"
                             and (s, k, cause) not in tol)
        raise KeyError(what)

    def differ(self, what):
        return len({self.sig(c, what) for c in self.present}) > 1


def differences(columns, row, tolerated=()):
    """What differs between kernels in one scenario. row: {label: result};
    tolerated: the scenario's allowed side effects {(side, kind, cause)},
    compared apart from what it must show."""
    r = _Row(columns, row, tolerated)
    out, same_cause = _cause_differences(r)
    if r.differ("extra"):
        out.append(Difference("side effects", "side effects the scenario "
                              "tolerates (an RST racing a retransmission or "
                              "a challenge ACK) happened on some kernels only",
                              "timing"))
    out += _challenge_differences(r)
    if same_cause:
        out += _reason_differences(r)
    return out


def _cause_differences(r):
    """([Difference], whether the causes agree once explained)."""
    if not r.differ("cause"):
        if r.differ("path"):
            return [Difference("path", "the same cause comes from different "
                               "functions")], True
        return [], True
    if r.differ("cause_seen_everywhere"):
        return [Difference("cause", "the kernels send or attribute different "
                           "RSTs here; see the events")], False
    # only RSTs some tracers cannot see differ: are they missing just where
    # the tracer cannot see them?
    out = []
    for spot, note in BLIND_NOTES.items():
        shown = {c.label: r.sig(c, spot) for c in r.present}
        every = frozenset().union(*shown.values())
        lacking = [c for c in r.present if shown[c.label] != every]
        if not lacking:
            continue
        if any(c.sees(spot) for c in lacking):
            return [Difference("cause", "%s are seen on some kernels only"
                               % BLIND_SPOTS[spot].split(":")[0])], False
        out.append(Difference("cause", note,
                              "attach mode and kernel version"))
    return out, True


def _challenge_differences(r):
    challenge = {c.label: r.sig(c, "challenge") for c in r.present}
    if len(set(challenge.values())) <= 1:
        return []
    quiet = [c for c in r.present if not challenge[c.label]]
    seen = set().union(*challenge.values())
    if all(not c.sees("challenge_ack") for c in quiet):
        unhooked = any(CHALLENGE_HOOK in c.not_hooked for c in quiet)
        text = "; ".join(
            ([CHALLENGE_NOTE] if any(c.mode == "tracepoint" for c in quiet)
             else []) + ([UNHOOKED_CHALLENGE_NOTE] if unhooked else []))
        return [Difference("challenge ACK", text, "attach mode")]
    if all((side, "challenge_ack", cause) in r.tolerated
           for side, cause in seen):
        return [Difference("challenge ACK", "a challenge ACK the scenario "
                           "tolerates happened on some kernels only",
                           "timing")]
    return [Difference("challenge ACK", "a challenge ACK on some kernels "
                       "only")]


def _reason_differences(r):
    reasons = {c.label: r.sig(c, "reason") for c in r.present}
    if len(set(reasons.values())) <= 1:
        return []
    named = [c for c in r.present if reasons[c.label] - {None}]
    unnamed = [c for c in r.present if reasons[c.label] == {None}]
    if all(c.has_reasons() for c in named) and \
            all(not c.has_reasons() for c in unnamed):
        return [Difference("reason", REASON_NOTE, "kernel version")]
    return [Difference("reason", "the kernels give different reasons")]


def run_cell(record):
    """The tracer row's cell: bcc and the hooks not placed, or why the
    catalogue could not run on that kernel in that mode."""
    if record is None:
        return "–"
    run = record["run"]
    if run.get("error"):
        return "✗ cannot run: %s (bcc %s)" % (run["error"], run.get("bcc"))
    parts = ["bcc %s" % run.get("bcc")]
    for hook, why in sorted((run.get("not_hooked") or {}).items()):
        parts.append("no %s: %s" % (hook, why))
    return "<br>".join(parts)


def build(results, catalogue=()):
    """(columns, rows, runs): columns sorted by kernel version, then mode;
    rows per scenario in catalogue order: (scenario, {label: result},
    differences); runs: {label: run record}."""
    cols = {}
    for r in sorted(results, key=lambda r: "run" not in r):
        c = Column(r["kernel"], r.get("mode", "?"),
                   (r["run"].get("not_hooked") or {}) if "run" in r else ())
        cols.setdefault(c.label, c)
    columns = sorted(cols.values(), key=lambda c: (
        history.version(c.kernel), c.kernel,
        MODES.index(c.mode) if c.mode in MODES else len(MODES), c.mode))
    runs = {Column(r["kernel"], r.get("mode", "?")).label: r
            for r in results if "run" in r}
    results = [r for r in results if "scenario" in r]
    order = [s.name for s in catalogue]
    known = {s.name: s for s in catalogue}
    names = order + sorted({r["scenario"] for r in results} - set(order))
    rows = []
    for name in names:
        row = {Column(r["kernel"], r.get("mode", "?")).label: r
               for r in results if r["scenario"] == name}
        if row:
            allow = getattr(known.get(name), "allow", ())
            rows.append((name, row, differences(columns, row, allow)))
    return columns, rows, runs


def _intro(columns, date):
    out = ["# RSTs across kernels", ""]
    if date:
        out.append("Generated %s by `scripts/kernel-matrix` (`rsttrace "
                   "matrix`) from the scenario catalogue run on each kernel."
                   % date)
        out.append("")
    out.append("Kernels: " + ", ".join("`%s` (%s mode)" % (c.kernel, c.mode)
                                       for c in columns) + ".")
    return out + [
        "", "The first row is the tracer: bcc's version and the hooks it "
        "could not place there, or ✗ and why the catalogue cannot run on "
        "that kernel in that mode. Each other cell: side (a = client, b = "
        "server): **cause** `caller > emitting function` kernel reason; "
        "counters the scenario checks; ✗ marks a scenario that did not go "
        "as expected on that kernel. `–` = not run there.", ""]


def markdown(results, catalogue=(), date=None):
    from rsttrace.lab.catalogue import CATALOGUE
    catalogue = catalogue or CATALOGUE
    by_name = {s.name: s for s in catalogue}
    columns, rows, runs = build(results, catalogue)
    out = _intro(columns, date)
    table = [["(tracer)"] + [run_cell(runs.get(c.label)) for c in columns]
             ] if runs else []
    for name, row, diffs in rows:
        rules = getattr(by_name.get(name), "counters", {})
        cells = [cell(row[c.label], rules) if c.label in row else "–"
                 for c in columns]
        mark = " ⚠" if any(d.explained is None for d in diffs) else ""
        table.append(["`%s`%s" % (name, mark)] + cells)
    out.append(tabulate(table, headers=["scenario"] + [
        "%s<br>(%s)" % (c.kernel, c.mode) for c in columns],
        tablefmt="github"))
    out += ["", "## Differences", ""]
    unexplained = [(name, d) for name, _, diffs in rows for d in diffs
                   if d.explained is None]
    explained = {}
    for name, _, diffs in rows:
        for d in diffs:
            if d.explained:
                explained.setdefault((d.what, d.text, d.explained),
                                     []).append(name)
    if not unexplained and not explained:
        out.append("None: every kernel did the same.")
    if unexplained:
        out += ["Not explained by a known kernel change or the attach mode "
                "(⚠ in the table): look at these first.", ""]
        for name, d in unexplained:
            out.append("- `%s`, %s: %s." % (name, d.what, d.text))
        out.append("")
    if explained:
        out += ["Explained:", ""]
        for (what, text, why), names in explained.items():
            out.append("- %s (%s): %s. In: %s." % (
                what, why, text, ", ".join("`%s`" % n for n in names)))
    notes = [(s.name, s.kernel_note) for s in catalogue
             if getattr(s, "kernel_note", None)
             and any(n == s.name for n, _, _ in rows)]
    if notes:
        out += ["", "## What the kernels' history says", ""]
        for name, note in notes:
            out.append("- `%s`: %s" % (name, note))
    return "\n".join(out) + "\n"
