"""The scenario catalogue's parts: what a scenario is, and the registry
its theme modules fill."""

import os

from rsttrace.errors import UsageError
from rsttrace.lab import expectations
from rsttrace.trace.visibility import spot_of

EXPECTATIONS = expectations.load()

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


class Scenario:
    def __init__(self, name, title, sources, fn, counters=None,
                 kernel_note=None, host_wide=None):
        self.name = name
        self.title = title
        self.sources = sources
        self.fn = fn
        # what it must show and tolerates (rsttrace/lab/expectations.json)
        self.expects, self.tolerates = EXPECTATIONS.get(name, ([], []))
        # the kernel's counters that must move, per side:
        # {"b": {"TcpExt:ListenOverflows": ">=1"}} (see counters.check)
        self.counters = counters or {}
        # what kernel history says about this situation (docs/kernel-matrix)
        self.kernel_note = kernel_note
        # a host-wide setting the scenario changes for a moment (not per
        # namespace): it runs only where that is allowed (host_wide_allowed)
        self.host_wide = host_wide

    @property
    def allow(self):
        """(side, kind, cause) of the events it tolerates."""
        return {e.key() for e in self.tolerates}

    @property
    def needs(self):
        """The blind spots (trace.visibility) its expected events fall in."""
        return {s for s in (spot_of(e.kind, e.cause) for e in self.expects)
                if s}

    def expected_text(self):
        if not self.expects:
            return "no RST"
        return ", ".join("%s %s: %s" % e.key() for e in self.expects)


CATALOGUE = []


def scenario(name, title, sources, counters=None, kernel_note=None,
             host_wide=None):
    """Register the decorated function, fn(pair) -> what the application
    saw, as scenario `name`; its expectations are expectations.json's."""
    def register(fn):
        if name not in EXPECTATIONS:
            raise KeyError("scenario %s has no entry in %s"
                           % (name, expectations.PATH))
        sc = Scenario(name, title, sources, fn, counters, kernel_note,
                      host_wide)
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
