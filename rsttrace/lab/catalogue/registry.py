"""The scenario catalogue's parts: what a scenario is and expects, and
the registry its theme modules fill."""

import os

from rsttrace.errors import UsageError

SOURCES = {
    "000": "000_4a120cfabbeb7e17.txt (no listener, linger 0, half-open, "
           "unread data, data on a closed connection)",
    "002": "002_37bc01fa81fe7989.txt (firewall, accept overflow, TIME_WAIT, "
           "listener closed, 5-tuple, close after connect)",
    "003": "003_bee906c291706243.txt (kernel view, RST validation, "
           "challenge ACK)",
    "004": "004_5ba78cea572cc63a.txt (keepalive, write after close, unread "
           "data, linger 0)",
}


class Expect:
    """An event a side's kernel must report: kind and cause."""

    def __init__(self, side, kind, cause):
        self.side, self.kind, self.cause = side, kind, cause

    def key(self):
        return (self.side, self.kind, self.cause)


class Scenario:
    def __init__(self, name, title, sources, fn, expects, allow=(),
                 needs=(), counters=None, kernel_note=None,
                 host_wide=None):
        self.name = name
        self.title = title
        self.sources = sources
        self.fn = fn
        self.expects = [Expect(*e) for e in expects]
        self.allow = {tuple(a) for a in allow}    # tolerated, not required
        self.needs = set(needs)                   # "challenge_ack", "packets"
        # the kernel's counters that must move, per side:
        # {"b": {"TcpExt:ListenOverflows": ">=1"}} (see counters.check)
        self.counters = counters or {}
        # what kernel history says about this situation (docs/kernel-matrix)
        self.kernel_note = kernel_note
        # a host-wide setting the scenario changes for a moment (not per
        # namespace): it runs only where that is allowed (host_wide_allowed)
        self.host_wide = host_wide

    def expected_text(self):
        if not self.expects:
            return "no RST"
        return ", ".join("%s %s: %s" % e.key() for e in self.expects)


CATALOGUE = []


def scenario(name, title, sources, expects, allow=(), needs=(),
             counters=None, kernel_note=None, host_wide=None):
    def register(fn):
        sc = Scenario(name, title, sources, fn, expects, allow, needs,
                      counters, kernel_note, host_wide)
        sc.theme = fn.__module__.rsplit(".", 1)[-1]   # its module's name
        CATALOGUE.append(sc)
        return fn
    return register


HOST_WIDE_ENV = "RSTTRACE_HOST_WIDE"


def host_wide_allowed():
    """Whether scenarios may change host-wide settings for a moment: only
    when asked (`--host-wide`, or RSTTRACE_HOST_WIDE=1 as the VM suite
    sets it), since other connections of the host would feel it."""
    return os.environ.get(HOST_WIDE_ENV) == "1"


def by_name(names):
    known = {s.name: s for s in CATALOGUE}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError("no scenario called %s" % ", ".join(unknown),
                         "see `rsttrace scenarios list`")
    return [known[n] for n in names] if names else list(CATALOGUE)
