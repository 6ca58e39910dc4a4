"""What each scenario must make the kernels report, and what it tolerates,
stated apart from the code in expectations.json (reviewed like code, one
line why each). Scenario verdicts and the classifier's tests on recorded
events both judge by it; regenerating recordings never rewrites it, so a
changed classification fails until an expectation is edited on purpose.

An expectation names the side ("a" client, "b" server), kind and cause of
an event, and (where known) the socket state, the emitting function (the
RST function on the stack: stacks.emitter) and the kernel's reason from
6.10 on (history.RST_REASON; none before). A tolerated event may leave
state and emitter out: any will do. An emitter may be a list of the ones
allowed (null: none), where attach modes see the event at different places
(an RST killing a TIME_WAIT socket: inet_twsk_deschedule_put with kprobes,
no RST function on the stack of the tracepoint mode's skb:kfree_skb).
"""

import json
import os

from rsttrace.kernel import history
from rsttrace.trace.stacks import emitter

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                    "expectations.json")
ANY = object()


class Expect:
    def __init__(self, side, kind, cause, why, state=ANY, emitter=ANY,
                 reason=None):
        self.side, self.kind, self.cause = side, kind, cause
        self.why = why
        self.state = state          # None: no socket; ANY: not stated
        self.emitter = tuple(emitter) if isinstance(emitter, list) \
            else emitter
        self.reason = reason        # from 6.10 on; None: never one

    def key(self):
        return (self.side, self.kind, self.cause)

    def emits(self, got):
        """Whether `got` (emitter_of an event) is an emitter it allows."""
        if self.emitter is ANY:
            return True
        if isinstance(self.emitter, tuple):
            return got in self.emitter
        return got == self.emitter

    def mismatch(self, event, release):
        """Why `event` (a record with "side") is not this expectation on a
        kernel of `release`, or None when it is."""
        if (event["side"], event["kind"], event["cause"]) != self.key():
            return "another event"
        if self.state is not ANY and event.get("state") != self.state:
            return "state %s, expected %s" % (event.get("state"), self.state)
        got = emitter_of(event)
        if not self.emits(got):
            return "emitted by %s, expected %s" % (got, self.emitter)
        want = self.reason if history.since(release, history.RST_REASON) \
            else None
        if event.get("reason") != want:
            return "reason %s, expected %s" % (event.get("reason"), want)
        return None


def emitter_of(event):
    """The RST function of an event: from its stack, else its hook when
    that is a function (kprobe and fentry modes; a tracepoint is not)."""
    hook = event.get("hook") or ""
    return emitter(event.get("stack")) or (hook if ":" not in hook
                                           else None)


def load(path=PATH):
    """{scenario name: (must [Expect], tolerate [Expect])}."""
    with open(path) as f:
        data = json.load(f)
    return {name: tuple([Expect(**e) for e in entry[group]]
                        for group in ("must", "tolerate"))
            for name, entry in data.items()}


def match(event, expects, release):
    """(the first Expect that `event` is, or None; why not, for the
    closest one: same side, kind and cause)."""
    why = None
    for exp in expects:
        problem = exp.mismatch(event, release)
        if problem is None:
            return exp, None
        if problem != "another event":
            why = why or problem
    return None, why
