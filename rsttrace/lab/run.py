"""Run scenarios under one tracer and judge each against its expectations.

One tracer (compiled once) watches every scenario; each scenario gets fresh
namespaces, whose inodes are added to the kernel-side netns filter while it
runs and removed before the namespaces go, so sockets left behind cannot
leak events into the next scenario.
"""

import contextlib
import os
import sys

from rsttrace.kernel import features
from rsttrace.lab import counters as kcounters
from rsttrace.lab import hostwide, leftovers
from rsttrace.lab.expectations import match
from rsttrace.lab import traffic
from rsttrace.lab.catalogue import HOST_WIDE_ENV, host_wide_allowed
from rsttrace.lab.netns import NamespacePair
from rsttrace.lab.witness import Witness
from rsttrace.trace.filters import Filters
from rsttrace.trace.session import Session
from rsttrace.trace.stacks import path_of
from rsttrace.trace.tracer import Tracer, require_root
from rsttrace.trace.visibility import BLIND_SPOTS


class Result:
    def __init__(self, scenario, events, sides, app, error, verdict, ok,
                 notes, counters=None, wire=None):
        self.scenario = scenario
        self.events = events        # records, each with "side" added
        self.sides = sides          # {"a": inode, "b": inode}
        self.app = app              # what the application saw
        self.error = error          # the scenario itself failed
        self.verdict = verdict
        self.ok = ok
        self.notes = notes
        self.counters = counters or {}  # {side: {"TcpExt:X": increase}}
        # with a witness: {side: {"arrived": [Rst], "left": [Rst]}}, the
        # RSTs tcpdump saw reach and leave each side
        self.wire = wire
        self.kernel = os.uname().release
        self.mode = None                # set by run_scenarios
        self.not_run = None             # why it was not run here
        self.messages = []              # what the tracer said meanwhile

    def observed(self):
        return sorted({(e["side"], e["kind"], e["cause"])
                       for e in self.events})

    def as_dict(self):
        return {"scenario": self.scenario.name, "kernel": self.kernel,
                "mode": self.mode,
                "title": self.scenario.title,
                "expected": [e.key() for e in self.scenario.expects],
                "observed": self.observed(), "verdict": self.verdict,
                "ok": self.ok, "application": self.app, "error": self.error,
                "namespaces": self.sides, "counters": self.counters,
                "not_run": self.not_run, "messages": self.messages,
                "events": self.events,
                **({"wire": {side: {k: [r._asdict() for r in rsts]
                                    for k, rsts in seen.items()}
                             for side, seen in self.wire.items()}}
                   if self.wire is not None else {})}


def judge(scenario, events, visibility, error, counters=None,
          release=None):
    """(verdict, ok, notes) for what a scenario's run showed on the kernel
    of `release` (this one by default): each event against the scenario's
    expectations (rsttrace.lab.expectations: side, kind, cause, state,
    emitting function, reason), each expected event seen unless the
    tracer cannot see it on this kernel (`visibility`), and the kernel
    counters' increases ({side: {name: n}}) against the scenario's rules."""
    release = release or os.uname().release
    if error:
        return "ERROR: " + error, False, []
    seen, unexpected = set(), set()
    for e in events:
        exp, why = match(e, scenario.expects + scenario.tolerates, release)
        if exp is not None:
            seen.add(id(exp))
        else:
            unexpected.add(" ".join((e["side"], e["kind"], e["cause"])) +
                           (" (%s)" % why if why else ""))
    notes, missing = [], []
    for exp in scenario.expects:
        spot = visibility.hides(exp.kind, exp.cause)
        if spot:
            notes.append("cannot show %s %s %s here: %s"
                         % (exp.side, exp.kind, exp.cause, BLIND_SPOTS[spot]))
        elif id(exp) not in seen:
            missing.append(" ".join(exp.key()))
    problems = []
    if missing:
        problems.append("missing " + "; ".join(missing))
    if unexpected:
        problems.append("unexpected " + "; ".join(sorted(unexpected)))
    for side, rules in sorted(scenario.counters.items()):
        for p in kcounters.check(rules, (counters or {}).get(side, {})):
            problems.append("%s counter %s" % (side, p))
    if problems:
        return "FAIL: " + ", ".join(problems), False, notes
    if notes and len(notes) == len(scenario.expects):
        return "cannot show: " + "; ".join(notes), True, notes
    if notes:
        return "pass (" + "; ".join(notes) + ")", True, notes
    return "pass", True, notes


def run_record(mode, tracer=None, error=None):
    """The tracer of a catalogue run on this kernel: its mode, bcc, and
    the hooks it could not place and why, or why it could not start at
    all (`error`). The first line of `scenarios run -o`; `rsttrace
    matrix` shows it as a row, so a kernel that cannot run is shown, not
    left out."""
    skipped = {p.hook.name: p.skipped for p in (tracer.placements if tracer
                                                else ()) if p.skipped}
    return {"run": {"bcc": features.bcc_version(), "error": error,
                    "not_hooked": skipped},
            "kernel": os.uname().release,
            "mode": (tracer.mode if tracer and tracer.mode else mode)}


def run_scenarios(scenarios, mode="auto", progress=None, witness=False):
    """Run each scenario; returns [Result]. With `witness`, tcpdump records
    the RSTs on each side's wire too (Result.wire)."""
    require_root()
    progress = progress or (lambda m: print(m, file=sys.stderr, flush=True))
    # what runs killed with SIGKILL left behind
    leftovers.remove_stale_namespaces(progress)
    hostwide.restore_stale(progress)
    said = []           # the tracer's messages (a hook attached late...)

    def warn(line):
        said.append(line)
        progress("rsttrace: " + line)
    tracer = Tracer(mode=mode, filters=Filters(netns_dynamic=True),
                    packets=True, warn=warn)
    records = []
    session = Session(tracer, on_record=records.append)
    session.start()
    visibility = tracer.visibility()
    progress("rsttrace: tracing in %s mode (%s)"
             % (tracer.mode, ", ".join(p.hook.name
                                       for p in tracer.attached())))
    results = []
    try:
        for sc in scenarios:
            progress("scenario %s ..." % sc.name)
            changes = sc.host_wide if (sc.host_wide and
                                       host_wide_allowed()) else None
            first = len(said)
            with hostwide.kept(changes, progress):
                results.append(_run_one(sc, tracer, session, records,
                                        visibility, witness))
            results[-1].mode = tracer.mode
            results[-1].messages = said[first:]
    finally:
        session.finish()
    return results, tracer


def _run_one(sc, tracer, session, records, visibility, witness=False):
    if sc.host_wide and not host_wide_allowed():
        why = "changes the host-wide %s" % sc.host_wide
        note = ("it %s for a moment, which other connections of this host "
                "would feel; it runs in the VM suite, or here with "
                "--host-wide (%s=1)" % (why, HOST_WIDE_ENV))
        res = Result(sc, [], {}, None, None, "cannot show here: " + note,
                     True, [note])
        res.not_run = why
        return res
    pair = NamespacePair()
    app = error = wire = None
    sides, changed = {}, {}
    start = len(records)
    matched_before = tracer.counts()
    try:
        pair.create()
        pair.catch_up = lambda: (traffic.settle(0.05), session.drain())
        sides = {side: pair.inode(side) for side in ("a", "b")}
        for inode in sides.values():
            tracer.watch_netns(inode)
        before = {side: pair.counters(side) for side in sides}
        with Witness(pair) if witness else contextlib.nullcontext() as w:
            try:
                app = sc.fn(pair)
            except Exception as e:  # a scenario that breaks is reported
                error = "%s: %s" % (type(e).__name__, e)
            traffic.settle(0.2)
            session.drain()
        if w is not None:
            wire = {side: {"arrived": w.arrived(side), "left": w.left(side)}
                    for side in sides}
        changed = {side: kcounters.delta(before[side], pair.counters(side))
                   for side in sides}
    finally:
        for inode in sides.values():
            tracer.watch_netns(inode, on=False)
        pair.close()
    session.drain()     # what was let through before the filter closed
    delivered = records[start:]
    matched, lost = (n - b for n, b in zip(tracer.counts(), matched_before))
    side_of = {v: k for k, v in sides.items()}
    events = [dict(r, side=side_of[r["netns"]]) for r in delivered
              if r["netns"] in side_of]
    # The kernel-side netns filter lets only the pair's events through, and
    # every event it let through arrived (none lost, none extra).
    strays = len(delivered) - len(events)
    if strays or lost or matched != len(delivered):
        error = error or ("the tracer's kernel filter passed %d events, %d "
                          "arrived, %d lost, %d from other namespaces"
                          % (matched, len(delivered), lost, strays))
    verdict, ok, notes = judge(sc, events, visibility, error, changed)
    kept = {side: {k: v for k, v in c.items()
                   if k in sc.counters.get(side, {})
                   or any(word in k for word in _KEEP)}
            for side, c in changed.items()}
    return Result(sc, events, sides, app, error, verdict, ok, notes, kept,
                  wire)


# Counters worth keeping with a result: resets, aborts, listen queue, drops.
_KEEP = ("Rst", "Abort", "Listen", "Embryonic", "Challenge", "AttemptFails",
         "EstabResets", "Drop", "Syncookies", "OutRsts")


def table_rows(results):
    rows = []
    for r in results:
        obs = r.observed()
        first = next((e for e in r.events if e["kind"] != "received"),
                     r.events[0] if r.events else None)
        rows.append([
            r.scenario.name,
            "\n".join("%s %s: %s" % e.key() for e in r.scenario.expects)
            or "no RST",
            "\n".join("%s %s: %s" % o for o in obs) or "no RST",
            ("%s: %s" % (first["hook"], path_of(first["stack"], 3)))
            if first else "-",
            (first or {}).get("reason") or "-",
            r.verdict,
        ])
    return rows


TABLE_HEADERS = ["scenario", "expected", "observed", "hook: key frames",
                 "kernel reason", "verdict"]
